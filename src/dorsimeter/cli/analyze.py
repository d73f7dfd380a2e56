"""``dorsimeter analyze``: re-analysis of a raw CSV through the live pipeline."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from dorsimeter.cli.common import add_home_option, add_sensor_cal_option, guard_outputs
from dorsimeter.store.security import add_force_option
from dorsimeter.types import SIDES

if TYPE_CHECKING:  # the core (scipy) is imported when the command runs: start-up stays short
    from collections.abc import Iterable

    import numpy as np

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
    """``analyze``: chunks in, chunks out (``run_streaming``, ``write_chunks``), ``--offline``
    too: its non-causal fusion runs on overlapping windows of each gap-free stretch
    (``pipeline.offline.offline_chunks``), so no command holds the whole recording."""
    guard_outputs(args, {"--out": ([args.out], False)},
                  inputs=[args.raw, args.calibration, args.sensor_cal])
    return run_streaming(args)


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


class ClipStream:
    """``--clip-axis`` chunk by chunk: each chunk's clip angles (``core.clip_axis``), and each
    rep scored on them when the pipeline's rep event arrives (the session's reps, their hold
    windows), from the side's samples since its last rep; those are kept at most ``KEEP_S``
    (a knee-to-wall rep lasts seconds), so memory is bounded whatever the file's length."""

    KEEP_S = 600.0

    def __init__(self, matrices: dict, axis_name: str) -> None:
        self.matrices, self.axis_name = matrices, axis_name
        self.axis: dict[str, str] = {}
        self.lean_deg: dict[str, float] = {}
        self.max_deg: dict[str, float] = {}
        self._kept: dict[str, list[tuple]] = {}  # side -> chunks of (t, clip, tibia)
        self._scores: dict[int, float] = {}  # id(rep) -> its clip score

    def add(self, r: Readings, events: list) -> np.ndarray:
        """The clip angles of ``r`` (ValueError names a side whose axis is refused)."""
        import numpy as np

        from dorsimeter.core.clip_axis import clip_readings, clip_rep_score_deg

        clip = clip_readings(r, self.matrices, self.axis_name)
        self.axis.update(clip.axis)
        self.lean_deg.update(clip.lean_deg)
        for side in clip.axis:
            sel = r.side == side
            a = clip.angle_deg[sel]
            mx = float(np.max(a))
            self.max_deg[side] = max(self.max_deg.get(side, mx), mx)
            kept = self._kept.setdefault(side, [])
            kept.append((r.t_s[sel], a, r.tibia_angle_deg[sel]))
            while len(kept) > 1 and kept[0][0][-1] < r.t_s[sel][-1] - self.KEEP_S:
                kept.pop(0)
        for e in events:
            if e.kind != "rep" or e.rep is None or e.side not in self._kept:
                continue
            t, a, tib = (np.concatenate(c) for c in zip(*self._kept[e.side], strict=True))
            if e.rep.scored:
                self._scores[id(e.rep)] = clip_rep_score_deg(e.rep, t, a, tib)
            end = e.rep.t_end_s if e.rep.t_end_s is not None else t[-1]
            later = t > end  # reps of a side never overlap: the next one starts after this
            self._kept[e.side] = [(t[later], a[later], tib[later])]
        return clip.angle_deg

    def side_scores(self, results, best_of: int) -> list:
        """Per side (sorted), as ``core.clip_axis.clip_side_scores`` gives them."""
        from dorsimeter.core.clip_axis import ClipSideScore

        out = []
        for side in sorted(self.axis):
            reps = results.sides[side].scored if side in results.sides else []
            scores = sorted((self._scores[id(rep)] for rep in reps if id(rep) in self._scores),
                            reverse=True)
            out.append(ClipSideScore(side, self.axis[side], self.lean_deg[side],
                                     self.max_deg[side], tuple(scores), best_of))
        return out


