"""``dorsimeter monitor``: the live terminal monitor."""

from __future__ import annotations

import argparse

from dorsimeter.cli.common import add_source_options, open_source_from_args, print_results
from dorsimeter.core import Pipeline
from dorsimeter.core.mounting import load_calibrations
from dorsimeter.io.rawcsv import RawCsvWriter


def register(sub) -> None:
    p = sub.add_parser("monitor", help="live monitor in the terminal")
    add_source_options(p)
    p.add_argument("--record", metavar="RAW_CSV", help="also write the raw stream here")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dorsimeter.tui.app import MonitorApp

    source = open_source_from_args(args)
    cals = load_calibrations(args.calibration) if args.calibration else None
    pipeline = Pipeline(source.rate_hz, cals, side=args.side)
    recorder = RawCsvWriter(args.record) if args.record else None
    app = MonitorApp(source, pipeline, recorder)
    try:
        app.run()
    finally:
        if recorder is not None:
            recorder.close()
    print_results(app.session, pipeline.calibrations)
    return 0
