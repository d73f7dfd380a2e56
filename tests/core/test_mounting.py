"""Mounting calibration: the tibia frame from stance and drives, refusals, the file."""

import numpy as np
import pytest

from dorsimeter.core.mounting import MountingCalibrator
from dorsimeter.errors import CalibrationError, InputError
from dorsimeter.io.calfiles import load_calibrations, save_calibrations
from dorsimeter.pipeline import calibrate_recording
from dorsimeter.sim import Mount, SensorErrors, ShankSim, ShinEffects
from dorsimeter.types import ImuBatch


def test_calibration_recovers_the_clip_rotation():
    mount = Mount(clip_rotation_deg=(8.0, -12.0, 140.0))
    sim = ShankSim(mount=mount, errors=SensorErrors.none(), seed=4)
    batch = sim.generate(1500)
    cal = calibrate_recording([batch], 100.0)["left"]
    expected = mount.sensor_to_tibia.as_matrix()  # rows: tibia axes in the sensor frame
    # the long axis comes from gravity (exact); the flexion axis from the gyro (valgus co-motion
    # of the simulated knee tilts it by a degree or two)
    assert np.degrees(np.arccos(np.clip(np.array(cal.z_axis) @ expected[2], -1, 1))) < 0.05
    assert np.degrees(np.arccos(np.clip(np.array(cal.y_axis) @ expected[1], -1, 1))) < 3.0
    assert cal.planarity > 0.95


def test_refuses_without_a_still_stance():
    sim = ShankSim(seed=1)
    sim.generate(300)  # skip the stance
    with pytest.raises(CalibrationError, match="still stance"):
        calibrate_recording([sim.generate(100)], 100.0)


def test_refuses_without_knee_drives():
    sim = ShankSim(seed=1)
    with pytest.raises(CalibrationError, match="knee drives"):
        calibrate_recording([sim.generate(320)], 100.0)


def test_calibration_file_round_trips(tmp_path):
    cals = calibrate_recording([ShankSim(seed=5).generate(1500)], 100.0)
    path = tmp_path / "cal.json"
    save_calibrations(cals, path)
    assert load_calibrations(path) == cals
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        load_calibrations(tmp_path / "bad.json")


@pytest.mark.parametrize("rot", [(20.0, 0.0, 37.0), (-20.0, 15.0, 181.0), (0.0, -20.0, 300.0),
                                 (14.0, 14.0, -95.0)])
def test_any_clip_rotation_about_the_shin_with_tilts_up_to_20_degrees(rot):
    """Knee forward reads positive whatever the clip's rotation; the axes come out right."""
    mount = Mount(clip_rotation_deg=rot)
    batch = ShankSim(mount=mount, errors=SensorErrors(), seed=6).generate(1500)
    cal = calibrate_recording([batch], 100.0)["left"]
    expected = mount.sensor_to_tibia.as_matrix()
    assert np.degrees(np.arccos(np.clip(np.array(cal.z_axis) @ expected[2], -1, 1))) < 0.2
    assert np.degrees(np.arccos(np.clip(np.array(cal.x_axis) @ expected[0], -1, 1))) < 3.0
    assert cal.planarity > 0.95 and cal.stance_sway_deg < 1.5
    # an error-free gyro: the gain stays at 1 within the noise of the offset fitted before it
    assert abs(cal.flexion_gyr_gain - 1.0) < 0.006 and cal.acc_offset_mg < 5.0


