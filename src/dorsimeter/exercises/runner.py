"""Runs a guided protocol on the pipeline's readings: counters, hold timers, cues.

Tracked protocols count the pipeline's own reps (one rep tracker: its rep events, and its rep
under way for the hold timer). The pipeline tracks them with the protocol's hold while the
exercise runs (``Detectors.set_rep_hold``, set by the live session). A rep *counts* when its
end-range hold reaches ``hold_s`` with the heel down (no heel lift before that moment), while
the protocol runs; a rep whose heel lifted first, or that came back early, is listed in
``missed`` with the reason. Each counted rep keeps its end-range angle, so progress within the
session shows. Timer-only protocols (``tracked = false``) run on device time: hold, rest, next
rep, set rest.

The TUI reads ``runner.state`` (a :class:`ProtocolState`); the live session calls
``add(readings, events, trackers)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from dorsimeter.detect.reps import RepRecord, RepTracker
from dorsimeter.exercises.protocol import Protocol, get_protocol
from dorsimeter.types import SIDES, Readings

if TYPE_CHECKING:  # the pipeline (scipy) stays out of a light import
    from dorsimeter.pipeline.pipeline import Event


@dataclass
class CountedRep:
    """A rep that counted: side, set and rep number (1-based), its end-range angle."""

    side: str
    set_no: int
    rep_no: int
    t_s: float  # when the hold was reached
    end_range_deg: float | None = None  # filled when the rep ends
    record: RepRecord | None = None


@dataclass
class ProtocolState:
    """What the protocol line in the UI shows (names are what ``render_protocol`` reads)."""

    name: str
    exercise: str
    side: str | None
    set: int  # current set, 1-based
    sets: int
    rep: int  # reps counted in the current set
    reps: int
    hold_remaining_s: float | None
    cue: str
    done: bool
    counted: int  # all reps counted, all sides
    missed: int
    #: (side, rep number, peak valgus °) of every counted rep, for the squat screen
    valgus: tuple[tuple[str, int, float], ...] = ()


@dataclass
class _SideProgress:
    set_no: int = 1
    in_set: int = 0
    done: bool = False
    counted: list[CountedRep] = field(default_factory=list)


class ProtocolRunner:
    """Counts a protocol's reps from readings. ``sets``/``reps`` default to the upper bounds."""

    def __init__(self, protocol: Protocol | str, sets: int | None = None,
                 reps: int | None = None, sides: tuple[str, ...] | None = None) -> None:
        self.protocol = p = get_protocol(protocol) if isinstance(protocol, str) else protocol
        self.sets = int(sets or p.sets[1])
        self.reps = int(reps or p.reps[1])
        self.sides = sides  # None: the sides the readings bring (per_side: both)
        self.progress: dict[str, _SideProgress] = {}
        self.missed: list[tuple[RepRecord, str]] = []
        # the pipeline's reps already judged (by identity: a new sensor's pipeline numbers its
        # reps from 0 again), kept alive so that an id is never reused
        self._judged: dict[int, RepRecord] = {}
        self._pending: dict[int, CountedRep] = {}  # counted at their hold, not ended yet
        self._t0_s: float | None = None  # device time of the first reading it was given
        self.side: str | None = None
        self.cue = p.cue("start")
        self.hold_remaining_s: float | None = None
        self.t_s: float | None = None
        # timer-only state
        self._timer_t0: float | None = None  # start of the phase under way
        self._timer_holding = True
        self._rest_cue = ""

    # -- progress -------------------------------------------------------------------------------
    def _prog(self, side: str) -> _SideProgress:
        return self.progress.setdefault(side, _SideProgress())

    @property
    def counted(self) -> list[CountedRep]:
        return [c for s in SIDES for c in self.progress.get(s, _SideProgress()).counted]

    @property
    def done(self) -> bool:
        if self.protocol.tracked and self.protocol.per_side:
            need = self.sides or SIDES
            return all(self.progress.get(s, _SideProgress()).done for s in need)
        return any(pr.done for pr in self.progress.values())

    @property
    def state(self) -> ProtocolState:
        pr = self._prog(self.side or "left") if self.side or self.progress else _SideProgress()
        return ProtocolState(self.protocol.name, self.protocol.title, self.side,
                             min(pr.set_no, self.sets), self.sets, pr.in_set, self.reps,
                             self.hold_remaining_s, self.cue, self.done, len(self.counted),
                             len(self.missed), self.peak_valgus())

    def peak_valgus(self) -> tuple[tuple[str, int, float], ...]:
        """(side, rep number, peak valgus °) of the counted reps so far (a rep under way
        carries its largest knee track yet)."""
        return tuple((c.side, c.rep_no, float(c.record.peak_valgus_deg)) for c in self.counted
                     if c.record is not None and np.isfinite(c.record.peak_valgus_deg))

    def _count(self, side: str, t_s: float, rep: RepRecord | None) -> CountedRep | None:
        pr = self._prog(side)
        if pr.done:
            return None
        pr.in_set += 1
        c = CountedRep(side, pr.set_no, pr.in_set, t_s, record=rep)
        pr.counted.append(c)
        if rep is not None:
            rep.exercise, rep.set_no = self.protocol.name, pr.set_no
        if pr.in_set >= self.reps:
            if pr.set_no >= self.sets:
                pr.done = True
                self.cue = self.protocol.cue("done") if self.done else self.protocol.cue("side")
            else:
                pr.set_no, pr.in_set = pr.set_no + 1, 0
                self.cue = self.protocol.cue("set_rest")
        else:
            self.cue = self.protocol.cue("release")
        return c

    # -- data in --------------------------------------------------------------------------------
    def add(self, readings: Readings, events: list[Event] | None = None,
            trackers: Mapping[str, RepTracker] | None = None) -> None:
        """The pipeline's next readings, its events for them (ended reps, heel-lift and
        knee-drift alerts) and its rep trackers per side (the rep and hold under way)."""
        if len(readings) == 0:
            return
        if self._t0_s is None:
            self._t0_s = float(readings.t_s[0])
        if not self.protocol.tracked:
            self.side = str(readings.side[-1])
            self.tick(float(readings.t_s[-1]))
            return
        sides = np.asarray(readings.side)
        for side in dict.fromkeys(sides.tolist()):
            mine = [e for e in events or [] if e.side == side]
            self._add_side(side, float(readings.t_s[sides == side][-1]),
                           [e.rep for e in mine if e.kind == "rep" and e.rep is not None],
                           [e.kind for e in mine if e.kind in ("heel_lift", "knee_drift")],
                           (trackers or {}).get(side))

    def _add_side(self, side: str, t_s: float, ended: list[RepRecord], alerts: list[str],
                  tracker: RepTracker | None) -> None:
        self.side = side
        self.t_s = t_s
        p = self.protocol
        for kind in alerts:
            self.cue = p.cue("heel" if kind == "heel_lift" else "drift") or self.cue
        cur = None if tracker is None else tracker.current
        for rep in [*ended, *([cur] if cur is not None else [])]:
            if id(rep) in self._judged or rep.hold_reached_s is None:
                continue
            if rep.lift_t_s is not None and rep.lift_t_s <= rep.hold_reached_s:
                continue
            self._judged[id(rep)] = rep
            assert self._t0_s is not None  # set by ``add``
            if rep.hold_reached_s < self._t0_s:  # held before the protocol started
                continue
            c = self._count(side, rep.hold_reached_s, rep)
            if c is not None:
                # the hold under way so far (replaced by the rep's own when it ends), else the
                # rep's end range (it ended, or the hold it reached has just closed)
                holding = None if rep is not cur or tracker is None else tracker.hold_angle_deg
                c.end_range_deg = rep.end_range_deg if holding is None else holding
                self._pending[id(rep)] = c
        for rep in ended:
            c = self._pending.pop(id(rep), None)
            if c is not None:
                c.end_range_deg = rep.end_range_deg
            elif id(rep) not in self._judged and not self._prog(side).done:
                why = "heel lifted" if not rep.valid else (
                    f"hold shorter than {p.hold_s:g} s")
                self.missed.append((rep, why))
                if rep.valid:
                    self.cue = f"Hold {p.hold_s:g} s at end range"
        hs = None if tracker is None else tracker.hold_started_s
        if cur is not None and hs is not None and id(cur) not in self._judged and cur.valid:
            self.hold_remaining_s = max(0.0, p.hold_s - (self.t_s - hs))
            self.cue = p.cue("hold")
        else:
            self.hold_remaining_s = None
            if cur is not None and id(cur) not in self._judged and cur.valid and hs is None:
                self.cue = p.cue("drive")

    def tick(self, t_s: float) -> None:
        """Advance a timer-only protocol to device time ``t_s``."""
        if self.protocol.tracked:
            return
        p = self.protocol
        side = self.side or "left"
        pr = self._prog(side)
        if self._timer_t0 is None:
            self._timer_t0, self._timer_holding = t_s, True
        while not pr.done:
            # a hold of hold_s, then a rest (a set rest after the last rep of a set)
            if self._timer_holding:
                hold_end = self._timer_t0 + p.hold_s
                if t_s < hold_end:
                    self.hold_remaining_s = hold_end - t_s
                    self.cue = p.cue("hold")
                    return
                set_done = pr.in_set + 1 >= self.reps
                self._count(side, hold_end, None)
                if pr.done:
                    break
                self._timer_t0 = hold_end + (p.set_rest_s if set_done else p.rest_s)
                self._timer_holding = False
                self._rest_cue = p.cue("set_rest" if set_done else "rest")
            if t_s < self._timer_t0:
                self.hold_remaining_s = None
                self.cue = self._rest_cue
                return
            self._timer_holding = True
        self.hold_remaining_s = None
        self.cue = p.cue("done")
