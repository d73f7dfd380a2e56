"""``dorsimeter sensor-cal`` and ``analyze --sensor-cal``: real files, real parsers."""

import json

import numpy as np

from dorsimeter.cli import main
from dorsimeter.io.rawcsv import RawCsvWriter
from dorsimeter.sim import SensorErrors, ShankSim
from dorsimeter.sim.errors import still_pose_recording
from dorsimeter.types import ImuBatch


def test_sensor_cal_stores_per_sensor_and_analyze_uses_it(tmp_path, capsys):
    errors = SensorErrors.realistic("bmi270", 100.0, seed=3)
    t, acc, gyr = still_pose_recording(errors, 100.0, seed=3, n_random=4, hold_s=2.0)
    poses = tmp_path / "poses.csv"
    with RawCsvWriter(poses) as w:
        w.write(ImuBatch(t, acc, gyr), "left")
    home = tmp_path / "home"
    assert main(["sensor-cal", str(poses), "--id", "AA:BB:CC:DD:EE:FF", "--home", str(home)]) == 0
    stored = list((home / "sensors").glob("*.json"))
    assert len(stored) == 1
    doc = json.loads(stored[0].read_text())
    np.testing.assert_allclose(doc["acc_offset_m_s2"], errors.acc_offset_m_s2, atol=0.02)
    assert "wrote" in capsys.readouterr().out

    wall = tmp_path / "wall.csv"
    with RawCsvWriter(wall) as w:
        w.write(ShankSim(errors=errors, seed=3).generate(3000), "left")
    assert main(["analyze", str(wall), "--sensor-cal", "AA:BB:CC:DD:EE:FF",
                 "--home", str(home), "--offline"]) == 0
    assert "calibration left" in capsys.readouterr().out


def test_unknown_sensor_id_is_a_one_line_error(tmp_path, capsys):
    wall = tmp_path / "wall.csv"
    with RawCsvWriter(wall) as w:
        w.write(ShankSim(seed=1).generate(300), "left")
    rc = main(["analyze", str(wall), "--sensor-cal", "nope", "--home", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "nope.json" in err and len(err.strip().splitlines()) == 1