def test_refuses_a_stance_with_sway_and_says_so():
    """A slow sway (below the gyro threshold) is not a still stance."""
    sim = ShankSim(seed=1, errors=SensorErrors.none())
    b = sim.generate(1500)
    t = b.t_s
    sway = np.radians(4.0) * np.sin(2 * np.pi * 0.3 * t)  # ±4° at 0.3 Hz: < 0.15 rad/s
    c, s = np.cos(sway), np.sin(sway)
    acc = np.column_stack([c * b.acc_m_s2[:, 0] - s * b.acc_m_s2[:, 2], b.acc_m_s2[:, 1],
                           s * b.acc_m_s2[:, 0] + c * b.acc_m_s2[:, 2]])
    gyr = b.gyr_rad_s + np.column_stack([np.zeros_like(t), np.gradient(sway, t), np.zeros_like(t)])
    swaying = ImuBatch(t[:280], acc[:280], gyr[:280])
    with pytest.raises(CalibrationError, match="swayed"):
        calibrate_recording([swaying], 100.0)


def test_refuses_movement_that_is_not_a_hinge():
    """Random tumbling after the stance: no forward hinge, a clear refusal."""
    stance = ShankSim(seed=2, errors=SensorErrors.none()).generate(250)
    rng = np.random.default_rng(0)
    gyr = rng.normal(0.0, 1.0, (600, 3))
    acc = np.tile([0.0, 0.0, 9.81], (600, 1)) + rng.normal(0.0, 0.2, (600, 3))
    t = stance.t_s[-1] + 0.01 * np.arange(1, 601)
    moving = ImuBatch(t, acc, gyr)
    with pytest.raises(CalibrationError, match="not knee drives|shin about its own axis"):
        calibrate_recording([stance, moving], 100.0)


def _calibrate(batch, estimate_acc_offset: bool = True):
    cal = MountingCalibrator("left", 100.0, estimate_acc_offset=estimate_acc_offset)
    for i in range(0, len(batch), 10):
        cal.add(batch.t_s[i:i + 10], batch.gyr_rad_s[i:i + 10], batch.acc_m_s2[i:i + 10])
        if cal.state.result is not None:
            return cal.state.result
    raise AssertionError("not calibrated")


def test_flexion_gyro_gain_corrects_a_gyro_scale_error_when_the_accelerometer_is_the_reference():
    """A gyro reading 3 % high about the flexion axis (clip unrotated: sensor y = tibia y; the
    loosest datasheet tolerance), with a box-calibrated accelerometer (no offset fitted): the
    gain fits the gyro to it."""
    errors = SensorErrors().with_(gyr_scale=(0.0, 0.03, 0.0), interval_average=True)
    batch = ShankSim(errors=errors, seed=2).generate(1500)
    cal = _calibrate(batch, estimate_acc_offset=False)
    assert abs(cal.flexion_gyr_gain - 1 / 1.03) < 0.003 and not any(cal.acc_offset_m_s2)


@pytest.mark.parametrize("seed", [0, 5])
def test_the_accelerometer_offset_is_found_from_the_drives(seed):
    """An uncalibrated accelerometer 20 mg off forward and 15 mg along the shin (tibia frame),
    clip turned and tilted: the drives turn gravity by a gyro-measured angle, and what the
    accelerometer adds beyond it is its offset. What is taken out is its posterior mean under
    the datasheets' prior (``shrunk_offset``): along it within 10°, at 70-100 % of its size
    (the prior and the model error weigh a fit this sure at about 0.8), and the tibia axis
    within 0.35° (without the fit the offset tilts it by 1.1°)."""
    mount = Mount(clip_rotation_deg=(10.0, -15.0, 120.0))
    m = mount.sensor_to_tibia.as_matrix()
    true_t = np.array([0.020, 0.0, 0.015]) * 9.80665
    errors = SensorErrors().with_(acc_offset_m_s2=tuple(m.T @ true_t), interval_average=True)
    batch = ShankSim(mount=mount, errors=errors, seed=seed).generate(2000)
    cal = _calibrate(batch)
    est_t = m @ np.array(cal.acc_offset_m_s2)
    cos = est_t @ true_t / (np.linalg.norm(est_t) * np.linalg.norm(true_t))
    assert np.degrees(np.arccos(min(1.0, cos))) < 10.0, est_t / 9.80665e-3
    assert 0.7 < np.linalg.norm(est_t) / np.linalg.norm(true_t) < 1.0, est_t / 9.80665e-3

    def z_err(c) -> float:
        return float(np.degrees(np.arccos(np.clip(np.array(c.z_axis) @ m[2], -1, 1))))

    assert z_err(cal) < 0.35
    assert z_err(_calibrate(batch, estimate_acc_offset=False)) > 1.0
    assert "accelerometer offset" in cal.summary()
    # the fused "up" a filter settles on with the raw accelerometer, corrected back
    up_raw = (batch.acc_m_s2[:100]).mean(axis=0)
    up = cal.corrected_up((up_raw / np.linalg.norm(up_raw))[None])[0]
    assert np.degrees(np.arccos(np.clip(up @ np.array(cal.z_axis), -1, 1))) < 0.1


