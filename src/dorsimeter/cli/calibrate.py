"""``dorsimeter calibrate``: the mounting calibration, from a raw CSV or live from a sensor."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from dorsimeter.cli.common import (
    MAX_DURATION_S,
    add_home_option,
    add_source_options,
    guard_outputs,
    number_arg,
    open_source_from_args,
    say_rate,
)
from dorsimeter.errors import CalibrationError, DorsimeterError
from dorsimeter.store.security import add_force_option

if TYPE_CHECKING:
    from dorsimeter.core.mounting import MountingCalibration


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="mounting calibration from a raw CSV, or live with --sensor",
        epilog="Live: stand tall and still for 2 s, then drive the knee forward slowly 2-3 "
               "times; the progress is printed and the calibration written once defined.")
    p.add_argument("raw", nargs="?", help="raw CSV: still stance, then 2-3 slow knee drives")
    p.add_argument("--out", required=True, help="calibration JSON to write")
    add_force_option(p)
    add_source_options(p, sensor_default=None, with_calibration=False)
    p.add_argument("--timeout", type=number_arg(0, MAX_DURATION_S, "seconds", above_lo=True),
                   default=60.0,
                   help="live: give up after this many seconds of device time (default 60)")
    p.add_argument("--record", metavar="RAW_CSV", help="live: also write the raw stream here")
    add_home_option(p)
    p.set_defaults(handler=run)


async def calibrate_live(args: argparse.Namespace) -> MountingCalibration:
    """Stream the sensor through the live session until its side's mounting is defined."""
    from dorsimeter.io.calfiles import sensor_cal_for
    from dorsimeter.io.rawcsv import RawCsvWriter
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.session.live import Leg, LiveSession, Step
    from dorsimeter.session.results import SessionResults

    source = open_source_from_args(args)
    pipeline = Pipeline(source.rate_hz, side=args.side, sensor_cal=sensor_cal_for(
        args.sensor, args.sensor_cal, getattr(args, "home", None)))
    leg = Leg(source, pipeline)
    found: list[MountingCalibration] = []
    shown, t_shown = None, -1.0

    def follow(step: Step) -> bool:
        nonlocal shown, t_shown
        for e in step.events:
            if e.kind == "calibration_failed":
                raise CalibrationError(e.message)
            if e.kind == "calibrated" and e.side == pipeline.side:
                assert e.calibration is not None  # a "calibrated" event carries it
                found.append(e.calibration)
                return True
        t_s = float(step.batch.t_s[-1])
        progress = pipeline.progress
        if progress.phase != shown or t_s - t_shown >= 1.0:  # a line a second
            shown, t_shown = progress.phase, t_s
            print(f"  {progress.text}", flush=True)
        if leg.elapsed_s > args.timeout:
            raise CalibrationError(f"no calibration after {args.timeout:.0f} s: "
                                   f"{pipeline.status}")
        return False

    with contextlib.ExitStack() as files:
        if args.record:
            leg.raw = files.enter_context(RawCsvWriter(args.record))
        await LiveSession([leg], SessionResults(rate_hz=source.rate_hz),
                          on_start=say_rate).run(follow)
    if not found:
        raise DorsimeterError(f"{args.sensor}: the stream ended before the calibration was "
                              "defined")
    return found[0]


def run(args: argparse.Namespace) -> int:
    from dorsimeter.io.calfiles import load_calibrations, save_calibrations
    from dorsimeter.io.calfiles import sensor_calibration_from as resolve_sensor_cal
    from dorsimeter.io.rawcsv import read_raw_csv
    from dorsimeter.pipeline import calibrate_recording

    if args.raw is None and args.sensor is None:
        raise DorsimeterError("calibrate needs a raw CSV or --sensor")
    guard_outputs(args, {"--out": ([args.out], False), "--record": ([args.record], True)},
                  inputs=[args.raw, args.sensor_cal])
    if args.raw is None:  # a file given wins over a sensor from the settings
        cal = asyncio.run(calibrate_live(args))
        cals = {cal.side: cal}
    else:
        rec = read_raw_csv(args.raw, default_side=args.side)
        cals = calibrate_recording(rec.batches(), rec.rate_hz,
                                   sensor_cal=resolve_sensor_cal(args.sensor_cal, args.home))
    kept = {}
    if Path(args.out).exists():  # a file of the other side too: keep what this run did not do
        kept = {s: c for s, c in load_calibrations(args.out).items() if s not in cals}
    save_calibrations({**kept, **cals}, args.out)
    for cal in cals.values():
        print(f"calibration {cal.summary()}")
    if kept:
        print(f"kept the {' and '.join(sorted(kept))} side's calibration already in {args.out}")
    print(f"wrote {args.out}")
    return 0
