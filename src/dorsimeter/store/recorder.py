"""A live session into the store as it happens: the row first, samples per batch, trials last.

The session row is written before the first sample with ``ended = 0`` and marked ended when the
session finishes, so a crash leaves a visible unfinished session with every sample it received.
Each rep is stored the moment the pipeline reports it ended (a ``rep`` event).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from dorsimeter.detect.reps import RepRecord
from dorsimeter.pipeline.pipeline import Event
from dorsimeter.session.results import SessionResults, scored_hold
from dorsimeter.store.db import Store, Trial
from dorsimeter.types import ImuBatch, Readings

NO_SOURCE = "none"


def trial_from_rep(rep: RepRecord) -> Trial | None:
    """A rep of the session (the pipeline's ``RepRecord``, numbered by ``SessionResults``) as a
    stored trial: the one conversion from the rep shape to the stored row.

    The angle is the held end-range angle, or the peak when the rep never held (None: no angle
    at all, nothing to store); ``scored`` says whether it counts (held with the heel down).
    Exercise, set and the 1-based rep number are the session's (it numbers the reps it counts,
    per leg and exercise).
    """
    angle = rep.angle_deg
    if angle is None:
        return None
    source = None if rep.heel_source in (None, "", NO_SOURCE) else str(rep.heel_source)
    peak = float(rep.peak_deg) if np.isfinite(rep.peak_deg) else None
    hold = scored_hold(rep)
    return Trial(
        side=str(rep.side), angle_deg=angle,
        valid=None if source is None else bool(rep.valid), heel_source=source,
        t_start_s=float(rep.t_start_s), t_end_s=None if rep.t_end_s is None else float(rep.t_end_s),
        rep=rep.rep_no if rep.rep_no is not None else int(rep.index) + 1,
        exercise=rep.exercise or "wall_test",
        set_no=rep.set_no, hold_s=float(rep.hold_s),
        scored=bool(rep.scored), peak_deg=peak,
        hold_start_s=None if hold is None else hold[0],
        hold_end_s=None if hold is None else hold[1],
        peak_valgus_deg=_finite(rep.peak_valgus_deg))


def _finite(v) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


@dataclass(frozen=True)
class ResultsSnapshot:
    """What ``SessionRecorder.finish`` stores of a session, copied on the thread that owns the
    session (the monitor's event loop, which goes on adding reps and filling in the angle of a
    rep counted mid-hold): the store thread then reads this copy, never the live results."""

    counted: list[RepRecord]
    max_deg: dict[str, float]

    @classmethod
    def of(cls, results: SessionResults) -> ResultsSnapshot:
        """The session's counted reps (each copied) and per-side maxima, as they are now."""
        return cls([replace(r, holds=list(r.holds)) for r in results.counted],
                   dict(results.max_deg))


def trials_from_results(results: SessionResults | ResultsSnapshot,
                        spans: dict[str, tuple[float, float]]) -> list[Trial]:
    """What the session counted, as stored trials (one per counted rep, ``trial_from_rep``).
    Without any, the per-side maximum (``max_deg``) is kept as an unscored ``session_max`` row
    over the span of that side's samples, so the number the terminal printed is in the history
    too."""
    out = [t for t in map(trial_from_rep, results.counted) if t is not None]
    if out:
        return out
    for side, angle_deg in sorted(results.max_deg.items()):
        t0, t1 = spans.get(side, (None, None))
        out.append(Trial(side, float(angle_deg), None, None, t0, t1, exercise="session_max",
                         scored=False))
    return out


