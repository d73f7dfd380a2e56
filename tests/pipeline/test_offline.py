"""Offline re-analysis across link gaps: gaps are facts, not rotation to interpolate."""

import numpy as np

from dorsimeter.core.fusion import up_in_sensor
from dorsimeter.pipeline.offline import offline_orientation
from dorsimeter.sim import ShankSim


def test_a_long_gap_or_a_clock_jump_splits_the_offline_fusion_instead_of_filling_it():
    """A 1e6 s clock jump (issue 18: 6.4 GB, MemoryError) and a 3 s link drop: each stretch is
    fused on its own, as live restarts after the bridge limit, so nothing is allocated for the
    jump and the stretch after a drop is right from the accelerometer, not from gyro made up
    across the gap; a short loss (0.3 s) is still bridged."""
    b = ShankSim(seed=2).generate(3000)
    t = b.t_s.copy()
    keep = np.ones(len(t), bool)
    keep[1200:1500] = False  # 3 s without data
    keep[2200:2230] = False  # 0.3 s lost
    t[2600:] += 1e6  # the device clock jumps
    i = np.flatnonzero(keep)
    q = offline_orientation(b.gyr_rad_s[i], b.acc_m_s2[i], 100.0, t_s=t[i])
    assert q.shape == (len(i), 4) and np.isfinite(q).all()
    # split at the two long gaps: the same as fusing the stretches one by one
    cut1, cut2 = int(np.searchsorted(i, 1500)), int(np.searchsorted(i, 2600))
    for a, z in ((0, cut1), (cut1, cut2), (cut2, len(i))):
        alone = offline_orientation(b.gyr_rad_s[i][a:z], b.acc_m_s2[i][a:z], 100.0,
                                    t_s=t[i][a:z])
        np.testing.assert_allclose(up_in_sensor(q[a:z]), up_in_sensor(alone), atol=1e-12)
    # the 0.3 s loss inside the middle stretch is bridged, not split
    whole = offline_orientation(b.gyr_rad_s[i][cut1:cut2], b.acc_m_s2[i][cut1:cut2], 100.0)
    assert not np.allclose(up_in_sensor(whole), up_in_sensor(q[cut1:cut2]), atol=1e-6)