@pytest.mark.parametrize("field,value", [("gyr_bias_rad_s", [1e300, 0.0, 0.0]),
                                         ("lever_arm_m", [0.0, 5.0, 0.0]),
                                         ("flexion_gyr_gain", 3.0),
                                         ("acc_offset_m_s2", [0.0, 0.0, 5.0])])
def test_a_calibration_file_with_impossible_values_is_refused(tmp_path, field, value):
    import json

    cals = calibrate_recording([ShankSim(seed=5).generate(1500)], 100.0)
    path = tmp_path / "cal.json"
    save_calibrations(cals, path)
    doc = json.loads(path.read_text())
    doc["sides"]["left"][field] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=field):
        load_calibrations(path)


def test_a_stance_is_found_with_a_large_gyro_bias():
    """An uncalibrated MPU-6500 can read 13 °/s standing still: stillness is the gyro's
    steadiness, so the stance is found, its bias measured, and the axes come out right."""
    bias = (0.2, -0.1, 0.05)  # rad/s, |b| = 13 °/s
    mount = Mount(clip_rotation_deg=(5.0, 10.0, 60.0))
    batch = ShankSim(mount=mount, errors=SensorErrors().with_(gyr_bias_rad_s=bias),
                     seed=3).generate(1500)
    cal = calibrate_recording([batch], 100.0)["left"]
    np.testing.assert_allclose(cal.gyr_bias_rad_s, bias, atol=0.005)
    expected = mount.sensor_to_tibia.as_matrix()
    assert np.degrees(np.arccos(np.clip(np.array(cal.z_axis) @ expected[2], -1, 1))) < 0.2


def _sway_athlete(seed: int, amplitude_deg=(0.1, 0.6)):
    from dorsimeter.sim import ShinEffects

    fx = ShinEffects.only("sway").with_(sway_amplitude_deg=amplitude_deg)
    return ShankSim(seed=seed, effects=fx, mount=Mount(clip_rotation_deg=(10.0, -15.0, 120.0),
                                                       height_m=0.25))


def test_a_swaying_stance_gives_the_gyro_bias_and_not_the_sways_rate():
    """Postural sway (0.1-0.6° at 0.05-0.6 Hz, drawn per athlete): the stance's mean rate is
    partly sway; the bias that keeps de-rotated gravity still (with the sway's rotational
    acceleration about the ankle taken out by the lever arm the drives found) is the sensor's
    own, several times closer than the mean rate on average."""
    ours, mean_rate = [], []
    for seed in range(6):
        sim = _sway_athlete(seed)
        b = sim.generate(1500)
        true = np.array(sim.errors.gyr_bias_rad_s)
        cal = calibrate_recording([b], 100.0)["left"]
        ours.append(np.degrees(np.linalg.norm(np.array(cal.gyr_bias_rad_s) - true)))
        mean_rate.append(np.degrees(np.linalg.norm(b.gyr_rad_s[:250].mean(axis=0) - true)))
    assert max(ours) < 0.05, ours
    assert np.mean(ours) < np.mean(mean_rate) / 3, (ours, mean_rate)


