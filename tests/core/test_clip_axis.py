"""The inclinometer-equivalent reading's axis (core.clip_axis): named with its sign as the axis
up the shin, found automatically, and checked against the clip's true inclination on the
simulator and on the reference recording."""

import json
from pathlib import Path

import numpy as np
import pytest

from dorsimeter.core.clip_axis import (
    LIMIT_DEG,
    clip_axis_tibia,
    clip_readings,
    clip_side_scores,
    nearest_clip_axis,
    parse_clip_axis,
)
from dorsimeter.core.sensor_cal import calibrate_sensor
from dorsimeter.core.tibia import CLIP_AXES
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.pipeline import analyze, calibrate_recording
from dorsimeter.sim import Mount, SensorErrors, ShankSim

REC = Path(__file__).resolve().parents[2] / "calibration" / "recordings"


def true_clip_angle_deg(sim: ShankSim, t_s: np.ndarray, axis: str) -> np.ndarray:
    """What an inclinometer on the clip reads, from the simulator's rotations: the clip axis in
    the world, projected onto the tibia's sagittal plane, against up projected the same way."""
    k = sim.kinematics(t_s)
    c_t = k["tibia"].inv().apply(k["sensor"].apply(CLIP_AXES[axis])) * np.array([1.0, 0, 1.0])
    up_t = k["tibia"].inv().apply([0.0, 0.0, 1.0]) * np.array([1.0, 0, 1.0])
    return np.degrees(np.arctan2(c_t[:, 0], c_t[:, 2]) - np.arctan2(up_t[:, 0], up_t[:, 2]))


@pytest.mark.parametrize("text, expect", [("+x", "+x"), ("-z", "-z"), ("Z", "+z"), ("y", "+y"),
                                          ("AUTO", "auto"), (" -X ", "-x")])
def test_axis_names_as_typed(text, expect):
    assert parse_clip_axis(text) == expect


@pytest.mark.parametrize("text", ["+w", "x+", "", "+xz", "1"])
def test_other_names_are_refused_in_our_words(text):
    with pytest.raises(ValueError, match="expected auto, or the axis pointing up the shin"):
        parse_clip_axis(text)


def test_the_sign_says_which_way_is_up_the_shin():
    """+z and -z are not the same answer: the one pointing to the ankle is refused, naming the
    one pointing to the knee."""
    m = np.eye(3)  # sensor axes = tibia axes: +z runs up the shin
    assert clip_axis_tibia("+z", m)[0] == "+z"
    with pytest.raises(ValueError, match=r"-z points down the shin.*the axis up the shin is \+z"):
        clip_axis_tibia("-z", m)
    with pytest.raises(ValueError, match=r"\+x runs across the shin \(90°"):
        clip_axis_tibia("+x", m)
    flipped = np.diag([1.0, -1.0, -1.0])  # the sensor upside down in the clip: -z up the shin
    assert clip_axis_tibia("-z", flipped)[0] == "-z"
    with pytest.raises(ValueError, match=r"the axis up the shin is -z"):
        clip_axis_tibia("+z", flipped)


@pytest.mark.parametrize("rotation, expect", [((0, 0, 0), "+z"), ((0, -90, 0), "+x"),
                                              ((0, 90, 0), "-x"), ((90, 0, 0), "+y"),
                                              ((15, -10, 140), "+z"), ((0, -60, 30), "+x")])
def test_auto_finds_the_axis_nearest_the_shin(rotation, expect):
    m = Mount(clip_rotation_deg=rotation).sensor_to_tibia.as_matrix()
    name, off = nearest_clip_axis(m)
    assert name == expect and off <= LIMIT_DEG
    assert clip_axis_tibia("auto", m)[0] == expect


def test_within_the_limit_a_reading_is_given_beyond_it_refused():
    """An axis tilted 44° from the shin still reads; 46° is refused (the documented 45°)."""
    for tilt, ok in ((44.0, True), (46.0, False)):
        m = Mount(clip_rotation_deg=(0.0, tilt, 0.0)).sensor_to_tibia.as_matrix()
        if ok:
            assert clip_axis_tibia("+z", m)[0] == "+z"
        else:
            with pytest.raises(ValueError, match="limit 45°"):
                clip_axis_tibia("+z", m)


@pytest.mark.parametrize("rotation, axis", [((0.0, -80.0, 0.0), "+x"),  # node, as in wiring.md
                                            ((6.0, 12.0, 120.0), "+z"),
                                            ((0.0, 100.0, 180.0), "-x")])