class SessionRecorder:
    """Stores one record/monitor session: ``add`` per pipeline output, ``finish`` at the end."""

    def __init__(self, store: Store, kind: str, athlete: str | None = None,
                 sensor: str | None = None, sensor_kind: str | None = None,
                 raw_path: str | os.PathLike | None = None, notes: str | None = None,
                 calibrations: dict | None = None, session_id: int | None = None,
                 legs: dict[str, tuple[str | None, str | None]] | None = None) -> None:
        """``legs``: side → (sensor name, raw CSV) where they are known per leg (two sensors,
        or one leg); a side first seen in the readings is otherwise measured by ``sensor``.
        ``session_id``: continue that stored session (another leg, one after the other): its
        trials are kept and this recording's added to them."""
        self.store = store
        self.sensor = sensor
        self.sensor_kind = sensor_kind
        self.legs = dict(legs or {})
        self.kept: list[Trial] = []
        if session_id is None:
            self.session_id = store.start_session(kind, athlete, sensor, sensor_kind, raw_path,
                                                  notes)
        else:
            store.reopen_session(session_id, raw_path if not isinstance(raw_path, list | tuple)
                                 else (raw_path[0] if raw_path else None))
            self.session_id = session_id
            self.kept = store.trials(session_id)
        self._seen_legs: set[str] = set()
        for side, (name, raw) in sorted(self.legs.items()):
            # a second sensor, or a leg added later, keeps its own clock
            own = session_id is not None or (len(self.legs) > 1 and name != sensor)
            store.add_leg(self.session_id, side, name, sensor_kind, raw, own_clock=own)
            self._seen_legs.add(side)
        self.spans: dict[str, tuple[float, float]] = {}
        self.samples = 0
        self.reps = 0
        self._holds: dict[tuple[str, str, int | None], tuple[float | None, float | None]] = {}
        for side, cal in sorted((calibrations or {}).items()):
            store.add_calibration(self.session_id, side, cal, origin="file", sensor=sensor)

    def add(self, readings: Readings, events: Iterable[Event] = ()) -> None:
        """Store a batch of readings and any calibration the pipeline made."""
        for e in events:
            if e.kind == "calibrated" and e.calibration is not None:
                self.store.add_calibration(self.session_id, e.side, e.calibration, "live",
                                           self.sensor)
            elif e.kind == "rep" and e.rep is not None and e.rep.rep_no is not None \
                    and (t := trial_from_rep(e.rep)) is not None:  # a rep the session counted
                self._holds[(t.side, t.exercise, t.rep)] = (t.hold_start_s, t.hold_end_s)
                self._store_trial(t)
                self.reps += 1
        n = len(readings)
        if n == 0:
            return
        for side in dict.fromkeys(np.asarray(readings.side).tolist()):
            if side not in self._seen_legs:  # the sensor moved to this leg
                self._seen_legs.add(side)
                self.store.add_leg(self.session_id, str(side), self.sensor, self.sensor_kind,
                                   own_clock=bool(self.kept))
        self.store.add_samples(self.session_id, readings)
        self.samples += n
        sides = np.asarray(readings.side)
        for side in np.unique(sides):
            t = readings.t_s[sides == side]
            t0, _ = self.spans.get(str(side), (float(t[0]), 0.0))
            self.spans[str(side)] = (t0, float(t[-1]))

    def tap(self, push: Callable[[ImuBatch], tuple[Readings, list]],
            results: SessionResults | None = None
            ) -> Callable[[ImuBatch], tuple[Readings, list]]:
        """Wrap a pipeline's ``push`` so everything it returns goes to the session ``results``
        (which numbers the reps it counts) and then into the store."""

        def stored_push(batch: ImuBatch) -> tuple[Readings, list]:
            readings, events = push(batch)
            if results is not None:
                results.add(readings, events)
            self.add(readings, events)
            return readings, events

        return stored_push

    def _store_trial(self, t: Trial) -> None:
        self.store.add_trials(self.session_id, [t])

    def finish(self, results: SessionResults | ResultsSnapshot) -> int:
        """Store what ``results`` scored and mark the session ended; returns the session id.

        The reps stored as they ended are replaced by the results' own list when it has one
        (it is what the coach saw, e.g. with manual trials), in one transaction.
        """
        trials = [
            t if t.hold_start_s is not None or (t.side, t.exercise, t.rep) not in self._holds
            else replace(t, hold_start_s=self._holds[(t.side, t.exercise, t.rep)][0],
                         hold_end_s=self._holds[(t.side, t.exercise, t.rep)][1])
            for t in trials_from_results(results, self.spans)]
        if any(t.exercise != "session_max" for t in trials) or self.reps == 0:
            self.store.replace_trials(self.session_id, [*self.kept, *trials])
        self.store.end_session(self.session_id)
        return self.session_id
