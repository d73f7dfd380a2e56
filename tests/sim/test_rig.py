"""The simulator's physics: the IMU signals agree with the kinematics they come from.

Unless a test says otherwise, every shin effect is on (sway, oblique ankle, tibial rotation,
the clip's wobble): the physics must hold for the realistic rig."""

import numpy as np
from scipy.spatial.transform import Rotation

from dorsimeter.sim import Mount, SensorErrors, ShankSim, ShinEffects
from dorsimeter.types import GRAVITY_M_S2


def _sim(rate_hz=100.0, rot=(10.0, -15.0, 130.0), **kw):
    return ShankSim(rate_hz=rate_hz, mount=Mount(clip_rotation_deg=rot), errors=SensorErrors.none(),
                    **kw)


def test_at_rest_the_accelerometer_reads_g():
    sim = _sim(effects=ShinEffects.none())  # a perfectly still athlete (the ideal rig)
    batch = sim.generate(250)  # the first 2.5 s are the still stance
    assert np.all(np.abs(batch.truth["tibia_angle_deg"]) < 1e-9)
    np.testing.assert_allclose(np.linalg.norm(batch.acc_m_s2, axis=1), GRAVITY_M_S2, atol=1e-9)
    np.testing.assert_allclose(batch.gyr_rad_s, 0.0, atol=1e-12)


def test_integrating_the_gyro_reproduces_the_true_orientation():
    sim = _sim(rate_hz=1000.0)
    batch = sim.generate(40_000)  # stance, calibration drives and two scored drives
    assert batch.truth["tibia_angle_deg"].max() > 30.0  # the stream really moves
    q_true = Rotation.from_quat(batch.truth["sensor_quat"], scalar_first=True)
    dt = 1.0 / sim.rate_hz
    gyr = batch.gyr_rad_s
    # trapezoidal increments: the rate at the middle of each step, in the body frame
    steps = Rotation.from_rotvec(0.5 * (gyr[:-1] + gyr[1:]) * dt)
    q = q_true[0]
    errs = []
    for k in range(len(steps)):
        q = q * steps[k]
        if k % 100 == 0:
            errs.append((q.inv() * q_true[k + 1]).magnitude())
    assert np.degrees(np.max(errs)) < 0.01


def test_accelerometer_is_differentiated_position_minus_gravity_in_sensor_frame():
    sim = _sim(rate_hz=200.0)
    h = 2e-5  # fine enough for the clip's 12-25 Hz wobble
    t = np.arange(0, 12.0, h)
    acc, _, kin = sim.ideal(t)
    pos = kin["pos_m"]
    acc_num = (pos[2:] - 2 * pos[1:-1] + pos[:-2]) / h**2
    expected = kin["sensor"][1:-1].inv().apply(acc_num + [0.0, 0.0, sim.shin.gravity_m_s2])
    np.testing.assert_allclose(acc[1:-1], expected, atol=2e-4)
    assert np.max(np.linalg.norm(acc_num, axis=1)) > 0.1  # rotational acceleration is present


def test_truth_reaches_the_scripted_end_angle():
    sim = _sim(end_angle_deg={"left": 40.0, "right": 30.0})
    batch = sim.generate(6000)
    peak = batch.truth["tibia_angle_deg"].max()
    assert 36.0 < peak < 44.0
    sim.set_side("right")
    right = sim.generate(6000)
    assert set(right.truth["side"][200:]) == {"right"}
    assert 26.0 < right.truth["tibia_angle_deg"][100:].max() < 34.0  # after 1 s back to stance
