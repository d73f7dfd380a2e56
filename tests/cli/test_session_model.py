"""What was done, stored as it happened, from the command line (issue 12: items 1, 4, 6, 8 and
both legs in one session), against real data directories and the reference recording."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pandas as pd

from dorsimeter.cli import main
from dorsimeter.store import Store

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "calibration" / "recordings"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_analyze_counts_the_reference_recordings_reps_and_no_calibration_drive():
    """Item 4: without a box calibration the calibration drives were counted as heel-lift
    attempts (``attempts 6 (4 scored, 2 heel lift)``); the file's own reference says 4 reps,
    no lifts. The trials are numbered from 1, as the export and the monitor number them."""
    reference = json.loads((REFERENCE / "reference.json").read_text())
    code, out, _ = run("analyze", str(REFERENCE / "wall_bmi270_s11_left.csv"))
    assert code == 0
    n = len(reference["reps"])
    assert f"attempts {n} ({n} scored, 0 heel lift)" in out
    listed = re.search(r"left: wall test, trials (.*)$", out, re.M).group(1).split(" · ")
    assert [int(x.split()[0]) for x in listed] == list(range(1, n + 1))
    for shown, truth in zip(listed, reference["reps"], strict=True):
        assert abs(float(shown.split()[1].rstrip("°")) - truth["end_range_deg"]) < 1.0


def test_lunges_are_stored_as_lunges_and_stay_out_of_the_wall_test_trend(tmp_path):
    """Item 1: ``record --sensor sim:lunge`` said "reaches a 9 cm wall", stored the lunges as
    wall tests and history trended them. Now they are reverse lunges (exercise, set, rep in the
    export), history's kind says so and the trend holds the wall tests only."""
    home = str(tmp_path / "home")
    common = ("--speed", "0", "--home", home, "--athlete", "Ana", "--tibia-length-cm", "42",
              "--foot-length-cm", "14")
    code, wall_out, _ = run("record", "--sensor", "sim", "--duration", "45", "--seed", "1",
                            "--out", str(tmp_path / "wall.csv"), *common)
    assert code == 0 and "cm wall" in wall_out
    code, out, _ = run("record", "--sensor", "sim:lunge", "--duration", "60", "--seed", "2",
                       "--out", str(tmp_path / "lunge.csv"), *common)
    assert code == 0
    assert "cm wall" not in out and "best valid" not in out
    lunges = re.search(r"left: reverse lunge, (\d+) reps", out)
    assert lunges and int(lunges.group(1)) >= 4
    sid = int(re.search(r"^stored session (\d+)$", out, re.M).group(1))
    code, _, _ = run("export", str(sid), "--out", str(tmp_path / "out"), "--home", home)
    assert code == 0
    df = pd.read_csv(tmp_path / "out" / f"dorsimeter-session-{sid}-trials.csv")
    assert set(df["exercise"]) == {"reverse_lunge"} and set(df["set_number"]) == {1}
    assert df["rep_number"].tolist() == list(range(1, int(lunges.group(1)) + 1))
    code, hist, _ = run("history", "Ana", "--home", home)
    rows = {int(m[0]): m[1].strip() for m in re.findall(
        r"^\s+(\d+)\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+(\S+(?: \S+)*?)\s{2,}", hist, re.M)}
    assert rows == {sid - 1: "wall test", sid: "reverse lunge"}
    with Store.open(home) as store:
        wall = [t for t in store.trials(sid - 1) if t.counts]
    best = max(t.angle_deg for t in wall)
    assert f"trend left : ▄  {best:.2f}° → {best:.2f}° (+0.00° over 1 session)" in hist
    assert "other exercises (not in the wall-test trend):" in hist
    assert re.search(rf"^\s+{sid}\s+reverse lunge\s+left\s+{lunges.group(1)} reps in 1 set",
                     hist, re.M)


def test_one_session_holds_both_legs_tested_one_after_the_other(tmp_path):
    home = str(tmp_path / "home")
    common = ("--speed", "0", "--home", home, "--duration", "45")
    code, out, _ = run("record", "--sensor", "sim", "--seed", "1", "--athlete", "Ana",
                       "--out", str(tmp_path / "left.csv"), *common)
    sid = int(re.search(r"^stored session (\d+)$", out, re.M).group(1))
    code, out, _ = run("record", "--sensor", "sim", "--seed", "2", "--side", "right",
                       "--session", str(sid), "--out", str(tmp_path / "right.csv"), *common)
    assert code == 0 and f"stored session {sid}" in out
    assert re.search(rf"^session {sid}, both legs: left − right: [+-]\d", out, re.M)
    with Store.open(home) as store:
        assert len(store.sessions("Ana")) == 1  # the athlete came from the session
        assert {t.side for t in store.trials(sid)} == {"left", "right"}
        assert set(store.legs(sid)) == {"left", "right"} and store.session(sid).ended
        assert len(store.session(sid).raw_paths) == 2
    code, hist, _ = run("history", "Ana", "--home", home)
    assert re.search(rf"^\s+{sid}\s.*°\s+[+-]\d+\.\d\d°", hist, re.M)  # L − R within it
    code, _, err = run("record", "--sensor", "sim", "--side", "right", "--session", str(sid),
                       "--out", str(tmp_path / "again.csv"), *common)
    assert code == 2 and f"--session {sid}: it already holds the right leg" in err
    assert not (tmp_path / "again.csv").exists()


def test_two_sensors_export_each_rows_own_sensor(tmp_path):
    """Item 6: the samples export's ``sensor`` column held both names joined, on every row."""
    home = str(tmp_path / "home")
    code, out, _ = run("record", "--sensor", "sim", "--right-sensor", "sim:wall", "--speed", "0",
                       "--duration", "20", "--out", str(tmp_path / "raw.csv"), "--home", home)
    assert code == 0
    sid = int(re.search(r"^stored session (\d+)$", out, re.M).group(1))
    assert run("export", str(sid), "--out", str(tmp_path / "out"), "--home", home)[0] == 0
    df = pd.read_csv(tmp_path / "out" / f"dorsimeter-session-{sid}-samples.csv")
    names = dict(df.groupby("side")["sensor"].unique().map(list))
    assert names == {"left": ["simulated rig (wall, seed 0)"],
                     "right": ["simulated rig (wall, seed 1)"]}
    assert not df["sensor"].str.contains("+", regex=False).any()


def test_a_sensor_that_never_connects_stores_nothing_and_leaves_no_file(tmp_path, monkeypatch):
    """Item 8: a failed connection exited 1 but left a 0-byte CSV and an empty 0/0 session."""
    home = str(tmp_path / "home")
    assert run("record", "--sensor", "sim", "--speed", "0", "--duration", "20", "--home", home,
               "--out", str(tmp_path / "ok.csv"), "--athlete", "Ana")[0] == 0
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    for i, sensor in enumerate(("ble:dorsi-9999", f"serial:{tmp_path}/no-such-port")):
        out = tmp_path / f"failed-{i}.csv"
        code, _, err = run("record", "--sensor", sensor, "--duration", "5", "--out", str(out),
                           "--home", home, "--athlete", "Ana")
        assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
        assert not out.exists()
    with Store.open(home) as store:
        assert len(store.sessions()) == 1
    code, hist, _ = run("history", "Ana", "--home", home)
    assert "1 session" in hist and "0/0, 0/0" not in hist
