"""Samples no sensor can give are held and counted where they enter, like NaNs.

Beyond every supported part's full scale (16 g, 2000 °/s, +10 %), quaternions that are not
unit-norm, heel-switch loads outside 0–1. One 1e300 acceleration cell or one 39.9 rad/s gyro
sample used to go into VQF (RuntimeWarnings, a poisoned orientation); a 1e10 heel load read as
a loaded heel.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.pipeline import Pipeline
from dorsimeter.pipeline.pipeline import ACC_LIMIT_M_S2, GYR_LIMIT_RAD_S
from dorsimeter.sim import ShankSim
from dorsimeter.sim.motion import script_spec
from dorsimeter.types import ImuBatch, Readings
from tests.cli.test_rates import write_sim_raw
from tests.conftest import simulate, truth_at


def _run(batch: ImuBatch, step: int = 10) -> tuple[Readings, Pipeline]:
    pipe = Pipeline(100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning may leak
        parts = [pipe.push(batch.slice(i, i + step))[0] for i in range(0, len(batch), step)]
    return Readings.concat(parts), pipe


def _rmse(r: Readings, batch: ImuBatch, t_from: float) -> float:
    m = r.t_s >= t_from
    return float(np.sqrt(np.mean((r.tibia_angle_deg[m] - truth_at(batch, r.t_s[m])) ** 2)))


@pytest.fixture(scope="module")
def session() -> ImuBatch:
    return simulate(45.0, seed=7)


def test_limits_are_the_full_scale_of_the_supported_parts():
    assert 16 * 9.8 < ACC_LIMIT_M_S2 < 18 * 9.81
    assert np.radians(2000) < GYR_LIMIT_RAD_S < 39.9


@pytest.mark.parametrize("channel, value", [("acc", 1e300), ("acc", -1e200), ("gyr", 39.9),
                                            ("gyr", 1e300)])
def test_a_sample_beyond_any_sensors_range_is_held_and_counted(session, channel, value):
    acc, gyr = session.acc_m_s2.copy(), session.gyr_rad_s.copy()
    (acc if channel == "acc" else gyr)[2500, 1] = value  # mid drive, after calibration
    (acc if channel == "acc" else gyr)[2600:2603, 0] = value
    faulty = ImuBatch(session.t_s, acc, gyr, side=session.side, truth=session.truth)
    r, pipe = _run(faulty)
    assert pipe.implausible_samples == 4 and pipe.nonfinite_samples == 0
    assert np.all(np.isfinite(r.tibia_angle_deg)) and np.all(np.isfinite(r.knee_track_deg))
    assert _rmse(r, session, 25.0) < 1.0
    other, _ = _run(faulty, 37)  # decided sample by sample: any split, the same readings
    np.testing.assert_array_equal(other.tibia_angle_deg, r.tibia_angle_deg)


def test_full_scale_itself_is_a_reading(session):
    acc = session.acc_m_s2.copy()
    acc[2200:2205, 0] = 16 * 9.80665  # a knock clipping at full scale: real data
    r, pipe = _run(ImuBatch(session.t_s, acc, session.gyr_rad_s, side=session.side))
    assert pipe.implausible_samples == 0


@pytest.mark.parametrize("bad", [np.zeros(4), np.full(4, 1e200), np.array([2.0, 0, 0, 0])])
def test_a_quaternion_that_is_not_unit_norm_is_held(session, bad):
    quat = session.truth["sensor_quat"].copy()
    quat[2000:2010] = bad
    r, pipe = _run(ImuBatch(session.t_s, session.acc_m_s2, session.gyr_rad_s, quat=quat,
                            side=session.side))
    assert pipe.implausible_samples == 10
    assert np.all(np.isfinite(r.tibia_angle_deg))
    assert _rmse(r, session, 21.0) < 1.0


def test_a_heel_load_outside_0_to_1_is_held_at_the_last_plausible_one():
    sim = ShankSim(seed=3, heel_switch=True, script=script_spec("wall").with_(lift_prob=0.5))
    b = sim.generate(4500)
    load = b.heel_contact.copy()
    down = np.flatnonzero(~b.truth["heel_off"])
    glitch = down[(b.t_s[down] > 20.0)][:5]  # heel down: a 1e10 load must not change that
    load[glitch] = 1e10
    lifted = np.flatnonzero(b.truth["heel_lift"])[:3]
    load[lifted] = -5.0  # and a negative one must not put the heel down... or up by itself
    clean, _ = _run(b)
    b.heel_contact = load
    r, pipe = _run(b)
    assert pipe.implausible_samples == 8
    held = np.isin(r.t_s, b.t_s[np.concatenate([glitch, lifted])])
    assert np.array_equal(r.heel_lift[~held], clean.heel_lift[~held])


def test_a_raw_csv_with_a_1e300_cell_analyses_without_a_warning_or_nan(tmp_path, capsys):
    raw = tmp_path / "r.csv"
    write_sim_raw(raw, 100.0, 40.0)
    lines = raw.read_text().splitlines()
    cells = lines[2501].split(",")
    cells[1] = "1e300"  # acc_x
    lines[2501] = ",".join(cells)
    cells = lines[2701].split(",")
    cells[5] = "39.9"  # gyr_y, beyond 2000 °/s
    lines[2701] = ",".join(cells)
    raw.write_text("\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["analyze", str(raw)]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out and "left: max tibia angle" in out and "4 scored" in out, out
