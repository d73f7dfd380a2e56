"""Lever arm: ω̇ streaming, the rotational acceleration, and the fit on simulated drives."""

import numpy as np
import pytest

from dorsimeter.core.lever_arm import AngularAcceleration, cross, rotational_acc
from dorsimeter.pipeline import calibrate_recording
from dorsimeter.sim import Mount, SensorErrors, ShankSim


def test_cross_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    np.testing.assert_allclose(cross(a, b), np.cross(a, b), atol=1e-15)


def test_angular_acceleration_is_exact_for_quadratics_and_split_invariant():
    rate = 200.0
    t = np.arange(400) / rate
    gyr = np.column_stack([0.3 * t**2, -t, np.full_like(t, 0.2)])
    whole = AngularAcceleration(rate).update(gyr)
    np.testing.assert_allclose(whole[2:], np.column_stack([0.6 * t, -np.ones_like(t), 0 * t])[2:],
                               atol=1e-9)
    for step in (1, 2, 3, 17):
        f = AngularAcceleration(rate)
        parts = np.concatenate([f.update(gyr[i:i + step]) for i in range(0, len(gyr), step)])
        np.testing.assert_array_equal(parts, whole)


def test_rotational_acc_reproduces_the_simulated_accelerometer():
    """Sim accel minus gravity is exactly ω̇×r + ω×(ω×r) for the mount's r (heel down)."""
    mount = Mount(height_m=0.2, anterior_m=0.05, clip_rotation_deg=(5.0, -10.0, 60.0))
    sim = ShankSim(rate_hz=200.0, mount=mount, errors=SensorErrors.none(), seed=3)
    t = np.arange(600, 2000) / 200.0
    acc, gyr, k = sim.ideal(t)
    alpha_s = k["sensor"].inv().apply(k["alpha_w"])
    g_s = k["sensor"].inv().apply([0.0, 0.0, 9.81])
    r_s = mount.sensor_to_tibia.inv().apply(mount.lever_arm_m)
    np.testing.assert_allclose(acc - g_s, rotational_acc(gyr, alpha_s, r_s), atol=1e-9)


@pytest.mark.parametrize("rot", [(0.0, 0.0, 0.0), (8.0, -12.0, 140.0), (-15.0, 18.0, -60.0)])
@pytest.mark.parametrize("height_m", [0.12, 0.30])
def test_calibration_finds_the_lever_arm_within_15mm(rot, height_m):
    mount = Mount(height_m=height_m, anterior_m=0.04, clip_rotation_deg=rot)
    sim = ShankSim(mount=mount, seed=4)  # default errors: noise and gyro bias
    cal = calibrate_recording([sim.generate(1500)], 100.0)["left"]
    true_r = mount.sensor_to_tibia.inv().apply(mount.lever_arm_m)
    assert np.linalg.norm(cal.lever_arm - true_r) < 0.015
    assert cal.lever_arm_residual_m_s2 < 0.05


def test_angular_acceleration_has_no_spike_after_a_gap():
    """Lost samples: the difference over the real time step, not a spike of Δω/Δt_nominal."""
    rate = 100.0
    t = np.arange(300) / rate
    gyr = np.column_stack([np.sin(t), 0.5 * t, np.zeros_like(t)])
    keep = np.ones(len(t), bool)
    keep[100:120] = False  # 0.2 s lost
    tk, gk = t[keep], gyr[keep]
    whole = AngularAcceleration(rate).update(gk, tk)
    true = np.column_stack([np.cos(tk), np.full_like(tk, 0.5), np.zeros_like(tk)])
    assert np.abs(whole[2:] - true[2:]).max() < 0.15
    f = AngularAcceleration(rate)
    parts = np.concatenate([f.update(gk[i:i + 7], tk[i:i + 7]) for i in range(0, len(tk), 7)])
    np.testing.assert_array_equal(parts, whole)