def test_clip_reading_on_the_simulator_matches_the_true_clip_inclination(rotation, axis):
    sim = ShankSim(rate_hz=100.0, seed=4, mount=Mount(clip_rotation_deg=rotation),
                   errors=SensorErrors.none())
    b = sim.generate(5000)
    cals = calibrate_recording([b], 100.0)
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.types import Readings

    pipe = Pipeline(100.0, cals)
    r = Readings.concat([pipe.push(b.slice(i, i + 50))[0] for i in range(0, len(b), 50)])
    m = {s: c.matrix for s, c in cals.items()}
    for name in (axis, "auto"):
        got = clip_readings(r, m, name)
        assert got.axis == {"left": axis}
        truth = true_clip_angle_deg(sim, r.t_s, axis)
        after = r.t_s > 20.0
        assert np.ptp(truth[after]) > 30.0  # it moves through the drives
        err = got.angle_deg[after] - truth[after]
        assert np.sqrt(np.mean(err ** 2)) < 0.3 and np.max(np.abs(err)) < 1.0


def test_clip_reading_on_the_reference_recording_matches_the_true_clip_inclination():
    """The repo's recording (a BMI270 unit, clip turned 15°/-10°/140°): auto finds +z, the
    reading follows the clip's true inclination, and +x (across the shin there) names +z."""
    doc = json.loads((REC / "reference.json").read_text())
    poses = read_raw_csv(REC / "poses_bmi270_s11.csv")
    sensor_cal = calibrate_sensor(poses.acc_m_s2, poses.gyr_rad_s, poses.rate_hz, "s11")
    rec = read_raw_csv(REC / "wall_bmi270_s11_left.csv")
    cals = calibrate_recording(rec.batches(), rec.rate_hz, sensor_cal=sensor_cal)
    r = analyze(rec, cals, sensor_cal=sensor_cal)
    got = clip_readings(r, {s: c.matrix for s, c in cals.items()}, "auto")
    assert got.axis == {"left": "+z"}
    errors = SensorErrors(**{k: (tuple(v) if isinstance(v, list) else v)
                             for k, v in doc["errors"].items()})
    m = doc["mount"]
    sim = ShankSim(rate_hz=doc["rate_hz"], seed=doc["seed"], errors=errors,
                   mount=Mount(m["height_m"], m["anterior_m"], tuple(m["clip_rotation_deg"])))
    sim.generate(len(rec.t_s))
    truth = true_clip_angle_deg(sim, r.t_s, "+z")
    after = r.t_s > 15.0
    err = got.angle_deg[after] - truth[after]
    assert np.sqrt(np.mean(err ** 2)) < 0.4 and np.max(np.abs(err)) < 1.2
    with pytest.raises(ValueError, match=r"\+x runs across the shin.*the axis up the shin is \+z"):
        clip_readings(r, {s: c.matrix for s, c in cals.items()}, "+x")


def test_clip_scores_are_the_sessions_reps_on_the_clip_reading():
    """Issue 13 item 6: the scoring lives in the core. Each scored rep of the session is read on
    the clip over the same hold, so it sits within a degree of the clip's true inclination
    there; best first, the mean of the best ``best_of``."""
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.session.results import SessionResults
    from dorsimeter.types import Readings

    sim = ShankSim(rate_hz=100.0, seed=4, mount=Mount(clip_rotation_deg=(6.0, 12.0, 120.0)),
                   errors=SensorErrors.none())
    b = sim.generate(6000)
    pipe = Pipeline(100.0)
    parts, events = [], []
    for i in range(0, len(b), 50):
        r, e = pipe.push(b.slice(i, i + 50))
        parts.append(r)
        events += e
    r = Readings.concat(parts)
    results = SessionResults(rate_hz=100.0)
    results.add(r, events)
    clip = clip_readings(r, {s: c.matrix for s, c in pipe.calibrations.items()}, "auto")
    (score,) = clip_side_scores(r, clip, results, best_of=2)
    assert (score.side, score.axis, score.lean_deg) == ("left", "+z", clip.lean_deg["left"])
    assert score.max_deg == float(np.max(clip.angle_deg))
    scored = results.sides["left"].scored
    assert len(score.scores_deg) == len(scored) >= 3
    assert list(score.scores_deg) == sorted(score.scores_deg, reverse=True)
    assert score.best_deg == score.scores_deg[0] and score.n_best == 2
    assert score.mean_best_deg == float(np.mean(score.scores_deg[:2]))
    truth = true_clip_angle_deg(sim, r.t_s, "+z")
    for rep in scored:
        hold = next(h for h in rep.holds if h[2] == rep.end_range_deg)
        true_deg = float(np.median(truth[(r.t_s >= hold[0]) & (r.t_s <= hold[1])]))
        assert min(abs(s - true_deg) for s in score.scores_deg) < 1.0
