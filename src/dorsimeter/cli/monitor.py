"""``dorsimeter monitor``: the live monitor; with ``--right-sensor``, both legs at once."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading

from dorsimeter.cli.common import (
    add_source_options,
    add_store_options,
    guard_outputs,
    number_arg,
    print_results,
    sensor_arg,
)
from dorsimeter.store.security import add_force_option


def register(sub) -> None:
    p = sub.add_parser("monitor", help="live monitor in the terminal")
    add_source_options(p)
    p.add_argument("--right-sensor", metavar="SENSOR",
                   type=sensor_arg("--right-sensor", empty_is_none=True),
                   help="a second sensor on the right shin: both legs live side by side, "
                   "--sensor is then the left one (and --record RAW gives RAW-left.csv and "
                   "RAW-right.csv)")
    p.add_argument("--record", metavar="RAW_CSV", help="also write the raw stream here (a new "
                   "file: an existing one is refused, each session keeps its own)")
    add_force_option(p)
    add_store_options(p)
    p.add_argument("--target-deg", type=number_arg(0, 90, "a tibia angle in degrees"),
                   metavar="DEG",
                   help="target tibia angle shown on the gauge (default: the hand-width wall "
                        "angle from the athlete's lengths, else 35°)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dorsimeter.cli.record import live_pipelines, open_sources, raw_paths
    from dorsimeter.io.calfiles import load_calibrations
    from dorsimeter.io.rawcsv import RawCsvWriter
    from dorsimeter.tui.app import MonitorApp
    from dorsimeter.tui.services import StoreClient

    two = bool(getattr(args, "right_sensor", None))
    if args.record is not None:
        guard_outputs(args, {"--record": (list(raw_paths(args.record, args.side, two).values()),
                                          True)}, inputs=[args.calibration, args.sensor_cal])
    sources = open_sources(args)  # one sensor on --side, or one per shin
    cals = load_calibrations(args.calibration) if args.calibration else None
    pipelines = live_pipelines(args, sources, cals)
    paths = raw_paths(args.record, args.side, two) if args.record else {}
    with contextlib.ExitStack() as files:
        writers = {side: files.enter_context(RawCsvWriter(p)) for side, p in paths.items()}
        return _run(args, MonitorApp, StoreClient, sources, pipelines, writers, two)


def _run(args, MonitorApp, StoreClient, sources, pipelines, writers, two: bool) -> int:  # noqa: N803
    # every session goes to the history, written on the store's own thread (never the UI's)
    store = StoreClient(getattr(args, "home", None))
    athlete = None
    if args.athlete:
        cm = lambda v: None if v is None else v / 100.0  # noqa: E731
        pseudo = True if args.pseudonymous else None
        athlete = store.run(lambda s: s.athlete(args.athlete, cm(args.tibia_length_cm),
                                                cm(args.foot_length_cm), pseudo)).result()
    kind = args.sensor.kind if args.sensor is not None else None
    raw = [str(w.path) for w in writers.values()] if two else args.record  # one per sensor
    recording = {"sensor_kind": kind, "raw_path": raw or None,
                 "notes": args.notes, "placement_cm": args.placement_cm}
    if two:
        app = MonitorApp(sources["left"], pipelines["left"], writers.get("left"),
                         target_deg=args.target_deg, athlete=athlete, store=store,
                         recording=recording, right_source=sources["right"],
                         right_pipeline=pipelines["right"], right_recorder=writers.get("right"))
    else:
        (side, source), = sources.items()
        app = MonitorApp(source, pipelines[side], writers.get(side), target_deg=args.target_deg,
                         athlete=athlete, store=store, recording=recording)
    if args.calibration:  # held against the mount each sensor starts on, as `analyze` does
        from dorsimeter.session.live import MountCheck

        for leg in app.legs.values():
            leg.mount_check = MountCheck(leg.pipeline.calibrations, args.calibration)
    done: list[int | None] = []  # the stored session's id, once finished
    lock = threading.Lock()

    def finish() -> int | None:
        """Close the raw CSVs, store and end the session: once, whoever gets here first."""
        with lock:
            if not done:
                try:
                    for writer in writers.values():
                        writer.close()
                    finished = app.finish_session()
                    done.append(None if finished is None else finished.result())
                finally:
                    store.close()
            return done[0] if done else None

    def stuck(code: int) -> None:  # the UI did not shut down after a hang-up or SIGTERM
        with contextlib.suppress(Exception):
            finish()
        os._exit(code)

    app.on_stuck = stuck
    try:
        app.run()
    finally:
        session_id = finish()
    try:
        print_sessions(app, session_id)
        if writers:
            print(f"raw CSV: {', '.join(str(w.path) for w in writers.values())}")
        if app.error is not None:  # a sensor failed for good (lost, refused)
            print(f"dorsimeter: error: {app.error}", file=sys.stderr)
    except OSError:  # the terminal is gone (window closed): the session is stored all the same
        pass
    if app.error is not None:  # a runtime failure
        return 1
    return app.return_code or 0  # 129 / 143 when a hang-up or SIGTERM ended it, as `record`


def print_sessions(app, session_id: int | None) -> None:
    """What quitting reports: every session the monitor stored (an athlete or sensor change
    ends one), each with its results, then the ids."""
    for future, results, who in app.finished:  # sessions ended by an athlete/sensor change
        try:
            earlier = future.result(timeout=30)
        except Exception as e:  # the store failed for that one: say so, go on
            earlier = f"not stored ({e})"
        print(f"stored session {earlier} ({who or 'no athlete'}):")
        for line in results.summary_lines():
            print(line)
    if app.finished:
        print(f"stored session {session_id} "
              f"({getattr(app.athlete, 'name', None) or 'no athlete'}):")
    print_results(app.session, app.calibrations)
    ids = [i for i in (f.result() for f, _, _ in app.finished
                       if f.done() and not f.exception()) if i is not None]
    print(f"stored session{'s' if ids else ''} "
          f"{', '.join(str(i) for i in [*ids, session_id])}")
