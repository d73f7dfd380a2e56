"""The file readers fuzzed: any bytes, or a valid raw CSV mutated, give a recording or an
InputError (one line naming the file) and nothing else: no other exception, no NaN let through.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dorsimeter.errors import DorsimeterError, InputError
from dorsimeter.io.rawcsv import RAW_COLUMNS, read_raw_csv
from dorsimeter.io.readings import read_readings_csv

PROFILE = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.function_scoped_fixture])

rng = np.random.default_rng(0)
N = 60
_t = np.arange(N) / 100.0
_acc = rng.normal(0, 0.3, (N, 3)) + [0, 0, 9.81]
_gyr = rng.normal(0, 0.2, (N, 3))
VALID = (",".join([*RAW_COLUMNS, "side"]) + "\n" + "".join(
    ",".join(f"{v:.6g}" for v in (_t[i], *_acc[i], *_gyr[i])) + ",left\n" for i in range(N))
         ).encode()


def _check_raw(path) -> None:
    try:
        rec = read_raw_csv(path)
    except InputError as e:
        msg = str(e)
        assert "\n" not in msg and msg.startswith(str(path)), msg
        return
    assert len(rec.t_s) >= 2 and np.all(np.diff(rec.t_s) > 0)
    for a in (rec.t_s, rec.acc_m_s2, rec.gyr_rad_s):
        assert np.all(np.isfinite(a))
    assert set(rec.side) <= {"left", "right"}


@PROFILE
@given(data=st.binary(max_size=3000))
def test_raw_csv_reader_on_any_bytes(tmp_path, data):
    p = tmp_path / "any.csv"
    p.write_bytes(data)
    _check_raw(p)


@PROFILE
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 12),
                                st.binary(max_size=12)), min_size=1, max_size=5))
def test_raw_csv_reader_on_a_mutated_valid_file(tmp_path, edits):
    data = bytearray(VALID)
    for pos, n_del, ins in sorted(edits, reverse=True):
        data[pos:pos + n_del] = ins
    p = tmp_path / "mutated.csv"
    p.write_bytes(bytes(data))
    _check_raw(p)


@PROFILE
@given(data=st.binary(max_size=2000))
def test_readings_csv_reader_on_any_bytes(tmp_path, data):
    p = tmp_path / "readings.csv"
    p.write_bytes(b"t_s,side,tibia_angle_deg,knee_track_deg\n" + data)
    try:
        read_readings_csv(p)
    except DorsimeterError as e:
        assert "\n" not in str(e)


JSON_ISH = st.one_of(st.binary(max_size=400), st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["left", "right", "format", "version", "matrix", "id", "acc_offset_m_s2",
                         "gyr_bias_rad_s", "lever_arm_m", "x"]), kids, max_size=5),
    max_leaves=12).map(lambda v: __import__("json").dumps(v).encode()))


@PROFILE
@given(data=JSON_ISH)
def test_calibration_file_loaders_on_anything(tmp_path, data):
    from dorsimeter.io.calfiles import load_calibrations, load_sensor_calibration
    p = tmp_path / "cal.json"
    p.write_bytes(data)
    for load in (lambda: load_calibrations(p), lambda: load_sensor_calibration(path=p)):
        try:
            load()
        except DorsimeterError as e:
            assert "\n" not in str(e)


def _real_calibration_doc() -> dict:
    import json

    from dorsimeter.io.calfiles import save_calibrations
    from dorsimeter.pipeline import calibrate_recording
    from tests.conftest import simulate

    cals = calibrate_recording([simulate(20.0, seed=5)], 100.0)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        save_calibrations(cals, f"{d}/c.json")
        return json.loads(open(f"{d}/c.json").read())


REAL_CAL = _real_calibration_doc()
LEAVES = st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.integers(-10, 10),
                   st.floats(allow_nan=True, allow_infinity=True),
                   st.lists(st.floats(-2, 2), max_size=5), st.just({}), st.just([]))


@PROFILE
@given(st.lists(st.tuples(st.sampled_from(sorted(REAL_CAL["sides"]["left"])), LEAVES),
                min_size=1, max_size=3),
       st.sampled_from(["left", "right", "middle", ""]))
def test_a_mutated_calibration_file_is_refused_or_usable(tmp_path, changes, side_key):
    import copy
    import json

    from dorsimeter.io.calfiles import load_calibrations
    from dorsimeter.pipeline import Pipeline
    from tests.conftest import simulate

    doc = copy.deepcopy(REAL_CAL)
    fields = doc["sides"].pop("left")
    for k, v in changes:
        fields[k] = v
    doc["sides"][side_key] = fields
    p = tmp_path / "cal.json"
    p.write_text(json.dumps(doc))
    try:
        cals = load_calibrations(p)
    except DorsimeterError as e:
        assert "\n" not in str(e) and str(p) in str(e)
        return
    # accepted: then it must work in the pipeline, giving finite readings
    batch = simulate(3.0, seed=1)
    for side, cal in cals.items():
        r, _ = Pipeline(100.0, {side: cal}, side=side).push(batch)
        assert len(r) == len(batch) and np.all(np.isfinite(r.tibia_angle_deg))


SENSOR_CAL = {"format": "dorsimeter-sensor-calibration", "version": 1, "sensor_id": "u1",
              "gyr_bias_rad_s": [0.01, -0.02, 0.003], "acc_offset_m_s2": [0.05, 0.0, -0.1],
              "acc_matrix": [[1.01, 0, 0], [0, 0.99, 0.01], [0, 0, 1.0]], "n_poses": 6,
              "residual_m_s2": 0.01}


@PROFILE
@given(st.lists(st.tuples(st.sampled_from(sorted(SENSOR_CAL)[2:]),
                          st.one_of(LEAVES, st.lists(st.lists(st.floats(), max_size=4),
                                                     max_size=4))), min_size=1, max_size=3))
def test_a_mutated_sensor_calibration_is_refused_or_usable(tmp_path, changes):
    import json

    from dorsimeter.core.sensor_cal import FORMAT
    from dorsimeter.io.calfiles import load_sensor_calibration
    doc = dict(SENSOR_CAL, format=FORMAT)
    for k, v in changes:
        doc[k] = v
    p = tmp_path / "u1.json"
    p.write_text(json.dumps(doc))
    try:
        cal = load_sensor_calibration(path=p)
    except DorsimeterError as e:
        assert "\n" not in str(e) and str(p) in str(e)
        return
    acc, gyr = cal.apply(np.ones((4, 3)), np.ones((4, 3)))
    assert acc.shape == gyr.shape == (4, 3) and np.all(np.isfinite(acc)) and np.all(
        np.isfinite(gyr))
