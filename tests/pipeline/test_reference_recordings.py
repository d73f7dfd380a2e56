"""The repo's reference recordings (calibration/recordings) through the real reader and pipeline.

A simulated BMI270 unit: its pose recording gives the sensor calibration, its wall-test file the
readings, live and offline; the end-range tibia angles are checked against the ground truth in
``reference.json`` (regenerate with ``calibration/recordings/make_reference.py``).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from dorsimeter.core.sensor_cal import calibrate_sensor
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.pipeline import analyze, calibrate_recording

REC = Path(__file__).resolve().parents[2] / "calibration" / "recordings"


@pytest.fixture(scope="module")
def reference():
    doc = json.loads((REC / "reference.json").read_text())
    poses = read_raw_csv(REC / "poses_bmi270_s11.csv")
    sensor_cal = calibrate_sensor(poses.acc_m_s2, poses.gyr_rad_s, poses.rate_hz, "bmi270-s11")
    wall = read_raw_csv(REC / "wall_bmi270_s11_left.csv")
    return doc, sensor_cal, wall


def test_sensor_calibration_from_the_pose_recording(reference):
    doc, cal, _ = reference
    e = doc["errors"]
    np.testing.assert_allclose(cal.gyr_bias_rad_s, e["gyr_bias_rad_s"], atol=np.radians(0.05))
    np.testing.assert_allclose(cal.acc_offset_m_s2, e["acc_offset_m_s2"], atol=0.02)
    assert cal.n_poses >= 9


@pytest.mark.parametrize("offline", [False, True])
def test_end_range_of_every_rep_within_0_3_deg(reference, offline):
    doc, sensor_cal, wall = reference
    cals = calibrate_recording(wall.batches(), wall.rate_hz, sensor_cal=sensor_cal)
    assert abs(np.linalg.norm(cals["left"].lever_arm)
               - np.hypot(doc["mount"]["height_m"], doc["mount"]["anterior_m"])) < 0.02
    r = analyze(wall, cals, offline=offline, sensor_cal=sensor_cal)
    assert doc["reps"]
    for rep in doc["reps"]:
        inside = (r.t_s >= rep["t_start_s"]) & (r.t_s < rep["t_end_s"])
        assert abs(r.tibia_angle_deg[inside].max() - rep["end_range_deg"]) < 0.3
