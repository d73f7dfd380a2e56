"""``dorsimeter analyze``: re-analysis of a raw CSV through the live pipeline."""

from __future__ import annotations

import argparse

import numpy as np

from dorsimeter.cli.common import add_home_option, print_results
from dorsimeter.cli.sensor_cal import resolve as resolve_sensor_cal
from dorsimeter.core import Pipeline, calibrate_recording
from dorsimeter.core.mounting import MountingCalibration, load_calibrations
from dorsimeter.core.offline import offline_orientation
from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.errors import DorsimeterError
from dorsimeter.io.rawcsv import RawRecording, read_raw_csv
from dorsimeter.io.readings import ReadingsCsvWriter
from dorsimeter.session import SessionResults
from dorsimeter.types import SIDES, Readings


def register(sub) -> None:
    p = sub.add_parser("analyze", help="re-analyse a raw CSV into readings")
    p.add_argument("raw", help="raw CSV")
    p.add_argument("--calibration", help="calibration JSON (default: calibrate from the file)")
    p.add_argument("--out", help="readings CSV to write")
    p.add_argument("--offline", action="store_true",
                   help="non-causal fusion over the whole recording (re-analysis only)")
    p.add_argument("--side", choices=SIDES, default="left",
                   help="side for files without a side column")
    p.add_argument("--sensor-cal", metavar="ID|FILE",
                   help="sensor calibration (from `dorsimeter sensor-cal`): a sensor id in the "
                        "data directory or a JSON file")
    add_home_option(p)  # where --sensor-cal ids are looked up
    p.set_defaults(handler=run)


def analyze(rec: RawRecording, calibrations: dict[str, MountingCalibration] | None = None,
            offline: bool = False, sensor_cal: SensorCalibration | None = None) -> Readings:
    """Readings for a whole raw recording through the same Pipeline the live monitor uses.

    ``offline``: non-causal fusion of the whole file, lever arm removed with the mounting of
    each side (calibrated from the file first when not given), see ``core.offline``."""
    batches = rec.batches()
    if offline and rec.quat is None:
        if calibrations is None:
            calibrations = calibrate_recording(batches, rec.rate_hz, sensor_cal=sensor_cal)
        quat = offline_orientation(rec.gyr_rad_s, rec.acc_m_s2, rec.rate_hz, rec.side,
                                   calibrations, sensor_cal, t_s=rec.t_s)
        i = 0
        for b in batches:
            b.quat = quat[i:i + len(b)]
            i += len(b)
    pipe = Pipeline(rec.rate_hz, calibrations, sensor_cal=sensor_cal)
    out = []
    for b in batches:
        r, events = pipe.push(b)
        for e in events:
            if e.kind == "calibration_failed":
                raise DorsimeterError(e.message)
        out.append(r)
    return Readings.concat(out)


def run(args: argparse.Namespace) -> int:
    rec = read_raw_csv(args.raw, default_side=args.side)
    sensor_cal = resolve_sensor_cal(args.sensor_cal, args.home)
    cals = load_calibrations(args.calibration) if args.calibration else None
    if cals is not None:
        missing = set(np.unique(rec.side)) - set(cals)
        if missing:
            raise DorsimeterError(f"{args.calibration}: no calibration for side "
                                  f"{', '.join(sorted(missing))} used in {args.raw}")
    else:
        cals = calibrate_recording(rec.batches(), rec.rate_hz, sensor_cal=sensor_cal)
    readings = analyze(rec, cals, offline=args.offline, sensor_cal=sensor_cal)
    if args.out:
        with ReadingsCsvWriter(args.out) as w:
            w.write(readings)
        print(f"wrote {len(readings)} readings to {args.out}")
    results = SessionResults()
    results.add(readings)
    print_results(results, cals)
    return 0
