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
    MAX_DURATION_S,
    SESSION_ID_ARG,
    add_source_options,
    add_store_options,
    athlete_geometry_from_args,
    guard_outputs,
    number_arg,
    open_source_from_args,
    print_results,
    say_rate,
    sensor_arg,
    session_recorder_from_args,
)
from dorsimeter.errors import DorsimeterError
from dorsimeter.session.exercise import EXERCISES, exercise_of_sensor
from dorsimeter.store.security import add_force_option
from dorsimeter.types import SIDES

if TYPE_CHECKING:  # imported when a recording runs: the core costs seconds of start-up
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.session.live import Leg, LiveSession, SignalStop
    from dorsimeter.session.results import SessionResults


def register(sub) -> None:
    p = sub.add_parser(
        "record", help="record the raw stream to CSV",
        epilog="Ctrl-C (SIGINT), closing the terminal (SIGHUP) or SIGTERM stop the recording: "
               "the raw CSV is flushed and closed, the session is stored and marked ended, and "
               "the exit code is 130, 129 or 143 (128 + the signal number). After a crash or "
               "SIGKILL, `dorsimeter recover` keeps what was recorded.")
    add_source_options(p)
    p.add_argument("--right-sensor", metavar="SENSOR",
                   type=sensor_arg("--right-sensor", empty_is_none=True),
                   help="a second sensor on the right shin, live at the same time: --sensor is "
                   "then the left one, and OUT becomes OUT-left.csv and OUT-right.csv")
    p.add_argument("--duration", required=True, help="seconds of device time",
                   type=number_arg(0, MAX_DURATION_S, "seconds of device time", above_lo=True))
    p.add_argument("--out", required=True, help="raw CSV to write (a new file: an existing "
                   "one is refused, each session keeps its own)")
    add_force_option(p)
    p.add_argument("--exercise", choices=sorted(EXERCISES), metavar="EXERCISE",
                   help="what is done: " + ", ".join(EXERCISES) + " (default: the simulator "
                   "script's, sim:lunge is reverse_lunge; else wall_test)")
    p.add_argument("--session", type=SESSION_ID_ARG, metavar="N",
                   help="add this leg to stored session N (both legs tested one after the "
                   "other, so the asymmetry is within one session)")
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
        if pipeline.progress.phase == "calibrated" and len(readings):
            self.parts[side] = f"{readings.tibia_angle_deg[-1]:5.1f}°"
        else:
            self.parts[side] = f"calibrating: {pipeline.progress.text}"
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
    live: LiveSession | None = None
    session_id: int | None = None
    stop: SignalStop | None = None  # what stops it on Ctrl-C, hang-up, SIGTERM

    @property
    def n(self) -> int:
        """Samples recorded (every leg's)."""
        return 0 if self.live is None else self.live.samples

    @property
    def signal(self) -> int | None:
        """The signal that stopped the recording."""
        return None if self.stop is None else self.stop.signal


class _Storage:
    """The raw CSVs, the store and the session row, made at a leg's first sample
    (``LiveSession.on_start``): a sensor that never connects leaves no file and no session."""

    def __init__(self, args: argparse.Namespace, paths: dict[str, str], names: dict[str, str],
                 cals, results: SessionResults, files: contextlib.ExitStack) -> None:
        self.args, self.paths, self.names, self.cals = args, paths, names, cals
        self.results, self.files = results, files
        self.store = self.recorder = None

    def start(self, leg: Leg) -> None:
        from dorsimeter.io.rawcsv import RawCsvWriter

        leg.raw = self.files.enter_context(RawCsvWriter(self.paths[leg.side]))
        say_rate(leg)
        if self.recorder is None:
            args = self.args
            legs = {s: (self.names[s], self.paths[s]) for s in self.paths}
            self.store, self.recorder = session_recorder_from_args(
                args, "record", " + ".join(self.names.values()), self.cals,
                list(self.paths.values()), session_id=args.session, legs=legs)
            self.results.athlete = athlete_geometry_from_args(args, self.store)

    def add(self, readings, events) -> None:
        assert self.recorder is not None
        self.recorder.add(readings, events)


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
    from dorsimeter.io.calfiles import sensor_cal_for
    from dorsimeter.pipeline import Pipeline

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


