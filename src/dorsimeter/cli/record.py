"""``dorsimeter record``: the raw stream to CSV, with the live maxima printed at the end."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dorsimeter.cli.common import (
    add_source_options,
    add_store_options,
    athlete_geometry_from_args,
    open_source_from_args,
    print_results,
    sensor_cal_for,
    session_recorder_from_args,
)
from dorsimeter.types import SIDES

if TYPE_CHECKING:  # imported when a recording runs: the core costs seconds of start-up
    from dorsimeter.core import Pipeline
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
    p.add_argument("--right-sensor", metavar="SENSOR",
                   help="a second sensor on the right shin, live at the same time: --sensor is "
                   "then the left one, and OUT becomes OUT-left.csv and OUT-right.csv")
    p.add_argument("--duration", type=float, required=True, help="seconds of device time")
    p.add_argument("--out", required=True, help="raw CSV to write")
    add_store_options(p)
    p.set_defaults(handler=run)


class StatusLine:
    """One line on the terminal while `record` runs: per leg its calibration progress or live
    angle, and the time left; redrawn at most 10 times a second (rich), gone at the end.
    Nothing when stdout is not a terminal (a pipe or a file gets only the results)."""

    def __init__(self, duration_s: float, sides: list[str]) -> None:
        import time

        from rich.console import Console
        from rich.live import Live

        self.duration_s = duration_s
        self.parts: dict[str, str] = dict.fromkeys(sides, "connecting")
        self.elapsed_s: dict[str, float] = dict.fromkeys(sides, 0.0)
        self._clock = time.monotonic
        self._shown = 0.0
        self.lines = 0  # lines drawn (for tests)
        self._live = Live(console=Console(), auto_refresh=False, transient=True)
        self._live.start()

    def update(self, side: str, pipeline, readings, elapsed_s: float) -> None:
        if pipeline.status == "calibrated" and len(readings):
            self.parts[side] = f"{readings.tibia_angle_deg[-1]:5.1f}°"
        else:
            from dorsimeter.tui.model import shown_status

            self.parts[side] = f"calibrating: {shown_status(pipeline.status)}"
        self.elapsed_s[side] = elapsed_s
        now = self._clock()
        if now - self._shown >= 0.1:
            self._shown = now
            self.draw()

    def text(self) -> str:
        left = max(0.0, self.duration_s - min(self.elapsed_s.values()))
        legs = " · ".join(f"{s} {p}" for s, p in self.parts.items())
        return f"recording: {legs} · {left:.0f} s left"

    def draw(self) -> None:
        from rich.text import Text

        self._live.update(Text(self.text(), no_wrap=True, overflow="ellipsis"), refresh=True)
        self.lines += 1

    def close(self) -> None:
        self._live.stop()


@dataclass
class _Run:
    n: int = 0
    session_id: int | None = None
    signal: int | None = None  # the signal that stopped the recording


def raw_paths(out: str, side: str, two_sensors: bool) -> dict[str, str]:
    """The raw CSV per side: OUT, or OUT-left.csv and OUT-right.csv with two sensors
    (shared with ``monitor --record``)."""
    if not two_sensors:
        return {side: out}
    stem = out[:-4] if out.lower().endswith(".csv") else out
    return {s: f"{stem}-{s}.csv" for s in SIDES}


def out_paths(args: argparse.Namespace) -> dict[str, str]:
    """The raw CSV per side: OUT, or OUT-left.csv and OUT-right.csv with two sensors."""
    return raw_paths(args.out, args.side, bool(args.right_sensor))


def live_pipelines(args: argparse.Namespace, sources: dict, cals) -> dict[str, Pipeline]:
    """A pipeline per sensor, each with its own box calibration (``sensor_cal_for``: the right
    sensor's is found by its BLE address or name; ``--sensor-cal`` is the first sensor's).
    Shared with ``monitor``."""
    from dorsimeter.core import Pipeline

    home = getattr(args, "home", None)
    two = bool(getattr(args, "right_sensor", None))
    out = {}
    for side, src in sources.items():
        second = two and side == "right"
        sensor_cal = sensor_cal_for(args.right_sensor if second else args.sensor,
                                    None if second else getattr(args, "sensor_cal", None), home)
        if sensor_cal is not None:
            print(f"{side}: {sensor_cal.summary()}", file=sys.stderr)
        out[side] = Pipeline(src.rate_hz, cals, side=side, sensor_cal=sensor_cal)
    return out


def open_sources(args: argparse.Namespace) -> dict:
    """The source per side: ``--sensor`` on ``--side``; with ``--right-sensor``, ``--sensor`` on
    the left and the right one on the right (a simulated right leg gets the next seed, so the
    two legs differ). Shared with ``monitor --right-sensor``."""
    if not getattr(args, "right_sensor", None):
        return {args.side: open_source_from_args(args)}
    return {"left": open_source_from_args(argparse.Namespace(**{**vars(args), "side": "left"})),
            "right": open_source_from_args(argparse.Namespace(**{
                **vars(args), "sensor": args.right_sensor, "side": "right",
                "seed": args.seed + 1}))}


async def _stream(source, pipeline: Pipeline, writer: RawCsvWriter, recorder, results,
                  n_max: int, state: _Run, side: str | None, connecting: asyncio.Lock,
                  status: StatusLine | None = None) -> None:
    """One sensor's samples: raw CSV, pipeline, store and results, until ``n_max`` samples.

    ``connecting`` is held until the first batch: two sensors connect one after the other
    (two BLE scans or connects at once on one adapter can miss the second sensor)."""
    n = 0
    await connecting.acquire()
    holding = True
    try:
        async for batch in source:
            if holding:
                connecting.release()
                holding = False
            batch = batch.slice(0, n_max - n)
            if side is not None:
                batch.side = side  # a sensor bound to a shin stays there
            writer.write(batch, batch.side or pipeline.side)
            readings, events = pipeline.push(batch)
            recorder.add(readings, events)
            results.add(readings)
            n += len(batch)
            state.n += len(batch)
            if status is not None:
                status.update(side or pipeline.side, pipeline, readings, n / source.rate_hz)
            if n >= n_max:
                break
    finally:
        if holding:
            connecting.release()
        await source.close()


async def _record(args: argparse.Namespace, state: _Run) -> tuple[SessionResults, dict]:
    from dorsimeter.core.mounting import load_calibrations
    from dorsimeter.io.rawcsv import RawCsvWriter
    from dorsimeter.session import SessionResults

    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    for sig in (signal.SIGHUP, signal.SIGTERM):  # stop as Ctrl-C does: cancel, clean up

        def stop(sig=sig) -> None:
            state.signal = sig
            task.cancel()

        loop.add_signal_handler(sig, stop)
    paths = out_paths(args)
    sides = list(paths)
    sources = open_sources(args)
    cals = load_calibrations(args.calibration) if args.calibration else None
    pipelines = live_pipelines(args, sources, cals)
    with contextlib.ExitStack() as files:
        writers = {side: files.enter_context(RawCsvWriter(paths[side])) for side in sides}
        name = " + ".join(src.name for src in sources.values())
        store, recorder = session_recorder_from_args(
            args, "record", name, cals, [paths[side] for side in sides])  # one per sensor
        results = SessionResults(athlete=athlete_geometry_from_args(args, store))
        connecting = asyncio.Lock()
        status = StatusLine(args.duration, sides) if sys.stdout.isatty() else None
        try:
            await asyncio.gather(*(
                _stream(sources[side], pipelines[side], writers[side], recorder, results,
                        int(round(args.duration * sources[side].rate_hz)), state,
                        side if args.right_sensor else None, connecting, status)
                for side in sides))
        finally:  # however it stops (done, Ctrl-C, hang-up, device lost): store and end it
            if status is not None:
                status.close()
            try:
                state.session_id = recorder.finish(results)
            finally:
                store.close()
    calibrations = {s: c for p in pipelines.values() for s, c in p.calibrations.items()}
    return results, calibrations


def run(args: argparse.Namespace) -> int:
    state = _Run()
    try:
        results, calibrations = asyncio.run(_record(args, state))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sig = signal.Signals(state.signal or signal.SIGINT)
        print(f"dorsimeter: stopped by {sig.name}: wrote {state.n} samples to "
              f"{', '.join(out_paths(args).values())}, "
              f"stored session {state.session_id}", file=sys.stderr)
        return EXIT_CODES.get(sig, 128 + int(sig))
    print(f"wrote {state.n} samples to {', '.join(out_paths(args).values())}")
    print_results(results, calibrations)
    print(f"stored session {state.session_id}")
    return 0
