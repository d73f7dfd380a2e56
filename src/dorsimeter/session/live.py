"""The one live session: sensors streaming through raw CSVs, pipelines, one set of session
results and the history, for ``record``, live ``calibrate`` and the monitor alike.

A :class:`Leg` is one sensor: its source, its pipeline (fusion, calibration, detectors), an
optional raw CSV writer and an optional store sink. :class:`LiveSession` runs one or two legs
into one :class:`SessionResults`: each batch goes source → raw CSV → pipeline → session results
(which number the reps) → guided exercise → store sink, in that order, in :meth:`LiveSession.step`
(synchronous: the pipeline is pure and fast). The asyncio part is only :meth:`run_leg`: two
sensors connect one after the other (two BLE scans or connects at once on one adapter can miss
the second sensor), and with ``keep_going`` one leg failing (its sensor lost, its disk full)
ends that leg's part only, the other streams on.

:class:`SignalStop` is the process's side of a live session: Ctrl-C, hang-up and SIGTERM stop it
as the user's own stop does, so everything recorded is flushed, stored and marked ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from signal import SIGHUP, SIGINT, SIGTERM
from typing import cast

import numpy as np

from dorsimeter.detect.reps import RepRecord
from dorsimeter.exercises.runner import ProtocolRunner
from dorsimeter.io.rawcsv import RawCsvWriter
from dorsimeter.pipeline import Event, Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.sources.base import Source
from dorsimeter.types import ImuBatch, Readings

#: where a leg's readings and events go to be stored (``SessionRecorder.add``,
#: ``StoreClient.record``), after the session results numbered the reps
Sink = Callable[[Readings, list[Event]], None]


@dataclass(eq=False)
class Leg:
    """One sensor in a live session, and what the runner saw of it.

    ``bound``: the sensor is strapped to its pipeline's side whatever its batches say (a sensor
    per shin); else a batch's own side counts (a recording of both legs, one clip moved)."""

    source: Source
    pipeline: Pipeline
    raw: RawCsvWriter | None = None
    sink: Sink | None = None
    bound: bool = False
    samples: int = 0
    t_first_s: float | None = None  # device time of its first sample
    t_last_s: float | None = None  # ... and of its last
    latest: tuple[float, float] | None = None  # (t_s, tibia angle) of its last reading
    ended: bool = False  # its stream stopped: finished, or failed (``error``)
    error: str | None = None

    @property
    def side(self) -> str:
        return self.pipeline.side

    @property
    def elapsed_s(self) -> float:
        """Device time since its first sample (0 before it)."""
        if self.t_first_s is None or self.t_last_s is None:
            return 0.0
        return self.t_last_s - self.t_first_s


@dataclass
class Step:
    """One batch through a leg: what the pipeline made of it, and what else happened."""

    leg: Leg
    batch: ImuBatch
    readings: Readings
    events: list[Event]  # the pipeline's
    guided: list[Event] = field(default_factory=list)  # the guided exercise's ended reps
    raw_stopped: str | None = None  # the raw CSV failed on this batch (``keep_going``): why


#: called after every step; True: this leg has what it came for (live calibrate), it stops
OnStep = Callable[[Step], bool | None]


