"""Stored sessions for the export tests, made the way `record` makes them."""

from __future__ import annotations

from dorsimeter.core import Pipeline
from dorsimeter.session import SessionResults
from dorsimeter.store import SessionRecorder, Store
from tests.conftest import simulate


def stored_session(store: Store, seconds: float = 40.0, athlete: str = "Zoë Ødegård",
                   seeds: tuple[int, int] = (1, 2)) -> int:
    """A simulated two-sided session stored the way `record` stores it."""
    rec = SessionRecorder(store, "record", athlete=athlete, sensor="sim ☃",
                          sensor_kind="sim", notes="ünïcode, commas, \"quotes\"")
    results = SessionResults()
    for side, seed in zip(("left", "right"), seeds, strict=True):
        pipe = Pipeline(100.0, side=side)
        batch = simulate(seconds, side=side, seed=seed)
        batch.t_s = batch.t_s + (0.0 if side == "left" else seconds + 5.0)
        push = rec.tap(pipe.push, results)
        for i in range(0, len(batch), 25):
            push(batch.slice(i, i + 25))
    # a trial from a heel-switch rep that lifted, and one with nothing known but the angle
    rec.store.add_trial(rec.session_id, "right", 36.5, False, "heel_switch", 90.0, 93.5, rep=99,
                        hold_s=1.25, scored=False, peak_deg=37.0)
    rec.store.add_trial(rec.session_id, "left", 1 / 3, None, None, None, None)
    rec.kept = rec.store.trials(rec.session_id)[-2:]  # kept beside what the session counted
    return rec.finish(results)
