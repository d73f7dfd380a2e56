"""Sensor calibration from still poses: offsets, scales and gyro bias of simulated units."""

import numpy as np
import pytest

from dorsimeter.core.sensor_cal import (
    SensorCalibration,
    calibrate_sensor,
)
from dorsimeter.errors import CalibrationError, InputError
from dorsimeter.io.calfiles import load_sensor_calibration, save_sensor_calibration
from dorsimeter.sim.errors import SensorErrors, still_pose_recording
from dorsimeter.types import GRAVITY_M_S2


@pytest.mark.parametrize("model,seed", [("bmi270", 0), ("bmi270", 2), ("mpu6500", 0),
                                        ("lsm6dso", 1)])
def test_pose_calibration_recovers_offset_scale_and_gyro_bias(model, seed):
    e = SensorErrors.realistic(model, 100.0, seed)
    _, acc, gyr = still_pose_recording(e, 100.0, seed, n_random=6)
    cal = calibrate_sensor(acc, gyr, 100.0, f"{model}-{seed}")
    assert cal.n_poses >= 9
    c, m = np.asarray(cal.acc_matrix), e.acc_matrix()
    cm = c @ m
    # scale and symmetric cross-axis terms are corrected to 0.05 %; what is left is a rotation
    # (antisymmetric), which the mounting calibration absorbs
    assert np.abs(0.5 * (cm + cm.T) - np.eye(3)).max() < 5e-4
    np.testing.assert_allclose(cal.acc_offset_m_s2, e.acc_offset_m_s2, atol=0.002 * GRAVITY_M_S2)
    np.testing.assert_allclose(cal.gyr_bias_rad_s, e.gyr_bias_rad_s, atol=np.radians(0.05))
    # a still reading in a new orientation comes out at |g| after correction
    a_true = GRAVITY_M_S2 * np.array([[0.48, -0.6, 0.64]])
    raw = a_true @ m.T + np.asarray(e.acc_offset_m_s2)
    corrected, _ = cal.apply(raw, np.zeros((1, 3)))
    assert abs(np.linalg.norm(corrected) - GRAVITY_M_S2) < 0.002 * GRAVITY_M_S2


def test_six_faces_give_offset_and_per_axis_scale():
    e = SensorErrors.none().with_(acc_offset_m_s2=(0.2, -0.3, 0.1), acc_scale=(0.02, -0.01, 0.015))
    _, acc, gyr = still_pose_recording(e, 100.0, 3, n_random=0)
    cal = calibrate_sensor(acc, gyr, 100.0, "six")
    assert cal.n_poses == 6
    np.testing.assert_allclose(np.diag(cal.acc_matrix), 1 / (1 + np.array(e.acc_scale)), atol=1e-4)
    np.testing.assert_allclose(cal.acc_offset_m_s2, e.acc_offset_m_s2, atol=2e-3)


def test_refuses_too_few_poses_or_an_axis_never_pointing_down():
    e = SensorErrors()
    t, acc, gyr = still_pose_recording(e, 100.0, 0, n_random=0)
    with pytest.raises(CalibrationError, match="at least 6"):
        calibrate_sensor(acc[:1500], gyr[:1500], 100.0, "short")
    with pytest.raises(CalibrationError, match="6 distinct still poses"):
        calibrate_sensor(acc[:200], gyr[:200], 100.0, "short")


def test_apply_is_split_invariant():
    cal = SensorCalibration("u", (0.01, 0.0, -0.02), (0.1, 0.2, -0.1),
                            ((1.01, 0.002, 0.0), (0.002, 0.99, 0.001), (0.0, 0.001, 1.0)))
    rng = np.random.default_rng(0)
    a, g = rng.normal(size=(101, 3)), rng.normal(size=(101, 3))
    whole = cal.apply(a, g)
    parts = [cal.apply(a[i:i + 7], g[i:i + 7]) for i in range(0, 101, 7)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole[1])


def test_stored_per_sensor_in_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("DORSIMETER_HOME", str(tmp_path))
    cal = SensorCalibration("AA:BB:CC/01", (0.01, 0.0, -0.02), (0.1, 0.2, -0.1), n_poses=9,
                            residual_m_s2=0.001)
    path = save_sensor_calibration(cal)
    assert path.parent == tmp_path / "sensors" and path.exists()
    assert load_sensor_calibration("AA:BB:CC/01") == cal
    path.write_text('{"format": "dorsimeter-sensor-calibration", "sensor_id": "x"}')
    with pytest.raises(InputError, match="gyr_bias_rad_s"):
        load_sensor_calibration("AA:BB:CC/01")
    with pytest.raises(InputError, match="no such"):
        load_sensor_calibration("other")