class LiveSession:
    """One or two legs into one :class:`SessionResults`.

    ``duration_s``: each leg stops after this much of its own device time from its first sample
    (lost samples do not lengthen it). ``keep_going``: a leg's failure (its sensor lost for good,
    its raw CSV's disk full) ends that part only and is kept in ``Leg.error`` / the step's
    ``raw_stopped``, the other leg and the live view go on (the monitor); else it ends the run
    (``record`` and ``calibrate``: one line, exit 1). ``on_start(leg)`` is called before a leg's
    first batch (``record`` makes its files and session row there: a sensor that never
    connects leaves none)."""

    def __init__(self, legs: list[Leg], results: SessionResults, *,
                 duration_s: float | None = None, keep_going: bool = False,
                 on_start: Callable[[Leg], None] | None = None) -> None:
        self.legs = list(legs)
        self.results = results
        self.duration_s = duration_s
        self.keep_going = keep_going
        self.on_start = on_start
        self._connecting = asyncio.Lock()  # held by a leg until its first batch
        self.protocol: ProtocolRunner | None = None
        self.guided: Leg | None = None  # the leg a guided exercise follows (the chosen one)
        self._counted = 0  # the runner's counted reps already in the session
        self._pending: list[RepRecord] = []  # guided reps not ended yet (no end-range angle)

    @property
    def samples(self) -> int:
        return sum(leg.samples for leg in self.legs)

    @property
    def calibrations(self) -> dict:
        """The mounting calibrations per side (each leg's own)."""
        return {s: c for leg in self.legs for s, c in leg.pipeline.calibrations.items()}

    # -- the session's content --------------------------------------------------------------

    def guide(self, runner: ProtocolRunner | None) -> None:
        """Start (None: stop) a guided exercise: its reps become the session's (its exercise,
        sets and reps); stopping it goes back to wall tests."""
        self.protocol = runner
        self._counted = 0
        self._pending = []
        p = None if runner is None else runner.protocol
        self.results.set_exercise(None if p is None else p.name, guided=p is not None)

    def new_results(self, results: SessionResults) -> None:
        """A fresh session (a new athlete or sensor): a guided exercise under way goes on in it."""
        self.results = results
        self.guide(self.protocol)

    # -- one batch ----------------------------------------------------------------------------

    def step(self, leg: Leg, batch: ImuBatch) -> Step:
        """One batch of ``leg``: raw CSV, pipeline, session results, guided exercise, store."""
        if leg.bound:
            batch.side = leg.side  # a sensor bound to a shin stays there
        if leg.t_first_s is None:
            self._take_rate(leg)
            if self.on_start is not None:
                self.on_start(leg)
        leg.t_first_s = float(batch.t_s[0]) if leg.t_first_s is None else leg.t_first_s
        raw_stopped = self._write_raw(leg, batch) if leg.raw is not None else None
        readings, events = leg.pipeline.push(batch)
        leg.samples += len(batch)
        leg.t_last_s = float(batch.t_s[-1])
        if len(readings):
            leg.latest = (float(readings.t_s[-1]), float(readings.tibia_angle_deg[-1]))
        self.results.add(readings, events)  # numbers the reps it counts before they are stored
        guided: list[Event] = []
        if self.protocol is not None and leg is self.guided:
            self.protocol.add(readings, events)
            guided = self._guided_reps()
        if leg.sink is not None:
            leg.sink(readings, [*events, *guided])
        return Step(leg, batch, readings, events, guided, raw_stopped)

    def _take_rate(self, leg: Leg) -> None:
        """The rate the leg's source streams at, known now that it streams (a BLE family's is
        negotiated at connecting: the nearest it offers to the one asked), for its pipeline and
        the session results (with two legs at different rates: each side's from its clock)."""
        rate_hz = leg.source.rate_hz
        if leg.pipeline.rate_hz != rate_hz:
            leg.pipeline.set_rate(rate_hz)
        if self.results.rate_hz is not None and self.results.rate_hz != rate_hz:
            self.results.rate_hz = rate_hz if len(self.legs) == 1 else None

    def _write_raw(self, leg: Leg, batch: ImuBatch) -> str | None:
        """Append to the leg's raw CSV. With ``keep_going`` a full disk or a read-only directory
        stops that recording (what was written stays readable) and says why; else it is the
        run's error."""
        assert leg.raw is not None
        try:
            leg.raw.write(batch, batch.side or leg.side)
        except OSError as e:
            if not self.keep_going:
                raise
            raw, leg.raw = leg.raw, None
            with contextlib.suppress(OSError):
                raw.close()
            where = f"{e.filename}: " if e.filename else ""
            return f"recording stopped: {where}{e.strerror or e}"
        return None

    def _guided_reps(self) -> list[Event]:
        """The guided reps the runner counted since last time go to the session (numbered
        there, with the runner's set); each becomes a ``rep`` event for the store when its rep
        has ended (its end-range angle known)."""
        assert self.protocol is not None
        counted = self.protocol.counted
        for c in counted[self._counted:]:
            rec = c.record
            if rec is None:  # a timer-only hold: the hold is the rep
                hold_s = self.protocol.protocol.hold_s
                rec = RepRecord(-1, c.side, c.t_s - hold_s, c.t_s, hold_s=hold_s,
                                hold_reached_s=c.t_s, holds=[(c.t_s - hold_s, c.t_s, 0.0)])
                rec.end_range_deg = rec.peak_deg = 0.0
            self.results.add_counted(c.side, c.set_no, rec)
            self._pending.append(rec)
        self._counted = len(counted)
        ended = [r for r in self._pending if r.t_end_s is not None]
        self._pending = [r for r in self._pending if r.t_end_s is None]
        # ended: their end time is set
        return [Event("rep", cast(float, r.t_end_s), r.side, f"{r.exercise} rep {r.rep_no}", rep=r)
                for r in ended]

    # -- streaming ----------------------------------------------------------------------------

    async def run(self, on_step: OnStep | None = None) -> None:
        """Every leg until each has ended; without ``keep_going`` the first failure ends the
        others too and is raised."""
        tasks = [asyncio.ensure_future(self.run_leg(leg, on_step)) for leg in self.legs]
        try:
            await asyncio.gather(*tasks)
        finally:  # a failure or a stop: no leg streams on unwatched
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def run_leg(self, leg: Leg, on_step: OnStep | None = None) -> None:
        """One leg's stream, from connecting to its end (``duration_s``, ``on_step`` saying so,
        the source ending or failing); its source is closed however it ends."""
        leg.ended, leg.error = False, None
        await self._connecting.acquire()
        holding = True
        try:
            async for batch in leg.source:
                if holding:  # connected and streaming: the other sensor may connect now
                    self._connecting.release()
                    holding = False
                if len(batch) == 0:
                    continue
                done = False
                if self.duration_s is not None:
                    t0_s = float(batch.t_s[0]) if leg.t_first_s is None else leg.t_first_s
                    # half a sample short of the end: duration × rate samples of a regular
                    # stream whatever the rounding of its device times (0.92 + 20.0 s must
                    # not keep the sample stamped 20.919999…)
                    t_end = t0_s + self.duration_s - 0.5 / leg.source.rate_hz
                    keep = int(np.searchsorted(batch.t_s, t_end, side="left"))
                    done = keep < len(batch)
                    batch = batch.slice(0, keep)
                    if len(batch) == 0:
                        break
                step = self.step(leg, batch)
                if (on_step is not None and on_step(step)) or done:
                    break
        except Exception as e:  # this sensor is gone for good
            if not self.keep_going:
                raise
            leg.error = str(e)
        finally:
            if holding:
                self._connecting.release()
            leg.ended = True
            await leg.source.close()


