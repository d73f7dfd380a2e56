"""Mounting calibration: the tibia frame from stance and drives, refusals, the file."""

import numpy as np
import pytest

from dorsimeter.core import calibrate_recording
from dorsimeter.core.mounting import load_calibrations, save_calibrations
from dorsimeter.errors import CalibrationError, InputError
from dorsimeter.sim import Mount, SensorErrors, ShankSim


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
