"""The pipeline against simulator ground truth."""

import numpy as np
import pytest

from dorsimeter.core import Pipeline
from dorsimeter.types import Readings
from tests.conftest import simulate, truth_at


def _run(batch, step):
    pipe = Pipeline(100.0)
    parts = [pipe.push(batch.slice(i, i + step))[0] for i in range(0, len(batch), step)]
    return Readings.concat(parts), pipe


@pytest.mark.parametrize("rot", [(0.0, 0.0, 0.0), (0.0, 0.0, 95.0), (12.0, -8.0, 200.0),
                                 (-15.0, 18.0, -60.0)])
def test_wall_test_angle_within_1deg_rmse_for_any_clip_rotation(rot):
    batch = simulate(60.0, seed=7, clip_rotation_deg=rot)
    r, pipe = _run(batch, 10)
    assert "left" in pipe.calibrations
    truth = truth_at(batch, r.t_s)
    rmse = np.sqrt(np.mean((r.tibia_angle_deg - truth) ** 2))
    assert rmse < 1.0
    assert abs(r.tibia_angle_deg.max() - batch.truth["tibia_angle_deg"].max()) < 1.0
    track = truth_at(batch, r.t_s, "knee_track_deg")
    assert np.sqrt(np.mean((r.knee_track_deg - track) ** 2)) < 1.0


def test_right_leg_after_left_calibrates_again_and_reads_the_right_side():
    from dorsimeter.sim import ShankSim

    sim = ShankSim(seed=2)
    pipe = Pipeline(100.0)
    left = sim.generate(3000)
    pipe.push(left)
    sim.set_side("right")
    pipe.set_side("right")
    right = sim.generate(4000)
    r, events = pipe.push(right)
    assert [e.kind for e in events if e.kind.startswith("calibrat")] == ["calibrated"]
    assert set(pipe.calibrations) == {"left", "right"}
    assert set(r.side) == {"right"}
    err = r.tibia_angle_deg - truth_at(right, r.t_s)
    assert np.sqrt(np.mean(err[r.t_s > right.t_s[0] + 2.0] ** 2)) < 1.0


def test_any_batch_split_gives_identical_readings():
    batch = simulate(30.0, seed=3, clip_rotation_deg=(0, 0, 45))
    whole, _ = _run(batch, len(batch))
    for step in (1, 7, 10):
        part, _ = _run(batch, step)
        np.testing.assert_array_equal(part.t_s, whole.t_s)
        np.testing.assert_array_equal(part.tibia_angle_deg, whole.tibia_angle_deg)


def test_ble_sized_batches_with_sensor_and_lever_arm_correction_give_identical_readings():
    """Irregular notification-sized batches (1–12 samples), realistic unit, sensor calibration
    and lever-arm compensation on: the same floats as the whole file in one push."""
    from dorsimeter.core.sensor_cal import SensorCalibration
    from dorsimeter.sim import Mount, SensorErrors, ShankSim

    sim = ShankSim(seed=5, errors=SensorErrors.realistic("bmi270", 100.0, 5),
                   mount=Mount(clip_rotation_deg=(10.0, -5.0, 160.0)))
    batch = sim.generate(2500)
    cal = SensorCalibration("u", (0.002, -0.001, 0.0), (0.1, -0.05, 0.2),
                            ((1.01, 0.001, 0.0), (0.001, 0.99, 0.0), (0.0, 0.0, 1.0)))
    whole_pipe = Pipeline(100.0, sensor_cal=cal)
    whole, _ = whole_pipe.push(batch)
    assert np.linalg.norm(whole_pipe.calibrations["left"].lever_arm) > 0.1
    sizes = np.random.default_rng(0).integers(1, 13, size=len(batch))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    bounds = bounds[bounds < len(batch)].tolist() + [len(batch)]
    pipe = Pipeline(100.0, sensor_cal=cal)
    part = Readings.concat([pipe.push(batch.slice(a, b))[0]
                            for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    np.testing.assert_array_equal(part.t_s, whole.t_s)
    np.testing.assert_array_equal(part.tibia_angle_deg, whole.tibia_angle_deg)
    np.testing.assert_array_equal(part.knee_track_deg, whole.knee_track_deg)