def run_streaming(args: argparse.Namespace) -> int:
    """``analyze`` chunk by chunk: raw rows in, readings rows out, in bounded memory (a 10 h
    file too), ``--clip-axis`` too (``ClipStream``). ``--offline`` (a file without the
    device's own quaternion): the samples go through ``offline_chunks`` first, a window of
    them at a time, and on with their offline quaternions."""
    from dorsimeter.io.calfiles import sensor_calibration_from as resolve_sensor_cal
    from dorsimeter.io.rawcsv import CHUNK_ROWS, RawStream
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.pipeline.offline import offline_chunks

    stream = RawStream(args.raw, default_side=args.side)
    sensor_cal = resolve_sensor_cal(args.sensor_cal, args.home)
    cals = _calibrations(args, stream.sides, stream.batches(), stream.rate_hz, sensor_cal)
    ours = bool(getattr(args, "offline", False)) and "quat" not in stream.channels
    pipe = Pipeline(stream.rate_hz, cals, sensor_cal=sensor_cal, quat_is_ours=ours)
    batches = stream.batches()
    if ours:
        pieces = offline_chunks(stream.chunks(), stream.rate_hz, cals, sensor_cal)
        batches = (whole.slice(i, i + CHUNK_ROWS) for piece in pieces
                   for whole in piece.batches() for i in range(0, len(whole), CHUNK_ROWS))
    return write_chunks(args, (pipe.push(b) for b in batches), cals, stream.rate_hz)


def write_chunks(args: argparse.Namespace, chunks: Iterable[tuple[Readings, list]],
                 cals: dict[str, MountingCalibration], rate_hz: float) -> int:
    """The pipeline's (readings, events) chunk by chunk: to ``--out``, to the session's
    results and to ``--clip-axis`` (``ClipStream``) as they come; then the results."""
    import contextlib

    from dorsimeter.cli.common import print_results
    from dorsimeter.errors import DorsimeterError
    from dorsimeter.io.readings import ReadingsCsvWriter
    from dorsimeter.session.results import SessionResults

    results = SessionResults(rate_hz=rate_hz)
    clip = None
    if args.clip_axis is not None:
        clip = ClipStream({s: c.matrix for s, c in cals.items()}, args.clip_axis)
    n = 0
    with contextlib.ExitStack() as files:
        extra = () if clip is None else ("clip_angle_deg",)
        w = files.enter_context(ReadingsCsvWriter(args.out, extra_columns=extra)) \
            if args.out else None
        for r, events in chunks:
            for e in events:
                if e.kind == "calibration_failed":
                    raise DorsimeterError(e.message)
            try:
                angles = None if clip is None else {"clip_angle_deg": clip.add(r, events)}
            except ValueError as e:
                raise DorsimeterError(f"{args.raw}: --clip-axis {args.clip_axis}: {e}") from None
            if w is not None and len(r):
                w.write(r, angles)
            results.add(r, events)  # the session takes its reps from the pipeline's events
            n += len(r)
    if args.out:
        print(f"wrote {n} readings to {args.out}")
    print_results(results, cals)
    if clip is not None:
        print_clip_results(clip.side_scores(results, results.settings.best_of))
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


def print_clip_results(sides: list) -> None:
    """The scores again on the inclinometer-equivalent reading (``core.clip_axis``'s
    ``ClipSideScore`` per side), saying which reading it is and which sensor axis it follows."""
    print("inclinometer-equivalent (clip axis "
          + ", ".join(f"{c.axis} on the {c.side}" for c in sides) + "; the clip leans "
          + ", ".join(f"{c.lean_deg:+.1f}° on the {c.side}" for c in sides)
          + " from the tibia's long axis):")
    for c in sides:
        line = f"{c.side:>5}: max clip angle {c.max_deg:.2f}°"
        if c.best_deg is not None:
            line += (f", best valid {c.best_deg:.1f}°, mean of the best {c.n_best}"
                     f" {c.mean_best_deg:.1f}°")
        print("  " + line)
