"""Movement scripts, heel lifts and the extra channels: physics and ground truth."""

import numpy as np
import pytest

from dorsimeter.sim import Mount, SensorErrors, ShankSim
from dorsimeter.sim.motion import ScriptSpec


def _sim(script="lunge", **kw):
    kw.setdefault("errors", SensorErrors.none())
    return ShankSim(mount=Mount(clip_rotation_deg=(10.0, -15.0, 130.0)), script=script, **kw)


def _second_derivative(x, h):
    return (x[2:] - 2 * x[1:-1] + x[:-2]) / h**2


@pytest.mark.parametrize("script", ["wall", "lunge", "mobilisation", "squat"])
def test_with_heel_lifts_the_accelerometer_is_differentiated_position_minus_gravity(script):
    spec = _sim(script).spec.with_(lifts_m=(0.025, 0.0, 0.015))
    sim = _sim(spec, rate_hz=200.0)
    lifted = [r for r in sim.counted_reps() if r.lift_m > 0]
    assert lifted
    r = lifted[0]
    h = 4e-5
    t = np.arange(r.t_start_s, r.t_end_s, h)
    acc, _, kin = sim.ideal(t)
    assert kin["heel_lift_m"].max() == pytest.approx(r.lift_m, abs=1e-9)
    # the ankle really moves: rises by about lift × ankle-to-MTH / heel-to-MTH
    rise = kin["ankle_m"][:, 2].max()
    assert rise == pytest.approx(r.lift_m * 0.14 / 0.19, rel=0.1)
    acc_num = _second_derivative(kin["pos_m"], h)
    expected = kin["sensor"][1:-1].inv().apply(acc_num + [0.0, 0.0, sim.shin.gravity_m_s2])
    np.testing.assert_allclose(acc[1:-1], expected, atol=3e-4)
    # the foot IMU obeys the same physics
    facc, fgyr = sim.foot_ideal(kin)
    f_num = _second_derivative(kin["foot_pos_m"], h)
    f_exp = kin["foot_sensor"][1:-1].inv().apply(f_num + [0.0, 0.0, sim.shin.gravity_m_s2])
    np.testing.assert_allclose(facc[1:-1], f_exp, atol=3e-4)
    assert np.max(np.linalg.norm(f_num, axis=1)) > 0.05
    # foot gyro is the derivative of the foot orientation
    q = kin["foot_sensor"]
    step = (q[:-1].inv() * q[1:]).as_rotvec() / h
    np.testing.assert_allclose(step, 0.5 * (fgyr[:-1] + fgyr[1:]), atol=2e-4)


def test_the_heel_stays_down_without_lifts_and_the_ankle_stays_put():
    sim = _sim("mobilisation")
    b = sim.generate(6000)
    assert np.all(np.abs(b.truth["heel_lift_m"]) < 1e-12)
    assert not b.truth["heel_lift"].any()
    _, _, kin = sim.ideal(b.t_s)
    np.testing.assert_allclose(kin["ankle_m"], 0.0, atol=1e-12)


@pytest.mark.parametrize("script,sets,reps", [("lunge", (2, 3), (4, 6)),
                                              ("mobilisation", (1, 1), (10, 10)),
                                              ("squat", (1, 1), (5, 5))])
def test_scripts_have_the_protocol_counts(script, sets, reps):
    for seed in range(4):
        sim = _sim(script, seed=seed)
        scripted = [r for r in sim.counted_reps() if r.set_index < 10]
        n_sets = len({r.set_index for r in scripted})
        assert sets[0] <= n_sets <= sets[1]
        for k in range(n_sets):
            assert reps[0] <= sum(r.set_index == k for r in scripted) <= reps[1]


def test_mobilisation_holds_two_seconds_and_squats_cave_in():
    mob = _sim("mobilisation").counted_reps()
    assert all(r.hold_s == pytest.approx(2.0) for r in mob)
    sim = _sim("squat", seed=3, valgus_deg={"left": 12.0, "right": 3.0})
    b = sim.generate(4000)
    assert b.truth["knee_track_deg"].max() > 8.0
    sim.set_side("right")
    b2 = sim.generate(4000)
    assert b2.truth["knee_track_deg"][200:].max() < 7.0


def test_rep_truth_per_sample_and_heel_channels():
    spec = ScriptSpec("mobilisation", reps=(10, 10), up_s=1.0, hold_s=2.0, down_s=1.0,
                      rest_s=1.0, lifts_m=(0.0, 0.02, 0.0, 0.0, 0.015))
    sim = ShankSim(script=spec, foot_imu=True, heel_switch=True, seed=1)
    b = sim.generate(6000)
    reps = sim.counted_reps(until_s=b.t_s[-1])
    assert [r.valid for r in reps[:5]] == [True, False, True, True, False]
    for r in reps:
        inside = (b.t_s >= r.t_start_s) & (b.t_s < r.t_end_s)
        assert np.all(b.truth["rep"][inside] == r.index)
        assert np.all(b.truth["rep_valid"][inside] == r.valid)
    assert np.all(b.truth["rep"][b.t_s < reps[0].t_start_s] == -1)
    off = b.truth["heel_lift_m"] > 0.002
    assert np.all(b.heel_contact[off] < 0.2) and np.mean(b.heel_contact[~off]) > 0.9
    assert b.foot_acc_m_s2.shape == (6000, 3) and b.foot_gyr_rad_s.shape == (6000, 3)
    # a side change cuts the script and starts it again on the other leg
    sim.set_side("right")
    b2 = sim.generate(3000)
    assert {r.side for r in sim.counted_reps(until_s=b2.t_s[-1])} == {"left", "right"}
    assert len(b2.slice(0, 10).foot_acc_m_s2) == 10