def exit_code(sig: int) -> int:
    """The exit code of a process stopped by ``sig``: 128 + its number (130, 129, 143)."""
    return 128 + int(sig)


@dataclass
class SignalStop:
    """Ctrl-C (SIGINT), hang-up (SIGHUP) and SIGTERM stop a live session as the user's own stop
    does (``stop(sig)``: ``record`` cancels the recording, the monitor quits as ``q`` does), so
    the raw CSVs are flushed and closed and the session is stored and marked ended.

    After a hang-up the terminal is gone: stdout then goes to /dev/null, since a write to the
    dead terminal can kill textual's writer thread and leave its shutdown waiting on it for good
    (seen about one hang-up in ten). ``stuck(code)``, when given, is the backstop: called from a
    timer thread if the process is still running ``stuck_s`` after the signal."""

    stop: Callable[[int], object]
    stuck: Callable[[int], object] | None = None
    stuck_s: float = 10.0
    signals: tuple[int, ...] = (SIGHUP, SIGTERM, SIGINT)  # the field below shadows the module
    signal: int | None = field(default=None, init=False)  # the signal that stopped it

    def install(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Handle the signals on ``loop`` (the running one by default)."""
        loop = loop or asyncio.get_running_loop()
        for sig in self.signals:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.on_signal, sig)

    @property
    def code(self) -> int | None:
        return None if self.signal is None else exit_code(self.signal)

    def on_signal(self, sig: int) -> None:
        self.signal = sig
        if sig == signal.SIGHUP:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                # no stdout (None): the AttributeError is suppressed above
                os.dup2(devnull, sys.__stdout__.fileno())  # pyright: ignore[reportOptionalMemberAccess]
                os.close(devnull)
        if self.stuck is not None:
            timer = threading.Timer(self.stuck_s, self.stuck, args=(exit_code(sig),))
            timer.daemon = True
            timer.start()
        self.stop(sig)