def test_an_unsteady_stance_is_told_to_hold_still_and_the_calibration_says_how_sure_it_is():
    """Sway of 0.7-0.8° (beyond quiet standing's 0.6°): calibrated, with 'hold still: sway' and
    an uncertainty larger than a quiet stance's."""
    loud = calibrate_recording([_sway_athlete(1, (0.7, 0.8)).generate(1500)], 100.0)["left"]
    quiet = calibrate_recording([_sway_athlete(1, (0.1, 0.15)).generate(1500)], 100.0)["left"]
    assert loud.unsteady and "hold still: sway" in loud.summary()
    assert not quiet.unsteady and "hold still" not in quiet.summary()
    assert loud.uncertainty_deg > quiet.uncertainty_deg > 0.0
    assert f"±{quiet.uncertainty_deg:.1f}°" in quiet.summary()


@pytest.mark.parametrize("side", ["left", "right"])
def test_the_drives_give_the_tibias_axial_rotation_and_not_an_oblique_axis(side):
    """The tibia turns about its long axis with dorsiflexion (0.05-0.25° per degree): the
    calibration learns it from the drives' gyro (the hinge's azimuth turns in the clip's frame,
    linearly in the flexion), with each drive's own knee line; an oblique ankle axis alone
    (fixed in the bone, whatever its tilt) gives none. The held end ranges then read the
    inclination of the long axis."""
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.sim import ShinEffects
    from dorsimeter.types import Readings

    for effects, coupled in ((ShinEffects.only("oblique_axis", "tibial_rotation"), True),
                             (ShinEffects.only("oblique_axis"), False)):
        sim = ShankSim(seed=5, side=side, effects=effects,
                       mount=Mount(height_m=0.2, clip_rotation_deg=(10.0, -8.0, 130.0)))
        last = max(r.t_end_s for r in sim.counted_reps()[:3])
        b = sim.generate(int((last + 0.5) * 100))
        pipe = Pipeline(100.0)
        r = Readings.concat([pipe.push(b.slice(i, i + 10))[0] for i in range(0, len(b), 10)])
        cal = pipe.calibrations[side]
        true = sim.shin.rotation_deg_per_deg
        if coupled:
            assert true > 0.15  # this athlete: a strong coupling (0.22)
            assert abs(abs(cal.axial_coupling) - true) < 0.03
        else:
            assert cal.axial_coupling == 0.0
        truth = b.truth["tibia_angle_deg"]
        for rep in sim.counted_reps()[:3]:
            m = (b.t_s >= rep.t_hold_s) & (b.t_s <= rep.t_return_s)
            assert abs(float(np.mean(r.tibia_angle_deg[m] - truth[m]))) < 0.15


def _quiet_drive_samples(gain: float, seed: int = 0):
    """Quiet moments of drives in the sagittal plane (x anterior, z up): rests at 0°, holds at
    20° and 25°; the accelerometer reads ``gain`` times the gyro-carried angle, with 0.07° of
    noise per sample (a BMI270 at 100 Hz)."""
    rng = np.random.default_rng(seed)
    th = np.radians(np.concatenate([np.zeros(60), np.full(10, 20.0), np.zeros(60),
                                    np.full(10, 25.0), np.zeros(40)]))
    th_a = gain * th + np.radians(0.07) * rng.normal(size=len(th))
    up = np.column_stack([-np.sin(th), np.zeros_like(th), np.cos(th)])
    acc = 9.80665 * np.column_stack([-np.sin(th_a), np.zeros_like(th), np.cos(th_a)])
    return up, acc


