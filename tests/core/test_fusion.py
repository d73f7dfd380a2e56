"""Fusion helpers agree with scipy and VQF on data."""

import numpy as np
from scipy.spatial.transform import Rotation

from dorsimeter.core.fusion import StreamingFusion, estimate_orientation, up_in_sensor
from tests.conftest import simulate


def test_up_in_sensor_agrees_with_scipy():
    q = Rotation.random(500, random_state=1).as_quat(scalar_first=True)
    expected = Rotation.from_quat(q, scalar_first=True).inv().apply([0, 0, 1])
    np.testing.assert_allclose(up_in_sensor(q), expected, atol=1e-12)


def test_streaming_fusion_equals_batch_estimate():
    b = simulate(20.0, seed=2)
    whole = estimate_orientation(b.gyr_rad_s, b.acc_m_s2, 100.0)
    f = StreamingFusion(100.0)
    parts = np.concatenate([f.update(b.gyr_rad_s[i:i + 7], b.acc_m_s2[i:i + 7])
                            for i in range(0, len(b), 7)])
    np.testing.assert_array_equal(parts, whole)
    assert whole.shape == (len(b), 4)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-9)


def test_estimated_inclination_matches_truth_on_the_simulator():
    b = simulate(40.0, seed=5, clip_rotation_deg=(30, 10, 70))
    for offline in (False, True):
        q = estimate_orientation(b.gyr_rad_s, b.acc_m_s2, 100.0, offline=offline)
        up_est = up_in_sensor(q)
        up_true = up_in_sensor(b.truth["sensor_quat"])
        err = np.degrees(np.arccos(np.clip(np.sum(up_est * up_true, axis=1), -1, 1)))
        assert np.sqrt(np.mean(err**2)) < 1.0
