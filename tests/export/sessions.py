"""Stored sessions for the export tests, made the way `record` makes them."""

from __future__ import annotations

from dorsimeter.pipeline import Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.store import Store
from dorsimeter.store.recorder import SessionRecorder
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


HOSTILE_NAME = '=HYPERLINK("http://x","y")'
HOSTILE_NOTE = "@SUM(A1)"


def two_leg_session(store: Store, raw_dir, athlete: str = HOSTILE_NAME, seconds: float = 45.0,
                    pseudonymous: bool | None = None, seed: int = 21) -> int:
    """Both legs recorded at once by two simulated sensors (each with its raw CSV), the heel
    switch on, a lift on every other wall-test rep: a session with heel lifts on both sides."""
    from pathlib import Path

    from dorsimeter.io.rawcsv import RawCsvWriter
    from dorsimeter.sim import ShankSim

    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    if pseudonymous:
        store.athlete(athlete, pseudonymous=True)
    paths = [raw_dir / f"{side}.csv" for side in ("left", "right")]
    rec = SessionRecorder(store, "record", athlete=athlete, sensor="sim ☃", sensor_kind="sim",
                          notes=HOSTILE_NOTE, raw_path=[str(p) for p in paths])
    results = SessionResults()
    for k, (side, path) in enumerate(zip(("left", "right"), paths, strict=True)):
        spec = ShankSim(script="wall").spec.with_(lifts_m=(0.0, 0.02))
        sim = ShankSim(script=spec, side=side, seed=seed + k, heel_switch=True)
        batch = sim.generate(int(seconds * 100))
        batch.t_s = batch.t_s + 0.004 * k  # the two sensors' clocks are not in step
        pipe = Pipeline(100.0, side=side)
        push = rec.tap(pipe.push, results)
        with RawCsvWriter(path) as w:
            for i in range(0, len(batch), 25):
                w.write(batch.slice(i, i + 25), side)
                push(batch.slice(i, i + 25))
    return rec.finish(results)
