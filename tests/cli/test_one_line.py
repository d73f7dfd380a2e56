"""One line, every time (issue 18): each hostile input the adversarial run found gives exactly
one line on stderr and exit 2, never a traceback; output works in an ASCII or latin-1 locale;
calibration files are checked for physics where they enter; and the smaller CLI items."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.store import Store


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def one_line(rc: int, err: str, code: int = 2) -> None:
    assert rc == code and err.count("\n") == 1 and "Traceback" not in err, (rc, err)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """A recorded session (raw CSV, history) and its mounting calibration."""
    tmp = tmp_path_factory.mktemp("one")
    home, raw, cal = tmp / "home", tmp / "raw.csv", tmp / "cal.json"
    rc, out, err = cli("record", "--speed", "0", "--duration", "25", "--seed", "2", "--out",
                       raw, "--home", home, "--athlete", "Ana")
    assert rc == 0, err
    assert cli("calibrate", raw, "--out", cal)[0] == 0
    return home, tmp, raw, cal


REC = ("record", "--speed", "0", "--out")


@pytest.mark.parametrize("extra", [
    ("--seed", "-5"), ("--duration", "nan"), ("--duration", "1e308"), ("--duration", "0"),
    ("--duration", "-5"), ("--duration", "inf"), ("--clip-rotation", "nan,0,0"),
    ("--speed", "nan"), ("--tibia-length-cm", "inf"), ("--tibia-length-cm", "-42"),
    ("--tibia-length-cm", "1e308"), ("--foot-length-cm", "nan"), ("--athlete", "bad\udcff"),
])
def test_hostile_record_options_are_one_line_and_store_nothing(tmp_path, extra):
    home = tmp_path / "home"
    argv = [*REC, tmp_path / "r.csv", "--home", home, *extra]
    if "--duration" not in extra:
        argv += ["--duration", "3"]
    rc, _, err = cli(*argv)
    one_line(rc, err)
    assert not (tmp_path / "r.csv").exists()
    assert not (home / "history.sqlite3").exists()  # no empty session


def test_monitor_target_and_export_and_recover_ids_are_one_line(rig):
    home, tmp, _, _ = rig
    for argv in (("monitor", "--target-deg", "nan"), ("monitor", "--target-deg", "1e308"),
                 ("export", "99999999999999999999999", "--out", tmp / "x", "--home", home),
                 ("export", "-3", "--out", tmp / "x", "--home", home),
                 ("export", "latest", "--out", "", "--home", home),
                 ("report", "99999999999999999999999", "--out", tmp / "x.html", "--home", home),
                 ("recover", "99999999999999999999999", "--home", home),
                 ("history", "x\udcfe", "--home", home)):
        rc, _, err = cli(*argv)
        one_line(rc, err)
    assert not (tmp / "x").exists()


@pytest.mark.parametrize("text, expect", [
    ("athlete = 12\n", r"config\.toml, line 1, key 'athlete' = 12: expected text in quotes"),
    ("seed = -5\n", r"key 'seed' = -5: expected a whole number from 0"),
    ("duration = 5\n", r"no command has an option --duration|key 'duration'"),
    ("seed = true\n", r"key 'seed' = True: expected a number"),
    ("[record]\nclip_rotation = \"nan,0,0\"\n", r"key 'record\.clip_rotation'.*three angles"),
    ("a = " + "[" * 50_000 + "]" * 50_000 + "\n", r"config\.toml: (nested too deeply|not valid)"),
    ("force = true\n", r"no command has an option --force"),
    ('athlete = "a\\u0000b"\n', r"key 'athlete' = .*: a NUL character is not allowed"),
])
def test_bad_config_values_name_file_key_and_expectation(tmp_path, text, expect):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(text)
    rc, _, err = cli(*REC, tmp_path / "r.csv", "--duration", "3", "--home", home)
    one_line(rc, err)
    assert re.search(expect, err), err
    assert "could not convert" not in err and "column" not in err


def test_bad_environment_values_name_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("DORSIMETER_SEED", "-5")
    rc, _, err = cli(*REC, tmp_path / "r.csv", "--duration", "3", "--home", tmp_path / "h")
    one_line(rc, err)
    assert "environment variable DORSIMETER_SEED='-5': expected a whole number" in err


def _cal_doc(cal) -> dict:
    return json.loads(cal.read_text())


@pytest.mark.parametrize("damage, expect", [
    (lambda d: "{" * 5000 + "}" * 5000, r"nested over 20 levels"),
    (lambda d: json.dumps(d).replace('"version": 1', '"version": ' + "9" * 400),
     r"an integer of 400 digits"),
    (lambda d: json.dumps(d).replace('"still_s": ', '"still_s": NaN, "x": '), r"NaN"),
])
def test_damaged_calibration_json_is_one_line(rig, tmp_path, damage, expect):
    _, _, raw, cal = rig
    bad = tmp_path / "bad.json"
    bad.write_text(damage(_cal_doc(cal)))
    rc, _, err = cli("analyze", raw, "--calibration", bad)
    one_line(rc, err)
    assert re.search(expect, err) and str(bad) in err, err


def test_calibration_json_with_a_bom_is_read_and_an_unreadable_one_exits_2(rig, tmp_path):
    _, _, raw, cal = rig
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + cal.read_bytes())  # as Windows Notepad saves it
    rc, out, err = cli("analyze", raw, "--calibration", bom)
    assert rc == 0 and "max tibia angle" in out, err
    rc, _, err = cli("analyze", raw, "--calibration", tmp_path)  # a directory: unreadable
    one_line(rc, err)
    assert "cannot read it" in err


def _rotated(doc: dict, r: np.ndarray) -> dict:
    side = doc["sides"]["left"]
    m = np.array([side["x_axis"], side["y_axis"], side["z_axis"]]) @ r.T
    side["x_axis"], side["y_axis"], side["z_axis"] = (list(map(float, row)) for row in m)
    return doc


def test_mounting_calibration_must_be_a_proper_rotation_with_a_shin_lever_arm(rig, tmp_path):
    _, _, raw, cal = rig
    bad = tmp_path / "bad.json"
    doc = _cal_doc(cal)
    left = doc["sides"]["left"]
    left["y_axis"] = [-v for v in left["y_axis"]]  # left-handed: orthonormal, det -1
    bad.write_text(json.dumps(doc))
    rc, _, err = cli("analyze", raw, "--calibration", bad)
    one_line(rc, err)
    assert "left-handed" in err and "sides.left.z_axis" in err
    doc = _cal_doc(cal)
    doc["sides"]["left"]["lever_arm_m"] = [0.0, 0.0, 1.71]
    bad.write_text(json.dumps(doc))
    rc, _, err = cli("analyze", raw, "--calibration", bad)
    one_line(rc, err)
    assert "1.71 m from the ankle: expected under 0.5 m" in err


@pytest.mark.parametrize("r", [np.diag([1.0, -1.0, -1.0]),  # the clip turned 180°
                               np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])])  # 90°
def test_a_calibration_from_another_mount_warns(rig, tmp_path, r):
    _, _, raw, cal = rig
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_rotated(_cal_doc(cal), r)))
    rc, _, err = cli("analyze", raw, "--calibration", other)
    assert rc == 0
    warn = [ln for ln in err.splitlines() if "another mount" in ln]
    assert len(warn) == 1 and str(other) in warn[0], err
    rc, _, err = cli("analyze", raw, "--calibration", cal)  # its own mount: no warning
    assert rc == 0 and "another mount" not in err


@pytest.mark.parametrize("r", [np.diag([1.0, -1.0, -1.0])])  # the clip turned 180°
def test_live_calibration_from_another_mount_warns_as_analyze_does(rig, tmp_path, r):
    """``record --calibration``: the stream's first second held against the file's mount,
    the same rule and line as ``analyze`` (warned once, the session still recorded)."""
    home, _, _, cal = rig
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_rotated(_cal_doc(cal), r)))
    rc, out, err = cli("record", "--speed", "0", "--duration", "3", "--seed", "2",
                       "--calibration", other, "--out", tmp_path / "a.csv", "--home", home)
    assert rc == 0, err
    warn = [ln for ln in err.splitlines() if "another mount" in ln]
    assert len(warn) == 1 and str(other) in warn[0] and "(left)" in warn[0], err
    assert "shin 180° from the calibration's upright" in warn[0] or "shin 179°" in warn[0]
    assert "wrote 300 samples" in out
    rc, _, err = cli("record", "--speed", "0", "--duration", "3", "--seed", "2",
                     "--calibration", cal, "--out", tmp_path / "b.csv", "--home", home)
    assert rc == 0 and "another mount" not in err, err  # its own mount: no warning


@pytest.mark.parametrize("field, value, expect", [
    ("acc_matrix", [[3.0, 0, 0], [0, 1, 0], [0, 0, 1]], "scale factor 200% from 1"),
    ("acc_matrix", [[1.0, 0.5, 0], [0.5, 1, 0], [0, 0, 1]], "cross-axis term 0.50"),
    ("acc_offset_m_s2", [5.0, 0, 0], "510 mg of offset"),
    ("gyr_bias_rad_s", [2.0, 0, 0], "115 °/s of gyro bias"),
])
def test_an_absurd_sensor_calibration_is_refused_naming_the_field(rig, tmp_path, field, value,
                                                                   expect):
    _, _, raw, _ = rig
    doc = {"format": "dorsimeter-sensor-calibration", "version": 1, "sensor_id": "box",
           "gyr_bias_rad_s": [0.0, 0.0, 0.0], "acc_offset_m_s2": [0.0, 0.0, 0.0],
           "acc_matrix": [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]], "n_poses": 6,
           "residual_m_s2": 0.01}
    doc[field] = value
    path = tmp_path / "box.json"
    path.write_text(json.dumps(doc))
    rc, _, err = cli("analyze", raw, "--sensor-cal", path)
    one_line(rc, err)
    assert f"field '{field}'" in err and expect in err, err
    assert "still stance" not in err  # not blamed on the athlete


def test_limb_lengths_are_human_in_the_store_too(tmp_path):
    from dorsimeter.errors import DorsimeterError

    with Store.open(tmp_path) as store:
        for bad in (math.inf, -0.42, 1e306, math.nan):
            with pytest.raises(DorsimeterError, match="a human limb"):
                store.athlete("Ana", tibia_length_m=bad)
        assert store.athlete("Ana", 0.41, 0.15).tibia_length_m == 0.41


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_output_works_in_an_ascii_or_latin1_locale(tmp_path, encoding):
    env = {**os.environ, "PYTHONIOENCODING": encoding, "LC_ALL": "C"}
    p = subprocess.run([sys.executable, "-m", "dorsimeter.cli", "record", "--speed", "0",
                        "--duration", "20", "--out", str(tmp_path / "r.csv"), "--home",
                        str(tmp_path / "h"), "--athlete", "Zoë 李"], env=env,
                       capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode(encoding)
    assert re.search(r"^stored session 1$", out, re.M), out
    assert "max tibia angle" in out and (" deg" in out or "°" in out)
    p = subprocess.run([sys.executable, "-m", "dorsimeter.cli", "history", "--home",
                        str(tmp_path / "h")], env=env, capture_output=True, timeout=120)
    assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr


def test_duration_counts_device_seconds_not_samples(tmp_path, rig):
    """A replayed file with 3 s of samples missing: --duration 10 ends 10 s of device time
    after the first sample, with fewer samples (counting samples would run on to 13 s)."""
    _, _, raw, _ = rig
    lines = raw.read_text().splitlines()
    t = np.array([float(ln.split(",")[0]) for ln in lines[1:]])
    keep = [lines[0]] + [ln for ln, ti in zip(lines[1:], t, strict=True)
                         if not (t[0] + 2.0 <= ti < t[0] + 5.0)]
    lossy = tmp_path / "lossy.csv"
    lossy.write_text("\n".join(keep) + "\n")
    out = tmp_path / "out.csv"
    rc, _, err = cli("record", "--sensor", f"replay:{lossy}", "--speed", "0", "--duration", 10,
                     "--out", out, "--home", tmp_path / "h")
    assert rc == 0, err
    got = np.array([float(ln.split(",")[0]) for ln in out.read_text().splitlines()[1:]])
    rate = 1.0 / float(np.median(np.diff(t)))
    assert got[-1] - got[0] < 10.0 and got[-1] - got[0] > 10.0 - 2.0 / rate
    assert abs(len(got) - 7.0 * rate) <= 2  # 10 s minus the 3 s lost


def test_history_of_nobody_is_short_among_many_athletes(tmp_path):
    with Store.open(tmp_path) as store:
        for i in range(3000):
            store.db.execute("INSERT INTO athletes (name, pseudonymous, created_utc) "
                             "VALUES (?, 0, '2026-01-01')", (f"athlete-{i:05d}-" + "x" * 20,))
    rc, _, err = cli("history", "nobody", "--home", tmp_path)
    one_line(rc, err)
    assert len(err) < 300 and "no athlete 'nobody' (3000 athletes stored" in err


def test_recover_says_what_history_shows(rig, tmp_path):
    """An interrupted session with stored reps: recover's counts are history's counts."""
    _, _, raw, _ = rig
    home = tmp_path / "home"
    with Store.open(home) as store:
        sid = store.start_session("record", "Ana", "sim", "sim", None)
        store.add_trial(sid, "left", 35.0, True, "switch", 1.0, 3.0, rep=1, scored=True)
        store.add_trial(sid, "left", 36.0, False, "switch", 4.0, 6.0, rep=2, scored=False)
        store.close()
    rc, out, err = cli("recover", "--home", home)
    assert rc == 0, err
    assert "scored/trials left 1/2, right 0/0" in out, out
    rc, hist, _ = cli("history", "Ana", "--home", home)
    assert rc == 0 and re.search(rf"^\s+{sid} .*1/2, 0/0$", hist, re.M), hist


def test_a_read_only_data_directory_can_still_be_read(rig, tmp_path):
    """history, export and report from a data directory the user cannot write (run as an
    unprivileged user, since root writes anywhere)."""
    home, _, _, _ = rig
    ro = tmp_path / "ro"
    with Store.open(home) as store, Store.open(ro) as copy:
        store.db.execute(f"VACUUM INTO '{ro / 'copy.sqlite3'}'")
        del copy
    os.replace(ro / "copy.sqlite3", ro / "history.sqlite3")
    for name in ("history.sqlite3-wal", "history.sqlite3-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ro / name)
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(ro / "history.sqlite3", 0o400)
    os.chmod(ro, 0o500)
    # root writes anywhere: without the capability to override file modes it cannot
    # (setpriv is util-linux, in every Debian base system)
    drop = (["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
            if os.getuid() == 0 else [])

    def run(*argv):
        return subprocess.run([*drop, sys.executable, "-m", "dorsimeter.cli", *map(str, argv)],
                              capture_output=True, timeout=120, cwd=str(tmp_path))

    try:
        p = run("history", "--home", ro)
        assert p.returncode == 0 and b"Ana" in p.stdout, p.stderr
        p = run("export", "latest", "--out", out, "--home", ro)
        assert p.returncode == 0 and b"wrote" in p.stdout, p.stderr
        p = run("report", "latest", "--out", out / "r.html", "--home", ro)
        assert p.returncode == 0 and (out / "r.html").exists(), p.stderr
        assert sorted(x.name for x in ro.iterdir()) == ["history.sqlite3"]  # nothing written
    finally:
        os.chmod(ro, 0o700)


def test_the_monitor_exits_130_on_sigint_with_its_session_stored(tmp_path):
    home = tmp_path / "home"
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "dorsimeter.cli", "monitor", "--sensor", "sim",
                          "--speed", "1", "--home", str(home)], stdin=slave, stdout=slave,
                         stderr=slave, close_fds=True, start_new_session=True,
                         env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "100",
                              "LINES": "30"})
    os.close(slave)
    try:
        deadline = time.monotonic() + 120
        n = 0
        while time.monotonic() < deadline and p.poll() is None and n < 200:
            if select.select([master], [], [], 0.2)[0]:
                with contextlib.suppress(OSError):
                    os.read(master, 65536)
            with contextlib.suppress(sqlite3.Error):
                n = sqlite3.connect(home / "history.sqlite3").execute(
                    "SELECT COUNT(*) FROM samples").fetchone()[0]
        assert n >= 200, "the monitor stored nothing"
        os.kill(p.pid, signal.SIGINT)
        while p.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                with contextlib.suppress(OSError):
                    os.read(master, 65536)
        assert p.wait(timeout=30) == 130
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    with Store.open(home) as store:
        (s,) = store.sessions()
        assert s.ended and store.count_samples(s.id) >= 200


BIG = "9" * 400  # an int Python parses, beyond any float: math.isfinite of it overflowed


def test_400_digit_integers_are_one_line_in_every_integer_option(rig, tmp_path):
    home, _, raw, _ = rig
    for argv in (("recover", BIG, "--home", home),
                 ("calibrate", raw, "--out", tmp_path / "c.json", "--seed", BIG),
                 (*REC, tmp_path / "r.csv", "--duration", "3", "--seed", BIG, "--home", home),
                 (*REC, tmp_path / "r.csv", "--duration", "3", "--session", BIG, "--home", home),
                 (*REC, tmp_path / "r.csv", "--duration", BIG, "--home", home),
                 ("export", BIG, "--out", tmp_path / "x", "--home", home),
                 ("report", BIG, "--out", tmp_path / "x.html", "--home", home),
                 ("team", "--coaches", tmp_path / "c.json", "--port", BIG),
                 ("team", "--coaches", tmp_path / "c.json", "--port", "70000")):
        rc, _, err = cli(*argv)
        one_line(rc, err)
        assert "9" * 41 not in err, err  # the number is shortened, not echoed whole
        if argv[0] == "team":  # refused as it is parsed, not later by bind() (OverflowError)
            assert "expected a whole number from 0 to 65535 (a TCP port)" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_config_integer_for_the_sensor_cal_path_names_the_file_and_key(rig, tmp_path):
    """``sensor_cal`` is both the sensor-cal command's table name and the top-level key of
    other commands' --sensor-cal: an integer there was taken as the command's table."""
    _, _, raw, _ = rig
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text("sensor_cal = 218272\n")
    out = tmp_path / "sc.json"
    rc, _, err = cli("sensor-cal", raw, "--id", "x", "--out", out, "--home", home)
    one_line(rc, err)
    assert f"{home / 'config.toml'}, line 1, key 'sensor_cal'" in err and "expected text" in err
    assert not out.exists()
    (home / "config.toml").write_text('sensor_cal = "box-7"\n')  # a good one: not this command's
    rc, _, err = cli("sensor-cal", raw, "--id", "x", "--out", out, "--home", home)
    assert "config.toml" not in err, err


def test_export_into_an_existing_file_is_refused_in_one_line(rig):
    home, _, raw, _ = rig
    before = raw.read_bytes()
    for out in (raw, raw / "sub"):
        rc, _, err = cli("export", "+1", "+1", "--out", out, "--home", home)
        one_line(rc, err)
        assert "is a file; expected a directory" in err, err
    assert raw.read_bytes() == before


def test_output_names_too_long_for_the_file_system_are_one_line(rig, tmp_path):
    home, _, _, _ = rig
    long_name = tmp_path / ("a" * 3000)
    deep = tmp_path.joinpath(*["b" * 200] * 25)  # each name fits, the whole path does not
    for argv in (("report", "junk", "--out", long_name, "--home", home),
                 ("report", "latest", "--out", long_name, "--home", home),
                 ("report", "latest", "--out", deep, "--home", home),
                 ("export", "latest", "--out", long_name, "--home", home)):
        rc, _, err = cli(*argv)
        one_line(rc, err)
        assert "too long" in err and len(err) < 300, err


def test_an_output_path_with_a_nul_character_is_one_line(rig, tmp_path):
    """The 100k hostile run found ``report X --out '\\x00'`` raising ValueError (embedded null
    byte) from the file system call; a config file's string can carry one too."""
    home, _, _, _ = rig
    for argv in (("report", "latest", "--out", "\x00", "--home", home),
                 ("report", "h#", "--out", "a\x00b.html", "--home", home),
                 ("export", "latest", "--out", tmp_path / "x\x00", "--home", home)):
        rc, _, err = cli(*argv)
        one_line(rc, err)
        assert "NUL character" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_nul_character_in_any_argument_or_config_value_is_one_line(rig, tmp_path):
    """Input paths too: ``analyze 'a\\x00b'``, ``history --home 'h\\x00'`` raised ValueError."""
    home, _, raw, _ = rig
    for argv in (("analyze", "a\x00b"), ("calibrate", "a\x00", "--out", tmp_path / "c.json"),
                 ("history", "--home", str(home) + "\x00"), ("sensors", "list", "--home", "\x00"),
                 ("analyze", raw, "--calibration", "\x00")):
        rc, _, err = cli(*argv)
        one_line(rc, err)
        assert "NUL character is not allowed" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_tilde_user_that_does_not_exist_stays_as_typed(rig, tmp_path, monkeypatch):
    """The 100k hostile run: ``report N --out '~\\x92…'`` raised RuntimeError (Could not
    determine home directory) from Path.expanduser; a shell leaves ``~nobody-xyz/`` as typed."""
    home, _, _, _ = rig
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli("report", "-79278969", "--out", "~nobody-dorsimeter-x/r.html", "--home", home)
    one_line(rc, err)
    assert "RuntimeError" not in err and "home directory" not in err, err
    rc, _, err = cli("history", "--home", "~nobody-dorsimeter-x/h")
    assert rc in (0, 2) and "Traceback" not in err, (rc, err)
