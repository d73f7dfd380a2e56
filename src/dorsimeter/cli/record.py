"""``dorsimeter record``: the raw stream to CSV, with the live maxima printed at the end."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import dataclass

from dorsimeter.cli.common import (
    add_source_options,
    add_store_options,
    athlete_geometry_from_args,
    open_source_from_args,
    print_results,
    session_recorder_from_args,
)
from dorsimeter.core import Pipeline
from dorsimeter.core.mounting import load_calibrations
from dorsimeter.io.rawcsv import RawCsvWriter
from dorsimeter.session import SessionResults

EXIT_CODES = {signal.SIGINT: 130, signal.SIGHUP: 129, signal.SIGTERM: 143}


def register(sub) -> None:
    p = sub.add_parser(
        "record", help="record the raw stream to CSV",
        epilog="Ctrl-C (SIGINT), closing the terminal (SIGHUP) or SIGTERM stop the recording: "
               "the raw CSV is flushed and closed, the session is stored and marked ended, and "
               "the exit code is 130, 129 or 143 (128 + the signal number). After a crash or "
               "SIGKILL, `dorsimeter recover` keeps what was recorded.")
    add_source_options(p)
    p.add_argument("--duration", type=float, required=True, help="seconds of device time")
    p.add_argument("--out", required=True, help="raw CSV to write")
    add_store_options(p)
    p.set_defaults(handler=run)


@dataclass
class _Run:
    n: int = 0
    session_id: int | None = None
    signal: int | None = None  # the signal that stopped the recording


async def _record(args: argparse.Namespace, state: _Run) -> tuple[SessionResults, Pipeline]:
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    for sig in (signal.SIGHUP, signal.SIGTERM):  # stop as Ctrl-C does: cancel, clean up

        def stop(sig=sig) -> None:
            state.signal = sig
            task.cancel()

        loop.add_signal_handler(sig, stop)
    source = open_source_from_args(args)
    cals = load_calibrations(args.calibration) if args.calibration else None
    pipeline = Pipeline(source.rate_hz, cals, side=args.side)
    n_max = int(round(args.duration * source.rate_hz))
    with RawCsvWriter(args.out) as writer:
        store, recorder = session_recorder_from_args(args, "record", source, cals, args.out)
        results = SessionResults(athlete=athlete_geometry_from_args(args, store))
        try:
            try:
                async for batch in source:
                    batch = batch.slice(0, n_max - state.n)
                    writer.write(batch, batch.side or pipeline.side)
                    readings, events = pipeline.push(batch)
                    recorder.add(readings, events)
                    results.add(readings)
                    state.n += len(batch)
                    if state.n >= n_max:
                        break
            finally:
                await source.close()
        finally:  # however it stops (done, Ctrl-C, hang-up, device lost): store and end it
            try:
                state.session_id = recorder.finish(results)
            finally:
                store.close()
    return results, pipeline


def run(args: argparse.Namespace) -> int:
    state = _Run()
    try:
        results, pipeline = asyncio.run(_record(args, state))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sig = signal.Signals(state.signal or signal.SIGINT)
        print(f"dorsimeter: stopped by {sig.name}: wrote {state.n} samples to {args.out}, "
              f"stored session {state.session_id}", file=sys.stderr)
        return EXIT_CODES.get(sig, 128 + int(sig))
    print(f"wrote {state.n} samples to {args.out}")
    print_results(results, pipeline.calibrations)
    print(f"stored session {state.session_id}")
    return 0
