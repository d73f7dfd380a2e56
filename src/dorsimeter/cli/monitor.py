"""``dorsimeter monitor``: the live terminal monitor."""

from __future__ import annotations

import argparse
import sys

from dorsimeter.cli.common import (
    add_source_options,
    add_store_options,
    open_source_from_args,
    print_results,
)
from dorsimeter.core import Pipeline
from dorsimeter.core.mounting import load_calibrations
from dorsimeter.io.rawcsv import RawCsvWriter


def register(sub) -> None:
    p = sub.add_parser("monitor", help="live monitor in the terminal")
    add_source_options(p)
    p.add_argument("--record", metavar="RAW_CSV", help="also write the raw stream here")
    add_store_options(p)
    p.add_argument("--target-deg", type=float, metavar="DEG",
                   help="target tibia angle shown on the gauge (default: the hand-width wall "
                        "angle from the athlete's lengths, else 35°)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dorsimeter.tui.app import MonitorApp
    from dorsimeter.tui.services import StoreClient

    source = open_source_from_args(args)
    cals = load_calibrations(args.calibration) if args.calibration else None
    pipeline = Pipeline(source.rate_hz, cals, side=args.side)
    recorder = RawCsvWriter(args.record) if args.record else None
    # every session goes to the history, written on the store's own thread (never the UI's)
    store = StoreClient(getattr(args, "home", None))
    athlete = None
    if args.athlete:
        cm = lambda v: None if v is None else v / 100.0  # noqa: E731
        pseudo = True if args.pseudonymous else None
        athlete = store.run(lambda s: s.athlete(args.athlete, cm(args.tibia_length_cm),
                                                cm(args.foot_length_cm), pseudo)).result()
    kind = str(args.sensor or "").partition(":")[0] or None
    app = MonitorApp(source, pipeline, recorder, target_deg=args.target_deg, athlete=athlete,
                     store=store, recording={"sensor_kind": kind, "raw_path": args.record,
                                             "notes": args.notes})
    session_id = None
    try:
        app.run()
    finally:
        if recorder is not None:
            recorder.close()
        try:
            finished = app.finish_session()
            session_id = None if finished is None else finished.result()
        finally:
            store.close()
    try:
        print_results(app.session, pipeline.calibrations)
        print(f"stored session {session_id}")
        if app.error is not None:  # the sensor failed for good (lost, refused)
            print(f"dorsimeter: error: {app.error}", file=sys.stderr)
    except OSError:  # the terminal is gone (window closed): the session is stored all the same
        pass
    if app.error is not None:  # a runtime failure
        return 1
    return app.return_code or 0  # 129 / 143 when a hang-up or SIGTERM ended it, as `record`
