"""Run simulated sessions through the real pipeline (for the detect, session, protocol tests)."""

from __future__ import annotations

import numpy as np

from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import ShankSim
from dorsimeter.types import Readings


def run(sim: ShankSim, seconds: float, step: int = 50, pipe: Pipeline | None = None,
        side_changes: tuple[float, ...] = ()):
    """Stream ``seconds`` of ``sim`` through a pipeline in ``step``-sample batches.

    ``side_changes``: device times at which the clip moves to the other leg."""
    pipe = pipe or Pipeline(sim.rate_hz)
    parts, events, batches = [], [], []
    n_total = int(round(seconds * sim.rate_hz))
    changes = list(side_changes)
    while sim._n < n_total:
        if changes and sim.t_s >= changes[0]:
            changes.pop(0)
            sim.set_side("right" if sim.side == "left" else "left")
        n = min(step, n_total - sim._n)
        b = sim.generate(n)
        batches.append(b)
        r, e = pipe.push(b)
        parts.append(r)
        events += e
    return Readings.concat(parts), events, pipe


def rep_events(events):
    return [e.rep for e in events if e.kind == "rep"]


def match(found, truth, tol_s: float = 1.5):
    """Pairs (found rep, truth rep) by start time; truth reps that were not found are None."""
    out = []
    for t in truth:
        best = min(found, key=lambda r: abs(r.t_start_s - t.t_start_s), default=None)
        ok = best is not None and abs(best.t_start_s - t.t_start_s) < tol_s
        out.append((best if ok else None, t))
    return out


def paired(found, sim, t_end_s: float):
    """Found reps paired with every truth rep that ended by ``t_end_s``; asserts that no rep
    was found that the script did not make (the count is exact)."""
    everything = sim.counted_reps()
    spurious = [f for f in found
                if all(abs(f.t_start_s - t.t_start_s) >= 1.5 for t in everything)]
    assert spurious == [], f"reps found that were not scripted: {spurious}"
    truth = [t for t in everything if t.t_end_s <= t_end_s]
    pairs = match(found, truth)
    assert all(f is not None for f, _ in pairs), "scripted reps not found"
    assert len({id(f) for f, _ in pairs}) == len(pairs)
    return pairs


def held(reps):
    return [r for r in reps if r.held]


def truth_lift_reps(truth):
    return np.array([not t.valid for t in truth])
