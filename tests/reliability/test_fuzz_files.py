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