def test_the_flexion_gain_fit_is_not_fooled_by_a_wobbling_clip():
    """Two samples of a hold taken while the clip still wobbles after the jolt (the smoothed rate
    quiet, the accelerometer 4° off the gyro-carried angle): the raw rate shows the wobble, and
    where it does not (its oscillation crossing zero) the robust fit weighs them down. Without
    either the fit gives up here (their residuals hide the 1.5 % gain: 1.0), and on a simulated
    shin such a pair made a 3.2 % gain out of a 0.7 % error."""
    from dorsimeter.core.mounting import flexion_gyro_gain

    up, acc = _quiet_drive_samples(1.0 / 1.015)
    k = [75, 76]  # in the 20° hold: accelerometer 4° low
    th = np.radians(20.0 - 4.0)
    acc[k] = 9.80665 * np.array([-np.sin(th), 0.0, np.cos(th)])
    x, z = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    quiet = np.zeros((len(up), 3))
    raw = quiet.copy()
    raw[k] = [0.0, 0.3, 0.0]  # the clip's wobble on the raw gyro (≥ 0.13 rad/s, sim.shin)
    assert abs(flexion_gyro_gain(up, acc, quiet, quiet, x, z, 100.0, raw) - 1 / 1.015) < 0.002
    # the raw rate crossing zero: only the robust weights keep it out
    assert abs(flexion_gyro_gain(up, acc, quiet, quiet, x, z, 100.0) - 1 / 1.015) < 0.002


def test_the_shrunk_offset_is_closer_to_the_truth_than_the_raw_fit_or_none():
    """The posterior mean under the datasheets' prior (``shrunk_offset``): over sensors whose
    offsets are as the prior says (20 mg per axis) and fits whose noise and model error are as
    their covariance says, its mean squared error is below both the raw fit's and no offset's,
    and the 1σ it reports matches the spread of its errors; the component out of the sagittal
    plane is dropped, a fit far inside its noise is mostly left out and a sure one mostly
    kept."""
    from dorsimeter.core.mounting import OFFSET_MODEL_MG, OFFSET_PRIOR_MG, shrunk_offset

    mg = 9.80665e-3
    rng = np.random.default_rng(11)
    x, z = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    errs = {"shrunk": [], "raw": [], "none": []}
    sigmas = []
    for noise_mg in (2.0, 10.0, 30.0):  # a sure fit, one like the drives give, a poor one
        cov = np.diag([noise_mg, 50.0, noise_mg]) ** 2 * mg ** 2
        for _ in range(400):
            true = np.array([1.0, 0.0, 1.0]) * rng.normal(0.0, OFFSET_PRIOR_MG * mg, 3)
            err_sd = np.hypot(noise_mg, OFFSET_MODEL_MG) * mg
            fit = true + rng.normal(0.0, err_sd, 3) * np.array([1.0, 0.0, 1.0])
            fit[1] = rng.normal(0.0, 50.0 * mg)  # out of plane: not the offset's
            est, sigma_mg = shrunk_offset(fit, cov, x, z)
            assert est[1] == 0.0
            errs["shrunk"].append(est - true)
            errs["raw"].append(fit * np.array([1.0, 0.0, 1.0]) - true)
            errs["none"].append(-true)
            sigmas.append(sigma_mg)
    mse = {k: float(np.mean(np.square(v))) for k, v in errs.items()}
    assert mse["shrunk"] < 0.9 * mse["raw"] and mse["shrunk"] < 0.6 * mse["none"], mse
    # the reported 1σ (per axis) against the errors' RMS per in-plane axis
    rms_mg = np.sqrt(np.mean(np.square(np.array(errs["shrunk"])[:, [0, 2]]))) / mg
    assert 0.8 < rms_mg / np.sqrt(np.mean(np.square(sigmas))) < 1.2
    sure, _ = shrunk_offset(np.array([0.03, 0.0, 0.0]), np.eye(3) * (1 * mg) ** 2, x, z)
    poor, _ = shrunk_offset(np.array([0.03, 0.0, 0.0]), np.eye(3) * (100 * mg) ** 2, x, z)
    assert sure[0] > 0.75 * 0.03 and poor[0] < 0.1 * 0.03


