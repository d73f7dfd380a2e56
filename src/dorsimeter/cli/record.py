"""``dorsimeter record``: the raw stream to CSV, with the live maxima printed at the end."""

from __future__ import annotations

import argparse
import asyncio

from dorsimeter.cli.common import (
    add_source_options,
    add_store_options,
    open_source_from_args,
    print_results,
    session_recorder_from_args,
)
from dorsimeter.core import Pipeline
from dorsimeter.core.mounting import load_calibrations
from dorsimeter.io.rawcsv import RawCsvWriter
from dorsimeter.session import SessionResults


def register(sub) -> None:
    p = sub.add_parser("record", help="record the raw stream to CSV")
    add_source_options(p)
    p.add_argument("--duration", type=float, required=True, help="seconds of device time")
    p.add_argument("--out", required=True, help="raw CSV to write")
    add_store_options(p)
    p.set_defaults(handler=run)


async def _record(args: argparse.Namespace) -> tuple[SessionResults, Pipeline, int, int]:
    source = open_source_from_args(args)
    cals = load_calibrations(args.calibration) if args.calibration else None
    pipeline = Pipeline(source.rate_hz, cals, side=args.side)
    results = SessionResults()
    n_max = int(round(args.duration * source.rate_hz))
    n = 0
    with RawCsvWriter(args.out) as writer:
        store, recorder = session_recorder_from_args(args, "record", source, cals, args.out)
        try:
            async for batch in source:
                batch = batch.slice(0, n_max - n)
                writer.write(batch, batch.side or pipeline.side)
                readings, events = pipeline.push(batch)
                recorder.add(readings, events)
                results.add(readings)
                n += len(batch)
                if n >= n_max:
                    break
        finally:
            await source.close()
    try:
        session_id = recorder.finish(results)
    finally:
        store.close()
    return results, pipeline, n, session_id


def run(args: argparse.Namespace) -> int:
    results, pipeline, n, session_id = asyncio.run(_record(args))
    print(f"wrote {n} samples to {args.out}")
    print_results(results, pipeline.calibrations)
    print(f"stored session {session_id}")
    return 0
