"""The command line end to end: record → calibrate → analyze, and bad input."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.io.rawcsv import read_raw_csv


def _maxima(text: str) -> dict[str, str]:
    return dict(re.findall(r"(left|right): max tibia angle ([\d.]+)°", text))


def test_calibrate_and_analyze_reproduce_the_live_maxima(tmp_path, capsys):
    raw, cal, out = tmp_path / "raw.csv", tmp_path / "cal.json", tmp_path / "readings.csv"
    assert main(["record", "--sensor", "sim", "--speed", "0", "--duration", "30", "--side",
                 "left", "--out", str(raw), "--clip-rotation", "0,0,110"]) == 0
    live = _maxima(capsys.readouterr().out)
    assert "left" in live and float(live["left"]) > 30.0
    assert main(["calibrate", str(raw), "--out", str(cal)]) == 0
    capsys.readouterr()
    assert main(["analyze", str(raw), "--calibration", str(cal), "--out", str(out)]) == 0
    assert _maxima(capsys.readouterr().out) == live
    rec = read_raw_csv(raw)
    assert len(rec.t_s) == 3000 and set(rec.side) == {"left"}
    readings = np.genfromtxt(out, delimiter=",", names=True, dtype=None, encoding="utf-8")
    assert readings.dtype.names[:3] == ("t_s", "side", "tibia_angle_deg")
    assert f"{readings['tibia_angle_deg'].max():.2f}" == live["left"]


GOOD_HEADER = "t_s,acc_x_m_s2,acc_y_m_s2,acc_z_m_s2,gyr_x_rad_s,gyr_y_rad_s,gyr_z_rad_s"


@pytest.mark.parametrize("content, expect", [
    ("t_s,acc_x_m_s2,acc_y_m_s2,gyr_x_rad_s,gyr_y_rad_s,gyr_z_rad_s\n0,0,0,0,0,0\n",
     r"bad\.csv, line 1, column 'acc_z_m_s2': missing column"),
    (GOOD_HEADER + "\n0,0,0,9.8,0,0,0\n0.01,0,abc,9.8,0,0,0\n",
     r"bad\.csv, line 3, column 'acc_y_m_s2': 'abc' is not a finite number"),
    (GOOD_HEADER + "\n", r"bad\.csv, line 2: no data rows"),
    ("", r"bad\.csv, line 1: empty file"),
    (GOOD_HEADER + ",side\n0,0,0,9.8,0,0,0,left\n0.01,0,0,9.8,0,0,0,middle\n",
     r"bad\.csv, line 3, column 'side': 'middle' is not 'left' or 'right'"),
])
def test_bad_raw_csv_is_one_line_naming_file_line_column(tmp_path, capsys, content, expect):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    for cmd in (["analyze", str(bad)], ["calibrate", str(bad), "--out", str(tmp_path / "c.json")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert re.search(expect, err), err


def test_bad_input_from_the_installed_command_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01\x02garbage")
    p = subprocess.run([sys.executable, "-m", "dorsimeter.cli", "analyze", str(bad)],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().startswith("dorsimeter: error:") and "Traceback" not in p.stderr
    assert "bad.csv" in p.stderr and p.stderr.count("\n") == 1


def test_a_file_that_cannot_define_a_calibration_is_refused(tmp_path, capsys):
    raw = tmp_path / "still.csv"
    assert main(["record", "--speed", "0", "--duration", "2.5", "--out", str(raw)]) == 0
    capsys.readouterr()
    assert main(["calibrate", str(raw), "--out", str(tmp_path / "c.json")]) == 2
    assert "still stance" in capsys.readouterr().err


def test_sim_scripts_are_named_on_the_sensor_spec(tmp_path, capsys):
    raw = tmp_path / "lunge.csv"
    assert main(["record", "--sensor", "sim:lunge", "--speed", "0", "--duration", "20",
                 "--out", str(raw)]) == 0
    assert float(_maxima(capsys.readouterr().out)["left"]) > 20.0
    assert main(["record", "--sensor", "sim:jumping", "--duration", "1", "--out",
                 str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert "sim:jumping" in err and "lunge" in err and err.count("\n") == 1


def test_record_with_the_athletes_lengths_says_whether_the_knee_reaches_the_wall(tmp_path, capsys):
    import math

    assert main(["record", "--speed", "0", "--duration", "40", "--out", str(tmp_path / "r.csv"),
                 "--athlete", "Ana", "--tibia-length-cm", "42", "--foot-length-cm", "14"]) == 0
    out = capsys.readouterr().out
    best = float(re.search(r"best valid ([\d.]+)°", out).group(1))
    toe_to_wall = float(re.search(r"left: reaches a 9 cm wall \(toe to wall ([\d.]+) cm\)",
                                  out).group(1))
    assert toe_to_wall == pytest.approx(42 * math.sin(math.radians(best)) - 14, abs=0.1)
    # lengths stored with the athlete are used next time without repeating them
    assert main(["record", "--speed", "0", "--duration", "40", "--out", str(tmp_path / "s.csv"),
                 "--athlete", "Ana", "--seed", "3"]) == 0
    assert "9 cm wall" in capsys.readouterr().out


def test_live_calibrate_equals_calibrate_of_its_recording(tmp_path, capsys):
    live, raw, again = tmp_path / "live.json", tmp_path / "cal.csv", tmp_path / "file.json"
    assert main(["calibrate", "--sensor", "sim", "--speed", "0", "--clip-rotation", "5,-10,150",
                 "--out", str(live), "--record", str(raw)]) == 0
    out = capsys.readouterr().out
    assert "stand tall and still" in out and "drive the knee forward" in out
    assert out.count("\n") < 40  # progress about once a second, not per batch
    assert main(["calibrate", str(raw), "--out", str(again)]) == 0
    assert json.loads(live.read_text()) == json.loads(again.read_text())
    assert main(["calibrate", "--out", str(again)]) == 2  # neither a file nor a sensor
    assert "raw CSV or --sensor" in capsys.readouterr().err


def test_two_sensors_live_one_per_shin_give_both_sides_and_their_asymmetry(tmp_path, capsys):
    out = tmp_path / "both.csv"
    assert main(["record", "--speed", "0", "--duration", "40", "--sensor", "sim",
                 "--right-sensor", "sim", "--out", str(out)]) == 0
    live = capsys.readouterr().out
    best = dict(re.findall(r"(left|right): max tibia angle [\d.]+°, best valid ([\d.]+)°", live))
    assert set(best) == {"left", "right"}
    diff = float(re.search(r"left − right: ([+-][\d.]+)°", live).group(1))
    # each best is printed to 0.1°, the difference from the unrounded ones: ±0.05 twice
    assert diff == pytest.approx(float(best["left"]) - float(best["right"]), abs=0.101)
    for side in ("left", "right"):  # each sensor's file re-analyses to its live numbers
        raw = tmp_path / f"both-{side}.csv"
        assert set(read_raw_csv(raw).side) == {side}
        assert main(["analyze", str(raw)]) == 0
        again = dict(re.findall(r"(left|right): max tibia angle [\d.]+°, best valid ([\d.]+)°",
                                capsys.readouterr().out))
        assert again == {side: best[side]}


def test_an_athlete_can_be_stored_under_a_pseudonymous_id(tmp_path, capsys):
    from dorsimeter.store import Store

    home = tmp_path / "home"
    assert main(["record", "--speed", "0", "--duration", "5", "--out", str(tmp_path / "r.csv"),
                 "--home", str(home), "--athlete", "A-7f3c", "--pseudonymous"]) == 0
    with Store.open(home) as store:
        (athlete,) = store.athletes()
    assert athlete.name == "A-7f3c" and athlete.pseudonymous is True


def test_analyze_gives_the_inclinometer_equivalent_clip_reading(tmp_path, capsys):
    """A clip tilted on the shin (and turned about it), a unit with realistic BMI270 errors and
    its sensor calibration: the clip reading is the simulator's tibia angle plus the clip's true
    sagittal lean, sample by sample and in the scores."""
    from dorsimeter.core.sensor_cal import calibrate_sensor
    from dorsimeter.io.calfiles import save_sensor_calibration
    from dorsimeter.io.rawcsv import RawCsvWriter
    from dorsimeter.sim import Mount, SensorErrors, ShankSim
    from dorsimeter.sim.errors import still_pose_recording

    mount = Mount(clip_rotation_deg=(0.0, 8.0, 120.0))
    c = mount.sensor_to_tibia.apply([0.0, 0.0, 1.0])
    true_lean = float(np.degrees(np.arctan2(c[0], c[2])))  # the sensor's z runs along the clip
    errors = SensorErrors.realistic("bmi270", 100.0, 5)
    _, pa, pg = still_pose_recording(errors, 100.0, 105, n_random=6)
    cal_path = save_sensor_calibration(calibrate_sensor(pa, pg, 100.0, "unit-5"),
                                       path=tmp_path / "unit.json")
    b = ShankSim(rate_hz=100.0, seed=5, mount=mount, errors=errors).generate(6000)
    raw, out = tmp_path / "raw.csv", tmp_path / "r.csv"
    w = RawCsvWriter(raw)
    w.write(b, "left")
    w.close()
    assert main(["analyze", str(raw), "--clip-axis", "+z", "--sensor-cal", str(cal_path),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lean = float(re.search(r"the clip leans ([+-][\d.]+)° on the left", text).group(1))
    assert abs(lean - true_lean) < 0.3
    r = np.genfromtxt(out, delimiter=",", names=True, dtype=None, encoding="utf-8")
    assert r.dtype.names[-1] == "clip_angle_deg"
    after = r["t_s"] > 20.0  # calibrated by then
    truth = b.truth["tibia_angle_deg"][after] + true_lean
    assert np.sqrt(np.mean((r["clip_angle_deg"][after] - truth) ** 2)) < 0.3
    tib = re.search(r"left: max tibia angle [\d.]+°, best valid ([\d.]+)°", text)
    clip = re.search(r"left: max clip angle [\d.]+°, best valid ([\d.]+)°", text)
    assert abs(float(clip.group(1)) - float(tib.group(1)) - lean) < 0.15
    # an axis across the shin is one line naming the option and the axis that does run up it
    assert main(["analyze", str(raw), "--clip-axis", "+y"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--clip-axis +y: left leg: +y runs across the shin" in err
    assert "the axis up the shin is +z" in err


def test_calibrate_out_onto_a_file_of_the_other_side_keeps_it(tmp_path, capsys):
    """Issue 12 item 11: calibrating the right leg into cal.json dropped its left side."""
    from dorsimeter.io.calfiles import load_calibrations
    cal = tmp_path / "cal.json"
    for side, seed in (("left", "1"), ("right", "2")):
        assert main(["calibrate", "--sensor", "sim", "--speed", "0", "--side", side, "--seed",
                     seed, "--out", str(cal)]) == 0
    out = capsys.readouterr().out
    assert f"kept the left side's calibration already in {cal}" in out
    both = load_calibrations(cal)
    assert set(both) == {"left", "right"}
    left_alone = tmp_path / "left.json"
    assert main(["calibrate", "--sensor", "sim", "--speed", "0", "--side", "left", "--seed", "1",
                 "--out", str(left_alone)]) == 0
    assert both["left"] == load_calibrations(left_alone)["left"]  # the very calibration kept
    (tmp_path / "notes.json").write_text("my notes\n")
    assert main(["calibrate", "--sensor", "sim", "--speed", "0", "--out",
                 str(tmp_path / "notes.json")]) == 2  # not a calibration file: not overwritten
    assert (tmp_path / "notes.json").read_text() == "my notes\n"
