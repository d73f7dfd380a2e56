"""Two sensors live at once, one per shin, each bound to its side."""

import pytest

from dorsimeter.session.bilateral import BilateralPipelines
from dorsimeter.sim import Mount, ShankSim
from tests.detect.simrun import match


def test_two_shins_live_give_per_side_reps_and_asymmetry():
    ends = {"left": 39.0, "right": 32.0}
    sims = {"left": ShankSim(side="left", seed=1, end_angle_deg=ends, heel_switch=True,
                             script=ShankSim().spec.with_(lifts_m=(0.0, 0.0, 0.02))),
            "right": ShankSim(side="right", seed=2, end_angle_deg=ends,
                              mount=Mount(clip_rotation_deg=(5.0, -10.0, 200.0)))}
    both = BilateralPipelines(100.0)
    events = []
    for _ in range(9000 // 10):  # 90 s, batches interleaved as two radios deliver them
        for side in ("right", "left"):
            _, e = both.push(side, sims[side].generate(10))
            events += e
    assert set(both.calibrations) == {"left", "right"}
    assert {e.side for e in events if e.kind == "calibrated"} == {"left", "right"}
    res = both.session
    for side, sim in sims.items():
        truth = sim.counted_reps(until_s=89.0)
        mine = [r for r in res.sides[side].reps if r.held]
        pairs = match(mine, truth)
        assert len(mine) == len(truth) >= 10 and all(f is not None for f, _ in pairs)
        assert all(abs(f.end_range_deg - t.end_angle_deg) < 0.5 for f, t in pairs)
        assert [f.valid for f, _ in pairs] == [t.valid for _, t in pairs]
    assert res.heel_source == {"left": "heel_switch", "right": "shank_imu"}
    best = {s: max(t.end_angle_deg for t in sims[s].counted_reps(until_s=89.0) if t.valid)
            for s in sims}
    assert res.asymmetry.diff_deg == pytest.approx(best["left"] - best["right"], abs=0.5)
    assert res.asymmetry.beyond_mdc
    with pytest.raises(ValueError):
        both.push("middle", sims["left"].generate(1))
