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


def _box_calibrated_session(seed: int):
    """A box-calibrated athlete on real shins (every effect of ``sim.shin``), the wall test:
    the stream with the box calibration applied, the mounting calibration, the reps, the unit."""
    from dorsimeter.core.sensor_cal import calibrate_sensor
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.sim import Mount, ShinEffects
    from dorsimeter.sim.errors import still_pose_recording
    from dorsimeter.sim.motion import script_spec

    sim = ShankSim(seed=seed, script=script_spec("wall").with_(reps=(5, 5)),
                   effects=ShinEffects(), mount=Mount(height_m=0.2,
                                                      clip_rotation_deg=(5.0, -8.0, 120.0)))
    last = max(r.t_end_s for r in sim.counted_reps())
    b = sim.generate(int((last + 0.5) * 100))
    _, pa, pg = still_pose_recording(sim.errors, 100.0, seed + 100, n_random=6)
    box = calibrate_sensor(pa, pg, 100.0, "unit")
    pipe = Pipeline(100.0, sensor_cal=box)
    for i in range(0, len(b), 10):
        pipe.push(b.slice(i, i + 10))
    cal = pipe.calibrations["left"]
    acc, gyr = box.apply(b.acc_m_s2, b.gyr_rad_s)
    reps = [r for r in sim.counted_reps() if r.t_start_s > cal.t_defined_s]
    return b, box, cal, acc, gyr - np.asarray(cal.gyr_bias_rad_s), reps, sim


def _recording_fit(cal, acc, gyr):
    from dorsimeter.core.lever_arm import rotational_acc
    from dorsimeter.pipeline.offline import recording_flexion_gain

    dgyr = np.gradient(gyr, 0.01, axis=0)
    return recording_flexion_gain(gyr, acc - rotational_acc(gyr, dgyr, cal.lever_arm), 100.0,
                                  cal)


def test_the_whole_recording_measures_the_gyro_scale_about_the_flexion_axis():
    """Rests to holds and back, every rep: the recording's gain fit finds the simulated unit's
    scale about the flexion axis (1 / yᵀMy, M the unit's gyro sensitivity matrix) within
    2.5 % (sway and the clip's wobble limit it; the true scale is within 1 % of 1), with a
    standard error under 1 %, and so contradicts a calibration gain 3 % above it."""
    from dorsimeter.pipeline.offline import gain_agrees

    _, _, cal, acc, gyr, _, sim = _box_calibrated_session(4)
    y = np.asarray(cal.y_axis)
    true_gain = 1.0 / float(y @ sim.errors.gyr_matrix() @ y)
    fit = _recording_fit(cal, acc, gyr)
    assert fit is not None
    slope, se = fit
    assert 0.0 < se < 0.01
    assert abs(slope - true_gain) < 0.025
    assert gain_agrees(slope, fit)
    assert not gain_agrees(true_gain + 0.03, fit)
    assert gain_agrees(0.97, None)  # nothing to judge by: the calibration's gain stands


def test_offline_drops_a_flexion_gain_the_recording_contradicts():
    """A calibration gain the recording contradicts (3 % above the unit's scale) gives offline
    exactly the orientation of no gain; one the recording agrees with is applied."""
    from dataclasses import replace

    b, box, cal, acc, gyr, _, sim = _box_calibrated_session(4)
    y = np.asarray(cal.y_axis)
    true_gain = 1.0 / float(y @ sim.errors.gyr_matrix() @ y)
    fit = _recording_fit(cal, acc, gyr)
    assert fit is not None

    def up(gain: float) -> np.ndarray:
        c = replace(cal, flexion_gyr_gain=gain)
        return up_in_sensor(offline_orientation(b.gyr_rad_s, b.acc_m_s2, 100.0, None,
                                                {"left": c}, box, t_s=b.t_s))

    none, wrong, agreed = up(1.0), up(true_gain + 0.03), up(fit[0])
    np.testing.assert_array_equal(wrong, none)
    assert not np.allclose(agreed, none, atol=1e-9)
