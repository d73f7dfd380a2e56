"""``dorsimeter analyze``: re-analysis of a raw CSV through the live pipeline."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from dorsimeter.cli.common import add_home_option, add_sensor_cal_option, guard_outputs
from dorsimeter.store.security import add_force_option
from dorsimeter.types import SIDES

if TYPE_CHECKING:  # the core (scipy) is imported when the command runs: start-up stays short
    from dorsimeter.core.mounting import MountingCalibration
    from dorsimeter.core.sensor_cal import SensorCalibration
    from dorsimeter.types import Readings


def clip_axis_arg(text: str) -> str:
    """``--clip-axis``: auto or a signed sensor axis (argparse's type)."""
    from dorsimeter.core.clip_axis import parse_clip_axis

    try:
        return parse_clip_axis(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub) -> None:
    p = sub.add_parser("analyze", help="re-analyse a raw CSV into readings")
    p.add_argument("raw", help="raw CSV")
    p.add_argument("--calibration", help="calibration JSON (default: calibrate from the file)")
    p.add_argument("--out", help="readings CSV to write")
    add_force_option(p)
    p.add_argument("--offline", action="store_true",
                   help="non-causal fusion over the whole recording (re-analysis only)")
    p.add_argument("--side", choices=SIDES, default="left",
                   help="side for files without a side column")
    add_sensor_cal_option(p)
    p.add_argument("--clip-axis", type=clip_axis_arg, nargs="?", const="auto", metavar="AXIS",
                   help="also give the inclinometer-equivalent reading: the inclination of the "
                        "clip's own long axis as an inclinometer laid on the clip would read it; "
                        "AXIS is the sensor axis pointing up the shin along the clip (+x, -x, "
                        "+y, -y, +z, -z; our node mounted as in wiring.md: +x), or auto (the "
                        "default: the axis nearest the shin, within 45°); adds a clip_angle_deg "
                        "column. It is absolute, so give --sensor-cal: an accelerometer offset "
                        "of 17 mg tilts it by 1°")
    add_home_option(p)  # where --sensor-cal ids are looked up
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from dorsimeter.cli.common import print_results
    from dorsimeter.core.clip_axis import clip_readings
    from dorsimeter.errors import DorsimeterError
    from dorsimeter.io.calfiles import sensor_calibration_from as resolve_sensor_cal
    from dorsimeter.io.rawcsv import read_raw_csv
    from dorsimeter.io.readings import ReadingsCsvWriter
    from dorsimeter.session.results import SessionResults

    guard_outputs(args, {"--out": ([args.out], False)},
                  inputs=[args.raw, args.calibration, args.sensor_cal])
    if not args.offline and args.clip_axis is None:
        return run_streaming(args)
    rec = read_raw_csv(args.raw, default_side=args.side)
    sensor_cal = resolve_sensor_cal(args.sensor_cal, args.home)
    cals = _calibrations(args, set(np.unique(rec.side)), rec.batches(), rec.rate_hz, sensor_cal)
    events: list = []
    from dorsimeter.pipeline import analyze

    readings = analyze(rec, cals, offline=args.offline, sensor_cal=sensor_cal, events=events)
    clip = None
    if args.clip_axis is not None:
        try:
            clip = clip_readings(readings, {s: c.matrix for s, c in cals.items()},
                                 args.clip_axis)
        except ValueError as e:
            raise DorsimeterError(f"{args.raw}: --clip-axis {args.clip_axis}: {e}") from None
    if args.out:
        extra = () if clip is None else ("clip_angle_deg",)
        with ReadingsCsvWriter(args.out, extra_columns=extra) as w:
            w.write(readings, None if clip is None else {"clip_angle_deg": clip.angle_deg})
        print(f"wrote {len(readings)} readings to {args.out}")
    results = SessionResults(rate_hz=rec.rate_hz)
    results.add(readings, events)
    print_results(results, cals)
    if clip is not None:
        print_clip_results(readings, clip, results, results.settings.best_of)
    return 0


def _calibrations(args: argparse.Namespace, sides: set[str], batches, rate_hz: float,
                  sensor_cal: SensorCalibration | None) -> dict[str, MountingCalibration]:
    """``--calibration`` (covering every side of the recording, warned about when it was made
    for another mount), else calibrated from the recording."""
    from dorsimeter.errors import DorsimeterError
    from dorsimeter.io.calfiles import load_calibrations
    from dorsimeter.pipeline import calibrate_recording

    if not args.calibration:
        return calibrate_recording(batches, rate_hz, sensor_cal=sensor_cal, sides=sides)
    cals = load_calibrations(args.calibration)
    missing = sides - set(cals)
    if missing:
        raise DorsimeterError(f"{args.calibration}: no calibration for side "
                              f"{', '.join(sorted(missing))} used in {args.raw}")
    warn_mount(cals, batches, rate_hz, args.calibration)
    return cals


def run_streaming(args: argparse.Namespace) -> int:
    """``analyze`` chunk by chunk: raw rows in, readings rows out, in bounded memory (a 10 h
    file too); the same readings as the whole-file path, which ``--offline`` and
    ``--clip-axis`` still take."""
    import contextlib

    from dorsimeter.cli.common import print_results
    from dorsimeter.errors import DorsimeterError
    from dorsimeter.io.calfiles import sensor_calibration_from as resolve_sensor_cal
    from dorsimeter.io.rawcsv import RawStream
    from dorsimeter.io.readings import ReadingsCsvWriter
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.session.results import SessionResults

    stream = RawStream(args.raw, default_side=args.side)
    sensor_cal = resolve_sensor_cal(args.sensor_cal, args.home)
    cals = _calibrations(args, stream.sides, stream.batches(), stream.rate_hz, sensor_cal)
    pipe = Pipeline(stream.rate_hz, cals, sensor_cal=sensor_cal)
    results = SessionResults(rate_hz=stream.rate_hz)
    n = 0
    with contextlib.ExitStack() as files:
        w = files.enter_context(ReadingsCsvWriter(args.out)) if args.out else None
        for b in stream.batches():
            r, events = pipe.push(b)
            for e in events:
                if e.kind == "calibration_failed":
                    raise DorsimeterError(e.message)
            if w is not None and len(r):
                w.write(r)
            results.add(r, events)  # the session takes its reps from the pipeline's events
            n += len(r)
    if args.out:
        print(f"wrote {n} readings to {args.out}")
    print_results(results, cals)
    return 0


def warn_mount(cals: dict[str, MountingCalibration], batches, rate_hz: float,
               source: str) -> None:
    """A warning line per side whose calibration file does not fit this recording's mount
    (judged on each side's first second, ``io.caljson.mount_warning``)."""
    import numpy as np

    from dorsimeter.io.caljson import mount_warning

    n = max(1, int(round(rate_hz)))
    side_acc: dict[str, list[np.ndarray]] = {}
    for b in batches:  # batches carry one side each
        have = side_acc.setdefault(b.side or "left", [])
        if sum(len(a) for a in have) < n:
            have.append(b.acc_m_s2)
        if len(side_acc) >= len(cals) and all(sum(map(len, v)) >= n for v in side_acc.values()):
            break
    acc = {s: np.concatenate(v)[:n] for s, v in side_acc.items()}
    for line in mount_warning(cals, acc, rate_hz, source):
        print(line, file=sys.stderr)


def print_clip_results(readings: Readings, clip, results, best_of: int = 3) -> None:
    """The scores again on the inclinometer-equivalent reading (``core.clip_axis``), saying
    which reading it is and which sensor axis it follows."""
    import numpy as np

    from dorsimeter.core.clip_axis import clip_scores_deg

    sides = sorted(clip.axis)
    print("inclinometer-equivalent (clip axis "
          + ", ".join(f"{clip.axis[s]} on the {s}" for s in sides) + "; the clip leans "
          + ", ".join(f"{clip.lean_deg[s]:+.1f}° on the {s}" for s in sides)
          + " from the tibia's long axis):")
    for side in sorted(clip.axis):
        scores = sorted(clip_scores_deg(readings, clip.angle_deg, results, side), reverse=True)
        line = f"{side:>5}: max clip angle {np.max(clip.angle_deg[readings.side == side]):.2f}°"
        if scores:
            line += (f", best valid {scores[0]:.1f}°, mean of the best {min(best_of, len(scores))}"
                     f" {np.mean(scores[:best_of]):.1f}°")
        print("  " + line)
