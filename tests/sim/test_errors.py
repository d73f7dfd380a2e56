"""The sensor error model: each error shows up in the signal with the size it was given."""

import numpy as np
import pytest

from dorsimeter.sim import ShankSim, ShinEffects
from dorsimeter.sim.errors import ErrorModel, SensorErrors, load_profile, quantise
from dorsimeter.types import GRAVITY_M_S2


def _still(errors: SensorErrors, n: int, rate_hz: float = 100.0, g_dir=(0.0, 0.0, 1.0)):
    model = ErrorModel(errors, rate_hz, np.random.default_rng(1), seed=2)
    acc = np.tile(GRAVITY_M_S2 * np.asarray(g_dir, dtype=float), (n, 1))
    return model.apply(acc, np.zeros((n, 3))), model


def test_default_errors_are_the_first_models_noise_and_bias():
    e = SensorErrors()
    (acc, gyr), _ = _still(e, 20_000)
    np.testing.assert_allclose(gyr.mean(axis=0), e.gyr_bias_rad_s, atol=1e-4)
    np.testing.assert_allclose(gyr.std(axis=0), e.gyr_noise_rad_s, rtol=0.03)
    np.testing.assert_allclose(acc.std(axis=0), e.acc_noise_m_s2, rtol=0.03)


def test_offset_scale_and_misalignment_follow_the_sensitivity_matrix():
    e = SensorErrors.none().with_(acc_offset_m_s2=(0.1, -0.2, 0.05), acc_scale=(0.01, -0.02, 0.03),
                                  acc_misalign_rad=(0.01, 0.0, 0.0, -0.01, 0.02, 0.0))
    (acc, _), _ = _still(e, 3, g_dir=(0.6, 0.0, 0.8))
    m = np.array([[1.01, 0.01, 0.0], [0.0, 0.98, -0.01], [0.02, 0.0, 1.03]])
    expected = m @ (GRAVITY_M_S2 * np.array([0.6, 0.0, 0.8])) + [0.1, -0.2, 0.05]
    np.testing.assert_allclose(acc, np.tile(expected, (3, 1)), atol=1e-12)


def test_int16_quantisation_and_saturation():
    x = np.array([[0.0, 1e-5, -1e-3], [100.0, -100.0, 3.0]])
    q = quantise(x, 8 * GRAVITY_M_S2)
    lsb = 8 * GRAVITY_M_S2 / 32768
    np.testing.assert_allclose(q / lsb, np.round(q / lsb), atol=1e-9)
    assert q[1, 0] == pytest.approx(32767 * lsb) and q[1, 1] == pytest.approx(-32768 * lsb)
    assert np.all(np.abs(q[0] - x[0]) <= lsb / 2 + 1e-15)


def test_gyro_bias_random_walk_grows_with_the_square_root_of_time():
    walk = 0.001
    e = SensorErrors.none().with_(gyr_bias_walk_rad_s_sqrt_s=walk)
    model = ErrorModel(e, 100.0, np.random.default_rng(0), seed=5)
    b = np.concatenate([model.gyr_bias(100) for _ in range(400)])  # 400 s, in 1 s batches
    # the increments over 100 s, over 3 axes and 4 windows: std walk·√100
    inc = (b[9999::10000] - np.vstack([np.zeros(3), b[9999::10000][:-1]])).ravel()
    assert 0.5 * walk * 10 < inc.std() < 1.6 * walk * 10
    assert np.abs(np.diff(b, axis=0)).max() < 6 * walk / np.sqrt(100.0)


def test_clock_drift_and_jitter_move_the_true_sample_instants():
    e = SensorErrors.none().with_(clock_drift_ppm=1000.0, jitter_s=0.001)
    model = ErrorModel(e, 100.0, np.random.default_rng(0), seed=1)
    t = np.arange(100_000) / 100.0
    tt = model.sample_times(t)
    d = tt - t / 1.001
    assert abs(d.std() - 0.001) < 5e-5 and abs(d.mean()) < 5e-5


def test_realistic_unit_is_reproducible_and_noise_matches_the_datasheet_density():
    p = load_profile("bmi270")
    a = SensorErrors.realistic("bmi270", 200.0, seed=3)
    assert a == SensorErrors.realistic("bmi270", 200.0, seed=3)
    assert a != SensorErrors.realistic("bmi270", 200.0, seed=4)
    dens = p["gyroscope"]["noise_density_dps_sqrt_hz"]
    assert a.gyr_noise_rad_s == pytest.approx(np.radians(dens) * np.sqrt(100.0))
    assert a.acc_range_g == 8 and a.gyr_range_dps == 2000
    with pytest.raises(ValueError, match="bmi270"):
        SensorErrors.realistic("no-such-chip")


def test_the_simulator_applies_the_errors_and_keeps_truth_exact():
    e = SensorErrors.realistic("mpu6500", 100.0, seed=1)
    still = ShinEffects.none()  # a still stance, so timing errors vanish
    ideal = ShankSim(errors=SensorErrors.none(), seed=2, effects=still).generate(200)
    real = ShankSim(errors=e, seed=2, effects=still).generate(200)
    np.testing.assert_array_equal(real.truth["tibia_angle_deg"], ideal.truth["tibia_angle_deg"])
    bias = real.gyr_rad_s.mean(axis=0) - ideal.gyr_rad_s.mean(axis=0)
    np.testing.assert_allclose(bias, e.gyr_bias_rad_s, atol=3 * e.gyr_noise_rad_s / np.sqrt(200)
                               + 2e-3)


def test_mount_presets_give_simulator_mounts():
    from dorsimeter.sim.errors import mount_presets
    from dorsimeter.sim.rig import preset_mount

    names = mount_presets()
    assert {"distal", "mid", "tuberosity"} <= set(names)
    m = preset_mount("tuberosity", (0.0, 0.0, 90.0))
    assert m.height_m == names["tuberosity"]["height_m"] and m.clip_rotation_deg[2] == 90.0
    with pytest.raises(ValueError, match="distal"):
        preset_mount("ankle")
