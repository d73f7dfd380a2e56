"""The ``dorsimeter`` command line. Errors the user can cause print one line and exit 2."""

from __future__ import annotations

import argparse
import asyncio
import sys

import numpy as np

from dorsimeter.core import Pipeline, calibrate_recording
from dorsimeter.core.fusion import estimate_orientation
from dorsimeter.core.mounting import load_calibrations, save_calibrations
from dorsimeter.errors import DorsimeterError
from dorsimeter.io.rawcsv import RawCsvWriter, read_raw_csv
from dorsimeter.io.readings import ReadingsCsvWriter
from dorsimeter.session import SessionResults
from dorsimeter.sources import open_source
from dorsimeter.types import SIDES, Readings


def _rotation(text: str) -> tuple[float, float, float]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise argparse.ArgumentTypeError("expected three angles in degrees, e.g. 0,0,120")
    return vals  # type: ignore[return-value]


def _add_source_options(p: argparse.ArgumentParser, default_speed: float = 1.0) -> None:
    p.add_argument("--sensor", default="sim",
                   help="sim | replay:FILE | serial:PORT | ble:ADDRESS_OR_NAME (default: sim)")
    p.add_argument("--side", choices=SIDES, default="left", help="leg the sensor is on")
    p.add_argument("--speed", type=float, default=default_speed,
                   help="sim/replay pace: 1 = real time, 0 = as fast as possible")
    p.add_argument("--seed", type=int, default=0, help="simulator random seed")
    p.add_argument("--clip-rotation", type=_rotation, default=(0.0, 0.0, 0.0),
                   metavar="X,Y,Z", help="simulated clip rotation on the shin, degrees")
    p.add_argument("--calibration", help="mounting calibration JSON (default: calibrate live)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dorsimeter", description="Knee-to-wall tibia angle from a shin-worn IMU.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="the live monitor on the simulated rig")
    mon = sub.add_parser("monitor", help="live monitor in the terminal")
    _add_source_options(mon)
    mon.add_argument("--record", metavar="RAW_CSV", help="also write the raw stream here")
    rec = sub.add_parser("record", help="record the raw stream to CSV")
    _add_source_options(rec)
    rec.add_argument("--duration", type=float, required=True, help="seconds of device time")
    rec.add_argument("--out", required=True, help="raw CSV to write")
    cal = sub.add_parser("calibrate", help="mounting calibration from a raw CSV")
    cal.add_argument("raw", help="raw CSV: still stance, then 2-3 slow knee drives")
    cal.add_argument("--out", required=True, help="calibration JSON to write")
    cal.add_argument("--side", choices=SIDES, default="left",
                     help="side for files without a side column")
    ana = sub.add_parser("analyze", help="re-analyse a raw CSV into readings")
    ana.add_argument("raw", help="raw CSV")
    ana.add_argument("--calibration", help="calibration JSON (default: calibrate from the file)")
    ana.add_argument("--out", help="readings CSV to write")
    ana.add_argument("--offline", action="store_true",
                     help="non-causal fusion over the whole recording (re-analysis only)")
    ana.add_argument("--side", choices=SIDES, default="left",
                     help="side for files without a side column")
    return parser


def _print_results(results: SessionResults, calibrations: dict) -> None:
    for cal in calibrations.values():
        print(f"calibration {cal.summary()}")
    for line in results.summary_lines():
        print(line)


def cmd_monitor(args: argparse.Namespace) -> int:
    from dorsimeter.tui.app import MonitorApp

    source = open_source(args.sensor, side=args.side, speed=args.speed, seed=args.seed,
                         clip_rotation_deg=args.clip_rotation)
    cals = load_calibrations(args.calibration) if args.calibration else None
    pipeline = Pipeline(source.rate_hz, cals, side=args.side)
    recorder = RawCsvWriter(args.record) if args.record else None
    app = MonitorApp(source, pipeline, recorder)
    try:
        app.run()
    finally:
        if recorder is not None:
            recorder.close()
    _print_results(app.session, pipeline.calibrations)
    return 0


async def _record(args: argparse.Namespace) -> tuple[SessionResults, Pipeline, int]:
    source = open_source(args.sensor, side=args.side, speed=args.speed, seed=args.seed,
                         clip_rotation_deg=args.clip_rotation)
    cals = load_calibrations(args.calibration) if args.calibration else None
    pipeline = Pipeline(source.rate_hz, cals, side=args.side)
    results = SessionResults()
    n_max = int(round(args.duration * source.rate_hz))
    n = 0
    with RawCsvWriter(args.out) as writer:
        try:
            async for batch in source:
                batch = batch.slice(0, n_max - n)
                writer.write(batch, batch.side or pipeline.side)
                readings, events = pipeline.push(batch)
                results.add(readings)
                n += len(batch)
                if n >= n_max:
                    break
        finally:
            await source.close()
    return results, pipeline, n


def cmd_record(args: argparse.Namespace) -> int:
    results, pipeline, n = asyncio.run(_record(args))
    print(f"wrote {n} samples to {args.out}")
    _print_results(results, pipeline.calibrations)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    rec = read_raw_csv(args.raw, default_side=args.side)
    cals = calibrate_recording(rec.batches(), rec.rate_hz)
    save_calibrations(cals, args.out)
    for cal in cals.values():
        print(f"calibration {cal.summary()}")
    print(f"wrote {args.out}")
    return 0


def analyze(rec, calibrations=None, offline: bool = False) -> Readings:
    """Readings for a whole raw recording through the same Pipeline the live monitor uses."""
    batches = rec.batches()
    if offline:
        quat = estimate_orientation(rec.gyr_rad_s, rec.acc_m_s2, rec.rate_hz, offline=True)
        i = 0
        for b in batches:
            b.quat = quat[i:i + len(b)]
            i += len(b)
    pipe = Pipeline(rec.rate_hz, calibrations)
    out = []
    for b in batches:
        r, events = pipe.push(b)
        for e in events:
            if e.kind == "calibration_failed":
                raise DorsimeterError(e.message)
        out.append(r)
    return Readings.concat(out)


def cmd_analyze(args: argparse.Namespace) -> int:
    rec = read_raw_csv(args.raw, default_side=args.side)
    cals = load_calibrations(args.calibration) if args.calibration else None
    if cals is not None:
        missing = set(np.unique(rec.side)) - set(cals)
        if missing:
            raise DorsimeterError(f"{args.calibration}: no calibration for side "
                                  f"{', '.join(sorted(missing))} used in {args.raw}")
    else:
        cals = calibrate_recording(rec.batches(), rec.rate_hz)
    readings = analyze(rec, cals, offline=args.offline)
    if args.out:
        with ReadingsCsvWriter(args.out) as w:
            w.write(readings)
        print(f"wrote {len(readings)} readings to {args.out}")
    results = SessionResults()
    results.add(readings)
    _print_results(results, cals)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        args = parser.parse_args(["monitor", "--sensor", "sim"])
    handlers = {"monitor": cmd_monitor, "record": cmd_record, "calibrate": cmd_calibrate,
                "analyze": cmd_analyze}
    try:
        return handlers[args.command](args)
    except DorsimeterError as e:
        if args.debug:
            raise
        print(f"dorsimeter: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        if args.debug:
            raise
        name = f" {e.filename}" if getattr(e, "filename", None) else ""
        print(f"dorsimeter: error:{name}: {e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