@pytest.mark.parametrize("gyr_scale", [-0.01, 0.01])
def test_gravitys_magnitude_at_the_stance_tells_the_offset_along_the_shin_from_the_gyro_scale(
        monkeypatch, gyr_scale):
    """Over a 40° drive a gyro reading 1 % low or high (the datasheets' tolerance) looks to the
    drives' fit like an offset along the shin, so a 25 mg offset there is read as 12-15 mg or
    28-31 mg. Standing still the accelerometer reads |g + b|, which does not pass through the
    gyro: with it the offset along the shin comes out within 5 mg, and closer than without by
    at least half."""
    import dorsimeter.core.mounting as mounting

    mg = 9.81e-3
    mount = Mount(clip_rotation_deg=(10.0, -15.0, 120.0))
    m = mount.sensor_to_tibia.as_matrix()
    true_t = np.array([10.0, 0.0, 25.0]) * mg
    errors = SensorErrors().with_(acc_offset_m_s2=tuple(m.T @ true_t),
                                  gyr_scale=(gyr_scale,) * 3, interval_average=True)
    batch = ShankSim(mount=mount, effects=ShinEffects.none(), errors=errors,
                     seed=0).generate(2000)
    with_norm = (m @ np.array(_calibrate(batch).acc_offset_m_s2))[2] / mg
    shrunk = mounting.shrunk_offset
    monkeypatch.setattr(mounting, "shrunk_offset",
                        lambda *a, stance_acc_m_s2=None, **k: shrunk(*a, **k))
    without = (m @ np.array(_calibrate(batch).acc_offset_m_s2))[2] / mg
    assert abs(with_norm - 25.0) < 5.0, (with_norm, without)
    assert abs(with_norm - 25.0) < 0.5 * abs(without - 25.0), (with_norm, without)


def test_the_stance_magnitude_makes_the_shrunk_offset_surer_along_the_stance_up():
    """Over sensors whose offsets are as the prior says and whose stance magnitude is off by
    ``NORM_MODEL_MG`` (scale, cross-axis, the site's gravity), the magnitude observation cuts the
    posterior's squared error along the stance's up by more than half against the drives' fit
    alone, leaves the forward component as it was, and the 1σ it reports matches its errors."""
    from dorsimeter.core.mounting import (
        NORM_MODEL_MG,
        OFFSET_MODEL_MG,
        OFFSET_PRIOR_MG,
        shrunk_offset,
    )
    from dorsimeter.types import GRAVITY_M_S2

    mg = GRAVITY_M_S2 / 1000.0
    rng = np.random.default_rng(12)
    x, z = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    noise_mg = 5.0
    cov = np.diag([noise_mg, 0.0, noise_mg]) ** 2 * mg ** 2
    with_n, without, sigmas = [], [], []
    for _ in range(800):
        true = rng.normal(0.0, OFFSET_PRIOR_MG * mg, 3)
        fit = true + rng.normal(0.0, np.hypot(noise_mg, OFFSET_MODEL_MG) * mg, 3)
        fit[1] = 0.0
        stance = GRAVITY_M_S2 * z + true + rng.normal(0.0, NORM_MODEL_MG * mg) * z
        est, sigma_mg = shrunk_offset(fit, cov, x, z, stance_acc_m_s2=stance)
        with_n.append(est - true)
        without.append(shrunk_offset(fit, cov, x, z)[0] - true)
        sigmas.append(sigma_mg)
    e_n, e_0 = np.array(with_n) / mg, np.array(without) / mg
    mse_n, mse_0 = np.mean(e_n**2, axis=0), np.mean(e_0**2, axis=0)
    assert mse_n[2] < 0.5 * mse_0[2], (mse_n, mse_0)
    assert mse_n[0] == pytest.approx(mse_0[0], rel=0.05)
    # the reported 1σ is the larger sagittal axis (forward, now the less sure one)
    assert np.sqrt(mse_n[0]) / np.sqrt(np.mean(np.square(sigmas))) == pytest.approx(1.0, abs=0.15)
