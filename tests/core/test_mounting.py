"""Mounting calibration: the tibia frame from stance and drives, refusals, the file."""

import numpy as np
import pytest

from dorsimeter.core import calibrate_recording
from dorsimeter.core.mounting import load_calibrations, save_calibrations
from dorsimeter.errors import CalibrationError, InputError
from dorsimeter.sim import Mount, SensorErrors, ShankSim
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
    assert abs(cal.flexion_gyr_gain - 1.0) < 0.003


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


def test_flexion_gyro_gain_corrects_a_gyro_scale_error():
    """A gyro reading 6 % high about the flexion axis (clip unrotated: sensor y = tibia y)."""
    errors = SensorErrors().with_(gyr_scale=(0.0, 0.06, 0.0), interval_average=True)
    batch = ShankSim(errors=errors, seed=2).generate(1500)
    cal = calibrate_recording([batch], 100.0)["left"]
    assert abs(cal.flexion_gyr_gain - 1 / 1.06) < 0.003


@pytest.mark.parametrize("field,value", [("gyr_bias_rad_s", [1e300, 0.0, 0.0]),
                                         ("lever_arm_m", [0.0, 5.0, 0.0]),
                                         ("flexion_gyr_gain", 3.0)])
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