async def _record(args: argparse.Namespace, state: _Run) -> tuple[SessionResults, dict]:
    from dorsimeter.io.calfiles import load_calibrations
    from dorsimeter.session.live import Leg, LiveSession, MountCheck, SignalStop
    from dorsimeter.session.results import SessionResults

    task = asyncio.current_task()
    assert task is not None
    state.stop = SignalStop(lambda sig: task.cancel())  # stop as Ctrl-C does: cancel, clean up
    state.stop.install()
    paths = out_paths(args)
    sides = list(paths)
    if args.session is not None:
        check_session_for_leg(args, sides)
    sources = open_sources(args)
    cals = load_calibrations(args.calibration) if args.calibration else None
    pipelines = live_pipelines(args, sources, cals)
    with contextlib.ExitStack() as files:
        rates = {src.rate_hz for src in sources.values()}  # else each side's from its clock
        results = SessionResults(rate_hz=rates.pop() if len(rates) == 1 else None)
        results.set_exercise(args.exercise or exercise_of_sensor(args.sensor))
        storage = _Storage(args, paths, {side: sources[side].name for side in sides}, cals,
                           results, files)
        legs = [Leg(sources[side], pipelines[side], sink=storage.add,
                    bound=bool(args.right_sensor),
                    mount_check=MountCheck(cals, args.calibration) if cals else None)
                for side in sides]
        state.live = live = LiveSession(legs, results, duration_s=args.duration,
                                        on_start=storage.start)
        status = StatusLine(args.duration, sides) if sys.stdout.isatty() else None

        def show(step) -> None:
            for e in step.events:
                if e.kind == "mount_mismatch":  # the calibration file is another mount's
                    print(e.message, file=sys.stderr)
            if status is not None:
                status.update(step.leg.side, step.leg.pipeline, step.readings,
                              step.leg.elapsed_s)

        try:
            await live.run(show)
        finally:  # however it stops (done, Ctrl-C, hang-up, device lost): store and end it
            if status is not None:
                status.close()
            if storage.recorder is not None:  # nothing came: nothing to store
                try:
                    state.session_id = storage.recorder.finish(results)
                finally:
                    if storage.store is not None:  # always: start() makes it with the recorder
                        storage.store.close()
    return results, live.calibrations


def check_session_for_leg(args: argparse.Namespace, sides: list[str]) -> None:
    """``--session N`` adds a leg not yet in session N, of the same athlete."""
    from dorsimeter.store import Store

    with Store.open(getattr(args, "home", None)) as store:
        info = store.session(args.session)
        have = {t.side for t in store.trials(info.id)} | set(store.legs(info.id))
        twice = [s for s in sides if s in have]
        if twice:
            raise DorsimeterError(f"--session {info.id}: it already holds the {twice[0]} leg; "
                                  "record the other leg into it, or start a new session")
        if args.athlete and info.athlete and args.athlete.strip() != info.athlete:
            raise DorsimeterError(f"--session {info.id} is {info.athlete}'s, not "
                                  f"{args.athlete}'s")
        if not args.athlete:
            args.athlete = info.athlete


def run(args: argparse.Namespace) -> int:
    guard_outputs(args, {"--out": (list(out_paths(args).values()), True)},
                  inputs=[args.calibration, args.sensor_cal])
    state = _Run()
    try:
        results, calibrations = asyncio.run(_record(args, state))
    except (KeyboardInterrupt, asyncio.CancelledError):
        from dorsimeter.session.live import exit_code

        sig = signal.Signals(state.signal or signal.SIGINT)
        print(f"dorsimeter: stopped by {sig.name}: wrote {state.n} samples to "
              f"{', '.join(out_paths(args).values())}, "
              f"stored session {state.session_id}", file=sys.stderr)
        return exit_code(sig)
    print(f"wrote {state.n} samples to {', '.join(out_paths(args).values())}")
    print_results(results, calibrations)
    if args.session is not None and state.session_id is not None:
        print_session_asymmetry(args, state.session_id)
    print(f"stored session {state.session_id}")
    return 0


def print_session_asymmetry(args: argparse.Namespace, session_id: int) -> None:
    """Both legs now in one session: their asymmetry, from the stored wall tests."""
    from dorsimeter.store import Store
    from dorsimeter.store.summary import asymmetry, geometry, summarize

    with Store.open(getattr(args, "home", None)) as store:
        info = store.session(session_id)
        a = store.find_athlete(info.athlete) if info.athlete else None
        geo = None if a is None else geometry(a.tibia_length_m, a.foot_length_m)
        asym = asymmetry(summarize(store.trials(session_id)), athlete=geo)
    if asym is not None:
        print(f"session {session_id}, both legs: {asym.line()}")
