"""``dorsimeter calibrate``: the mounting calibration of a raw CSV."""

from __future__ import annotations

import argparse

from dorsimeter.core import calibrate_recording
from dorsimeter.core.mounting import save_calibrations
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.types import SIDES


def register(sub) -> None:
    p = sub.add_parser("calibrate", help="mounting calibration from a raw CSV")
    p.add_argument("raw", help="raw CSV: still stance, then 2-3 slow knee drives")
    p.add_argument("--out", required=True, help="calibration JSON to write")
    p.add_argument("--side", choices=SIDES, default="left",
                   help="side for files without a side column")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rec = read_raw_csv(args.raw, default_side=args.side)
    cals = calibrate_recording(rec.batches(), rec.rate_hz)
    save_calibrations(cals, args.out)
    for cal in cals.values():
        print(f"calibration {cal.summary()}")
    print(f"wrote {args.out}")
    return 0
