"""Clip slip: standing rests between trials checked against the calibration's stance."""

from dataclasses import replace

import numpy as np
import pytest

from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import Mount, ShankSim
from dorsimeter.sim.shin import ShinEffects

ROT = (10.0, -15.0, 130.0)


def _session(seed: int, slip_deg: float, at_s: float = 40.0, seconds: float = 100.0):
    """A wall test with postural sway (the nuisance a rest must see through); the clip turns
    by ``slip_deg`` on the shin at ``at_s``. Returns clip_slip events and clip_moved_deg."""
    sim = ShankSim(script="wall", seed=seed, mount=Mount(clip_rotation_deg=ROT),
                   effects=ShinEffects.only("sway"))
    pipe = Pipeline(100.0)
    events, moved, t = [], [], []
    while sim._n < seconds * 100:
        if slip_deg and sim._n == int(at_s * 100):
            sim.mount = replace(sim.mount, clip_rotation_deg=(ROT[0] + slip_deg, *ROT[1:]))
        b = sim.generate(500)
        for i in range(0, len(b), 10):
            r, e = pipe.push(b.slice(i, i + 10))
            events += [x for x in e if x.kind == "clip_slip"]
            moved.append(r.clip_moved_deg)
            t.append(r.t_s)
    return events, np.concatenate(moved), np.concatenate(t)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_clip_that_slipped_2_degrees_is_reported_and_a_still_one_is_not(seed):
    events, moved, t = _session(seed, 0.0)
    assert events == []
    judged = moved[np.isfinite(moved)]
    assert len(judged) and judged.max() < 1.0  # rests with sway read within 1° of the stance
    events, moved, t = _session(seed, 2.0)
    assert len(events) == 1 and events[0].t_s > 40.0
    assert "clip moved" in events[0].message and "recalibrate" in events[0].message
    assert moved[t > events[0].t_s][0] == pytest.approx(2.0, abs=0.5)
    assert np.all(moved[(t < 40.0) & np.isfinite(moved)] < 1.0)


def test_half_a_degree_is_not_a_slip():
    events, moved, _ = _session(1, 0.5)
    assert events == []
    assert np.nanmax(moved) < 1.0
