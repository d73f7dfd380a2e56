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


def test_an_oblique_axis_fit_is_read_across_the_axis_not_as_the_sagittal_plane():
    """Drives about an ankle axis tilted 15° in the frontal plane turn gravity about that axis,
    so the drives see the accelerometer offset only across it: ``b − (b·a) a``. Fitted in the
    plane across the axis (x and z made perpendicular to it) that is what comes out, to the
    noise-free data's precision; fitted in the sagittal plane (x, z) a 30 mg offset along the
    flexion axis reads as 8.0 mg along the shin (7.8 mg / cos 15°), an offset it does not have.
    With the stance's gravity magnitude (``shrunk_offset``: |g + b| = g says little is along
    the shin) the 3-D posterior puts part of what it found along the axis, where it is."""
    from scipy.spatial.transform import Rotation

    from dorsimeter.core.lever_arm import fit_lever_arm_and_offset, smoothed_rates
    from dorsimeter.core.mounting import shrunk_offset

    rate_hz, g, mg = 100.0, 9.81, 9.81e-3
    tilt = np.radians(15.0)
    axis = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    x, y, z = np.eye(3)
    across = z - (z @ axis) * axis
    across /= np.linalg.norm(across)
    t = np.arange(0.0, 12.0, 1.0 / rate_hz)
    theta = 0.35 * (1.0 - np.cos(2 * np.pi * t / 4.0))  # three drives to 40°
    theta_d = 0.35 * 2 * np.pi / 4.0 * np.sin(2 * np.pi * t / 4.0)
    theta_dd = 0.35 * (2 * np.pi / 4.0) ** 2 * np.cos(2 * np.pi * t / 4.0)
    gyr, dgyr = theta_d[:, None] * axis, theta_dd[:, None] * axis
    rots = Rotation.from_rotvec(theta[:, None] * axis).as_matrix()  # sensor to stance frame
    r_m = np.array([0.01, 0.0, 0.3])
    b = 30 * mg * y
    g0 = g * z
    acc = (np.einsum("kji,j->ki", rots, g0) + rotational_acc(gyr, dgyr, r_m) + b)
    w_s, dw_s = smoothed_rates(gyr, rate_hz)

    def fit(offset_basis):
        return fit_lever_arm_and_offset(w_s, dw_s, acc, rots, g0 + b, np.array([x, z]),
                                        offset_basis=offset_basis)

    seen = b - (b @ axis) * axis
    assert np.linalg.norm(seen) / mg == pytest.approx(30 * np.sin(tilt), abs=1e-6)
    across_fit = fit(np.array([x, across]))
    np.testing.assert_allclose(across_fit.offset_m_s2 / mg, seen / mg, atol=0.05)
    np.testing.assert_allclose(across_fit.r_m, r_m, atol=1e-3)
    sagittal = fit(None).offset_m_s2 / mg
    assert sagittal[2] == pytest.approx(30 * np.tan(tilt), abs=0.1) and abs(sagittal[1]) < 1e-9

    est, _ = shrunk_offset(across_fit.offset_m_s2, across_fit.offset_cov, x, z,
                           stance_acc_m_s2=g0 + b, across=across)
    assert 3.0 < (est @ y) / mg < 30.0  # part of the offset along the axis is found
    # read as the sagittal plane's, the same data put next to nothing along the axis
    flat_fit = fit(None)
    flat, _ = shrunk_offset(flat_fit.offset_m_s2, flat_fit.offset_cov, x, z,
                            stance_acc_m_s2=g0 + b)
    assert abs(flat @ y) / mg < 1.0
    assert np.linalg.norm(est - b) < np.linalg.norm(flat - b) - 3 * mg
    # along the shin both are pulled toward what the magnitude says (none) alike
    assert abs(est @ z) / mg < 3.0 and abs(flat @ z) / mg < 3.0
