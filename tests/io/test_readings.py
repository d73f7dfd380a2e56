"""The readings CSV: heel lift, its source, rep and rep validity beside the angles."""

import numpy as np
import pytest

from dorsimeter.errors import InputError
from dorsimeter.io.readings import READINGS_COLUMNS, ReadingsCsvWriter, read_readings_csv
from dorsimeter.sim import ShankSim
from tests.detect.simrun import held, rep_events, run


def test_round_trip_carries_heel_and_rep_columns(tmp_path):
    spec = ShankSim(script="mobilisation").spec.with_(lifts_m=(0.0, 0.02))
    sim = ShankSim(script=spec, seed=2, foot_imu=True)
    r, events, _ = run(sim, 60.0)
    path = tmp_path / "readings.csv"
    with ReadingsCsvWriter(path) as w:
        w.write(r)
    assert path.read_text().splitlines()[0] == ",".join(READINGS_COLUMNS)
    back = read_readings_csv(path)
    np.testing.assert_allclose(back.t_s, r.t_s)
    np.testing.assert_array_equal(back.heel_lift, r.heel_lift)
    np.testing.assert_array_equal(back.rep, r.rep)
    np.testing.assert_array_equal(back.rep_valid, r.rep_valid)
    assert set(back.heel_source[back.t_s > 10]) == {"foot_imu"}
    # the file alone says which reps were valid: the last row of each rep carries its verdict
    for rep in held(rep_events(events)):
        rows = np.flatnonzero(back.rep == rep.index)
        assert bool(back.rep_valid[rows[-1]]) == rep.valid
    assert sum(not rep.valid for rep in held(rep_events(events))) >= 3


def test_bad_rows_name_line_and_column(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(",".join(READINGS_COLUMNS) + "\n0.01,left,1.0,0.0,0,none,-1,1\n"
                 "0.02,left,1.0,0.0,2,none,-1,1\n")
    with pytest.raises(InputError, match=r"bad\.csv, line 3, column 'heel_lift': expected 0 or 1"):
        read_readings_csv(p)
    p.write_text(",".join(READINGS_COLUMNS) + "\n0.01,middle,1.0,0.0,0,none,-1,1\n")
    with pytest.raises(InputError, match="line 2, column 'side'"):
        read_readings_csv(p)
