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


def test_live_commands_apply_the_sensors_box_calibration(tmp_path, capsys):
    """`record --sensor-cal` applies a box calibration live: the accelerometer is then the
    reference (no offset fitted in the mounting calibration, as `analyze --sensor-cal` does),
    and a BLE sensor's stored calibration is found by its address or name."""
    from dorsimeter.core.sensor_cal import SensorCalibration
    from dorsimeter.io.calfiles import save_sensor_calibration, sensor_cal_for
    from dorsimeter.wire.sensorspec import SensorSpec
    home = tmp_path / "home"
    unit = save_sensor_calibration(SensorCalibration("unit-1", n_poses=6), path=tmp_path / "u.json")
    assert main(["record", "--sensor", "sim", "--speed", "0", "--duration", "20",
                 "--out", str(tmp_path / "a.csv"), "--home", str(home)]) == 0
    plain = capsys.readouterr()
    # the simulated unit here has no offset: none is taken out unless the fit explains the data
    # (issue 11: 'accelerometer offset 8 mg taken out' from a sensor without one)
    assert "calibration left" in plain.out and "sensor unit-1" not in plain.err
    assert main(["record", "--sensor", "sim", "--speed", "0", "--duration", "20",
                 "--out", str(tmp_path / "b.csv"), "--home", str(home),
                 "--sensor-cal", str(unit)]) == 0
    boxed = capsys.readouterr()
    assert "left: sensor unit-1: 6 poses" in boxed.err and "accelerometer offset" not in boxed.out
    save_sensor_calibration(SensorCalibration("C0:D0:57:00:00:d7", n_poses=9), home=home)
    found = sensor_cal_for(SensorSpec.parse("ble:C0:D0:57:00:00:d7@100"), None, str(home))
    assert found is not None and found.n_poses == 9
    assert sensor_cal_for(SensorSpec.parse("ble:dorsi-unknown"), None, str(home)) is None
    assert sensor_cal_for(SensorSpec.parse("serial:/dev/ttyACM0"), None, str(home)) is None
