"""Nothing recorded is overwritten (issue 18): the history database, a command's own input and
an earlier session's raw file are refused as outputs; an export never joins another session's
IMU data; calibrations and exports are written atomically, owner-only; the data directory is
0700 even when it existed; an interrupted session whose readings never reached the store is
re-analysed from its raw file by ``recover``."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import pytest

from dorsimeter.cli import main
from dorsimeter.store import Store


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def record(home, raw, *extra, duration=25, seed=1) -> int:
    rc, out, err = cli("record", "--speed", "0", "--duration", duration, "--seed", seed,
                       "--out", raw, "--home", home, *extra)
    assert rc == 0, err
    return int(re.search(r"^stored session (\d+)$", out, re.M).group(1))


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rig")
    home = tmp / "home"
    raw = tmp / "one.csv"
    sid = record(home, raw)
    return home, tmp, raw, sid


def test_record_refuses_the_history_database_even_with_force(rig):
    home, tmp, _, _ = rig
    db = home / "history.sqlite3"
    before = digest(db)
    for extra in ((), ("--force",)):
        rc, _, err = cli("record", "--speed", "0", "--duration", "5", "--out", db,
                         "--home", home, *extra)
        assert rc == 2 and err.count("\n") == 1 and "never overwritten" in err, err
    assert digest(db) == before
    with Store.open(home) as store:
        assert len(store.sessions()) >= 1  # the history is still there


def test_analyze_and_calibrate_refuse_to_write_over_their_raw_input(rig):
    home, tmp, raw, _ = rig
    before = digest(raw)
    for argv in (("analyze", raw, "--out", raw), ("calibrate", raw, "--out", raw),
                 ("sensor-cal", raw, "--id", "x", "--out", raw, "--home", home)):
        rc, _, err = cli(*argv)
        assert rc == 2 and err.count("\n") == 1 and "this command's input" in err, (argv, err)
    assert digest(raw) == before
    # any existing raw recording is refused as a readings or calibration output too
    rc, _, err = cli("analyze", raw, "--out", tmp / "two.csv")  # a new file: fine
    assert rc == 0, err
    other = tmp / "other-raw.csv"
    other.write_bytes(raw.read_bytes())
    rc, _, err = cli("calibrate", raw, "--out", other)
    assert rc == 2 and "is a raw recording" in err and digest(other) == before


def test_reusing_a_record_path_is_refused_and_force_never_mixes_sessions(rig, capsys):
    home, tmp, _, _ = rig
    raw = tmp / "reused.csv"
    first = record(home, raw, seed=4)
    before = digest(raw)
    rc, _, err = cli("record", "--speed", "0", "--duration", "5", "--out", raw, "--home", home)
    assert rc == 2 and "never overwrites a recording" in err and digest(raw) == before
    # --force replaces the file; the first session's export must then not join the new
    # session's IMU data to its angles: the raw columns stay empty, with a one-line note
    second = record(home, raw, "--force", seed=5)
    assert digest(raw) != before
    out = tmp / "exp"
    rc, _, err = cli("export", first, second, "--out", out, "--home", home)
    assert rc == 0, err
    notes = [line for line in err.splitlines() if "raw columns left empty" in line]
    assert len(notes) == 1 and f"session {first} recorded" in notes[0], err
    for sid, joined in ((first, False), (second, True)):
        with open(out / f"dorsimeter-session-{sid}-samples.csv", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        filled = sum(1 for r in rows if r["acc_x_m_s2"])
        assert (filled == len(rows)) if joined else filled == 0, (sid, filled, len(rows))
    # every other format checks the raw file's identity too (Parquet's typed columns: NaN)
    import pyarrow.parquet as pq

    for sid, joined in ((first, False), (second, True)):
        rc, _, err = cli("export", sid, "--format", "parquet", "--out", out / "pq", "--home", home)
        assert rc == 0, err
        notes = [line for line in err.splitlines() if "raw columns left empty" in line]
        assert len(notes) == (0 if joined else 1), err
        acc = pq.read_table(out / "pq" / f"dorsimeter-session-{sid}-samples.parquet"
                            ).column("acc_x_m_s2").to_pylist()
        filled = sum(1 for v in acc if v is not None and v == v)
        assert (filled == len(acc)) if joined else filled == 0, (sid, filled, len(acc))


def test_calibration_and_exports_are_atomic_and_owner_only(rig):
    home, tmp, raw, sid = rig
    old = os.umask(0o022)
    try:
        cal = tmp / "cal.json"
        rc, _, err = cli("calibrate", raw, "--out", cal)
        assert rc == 0, err
        assert stat.S_IMODE(cal.stat().st_mode) == 0o600
        out = tmp / "exports"
        assert cli("export", sid, "--out", out, "--home", home)[0] == 0
        rc, _, err = cli("report", sid, "--out", tmp / "r.html", "--home", home)
        assert rc == 0, err
        for p in [*out.iterdir(), tmp / "r.html"]:
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        assert not list(tmp.glob(".*.tmp")) and not list(out.glob(".*.tmp"))  # none left
    finally:
        os.umask(old)


def test_a_failed_calibration_write_leaves_the_old_file_whole(rig, monkeypatch):
    from dorsimeter import paths

    _, tmp, raw, _ = rig
    cal = tmp / "keep.json"
    assert cli("calibrate", raw, "--out", cal)[0] == 0
    before = digest(cal)

    def full(fd):  # the disk fills at the last step
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(paths.os, "fsync", full)
    rc, _, err = cli("calibrate", raw, "--out", cal, "--force")
    assert rc == 1 and "No space left" in err
    assert digest(cal) == before and not list(tmp.glob(".keep.json.*"))


def test_the_data_directory_is_owner_only_even_when_it_existed(tmp_path, rig):
    _, _, raw, _ = rig
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    record(home, tmp_path / "r.csv", duration=5)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    # first created by sensor-cal (its sensors/ directory under it)
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "a" / "fresh-home"
        rc, _, err = cli("sensor-cal", raw, "--id", "box-1", "--home", fresh)
    finally:
        os.umask(old)
    assert rc in (0, 2), err  # a wall-test file may not hold six poses: the directory matters
    for d in (fresh, fresh / "sensors"):
        if d.exists():
            assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert fresh.exists() or rc == 2


def test_recover_reanalyses_a_raw_file_whose_readings_never_reached_the_store(tmp_path):
    """Killed before the calibration completes, the session has no readings in the store but
    the raw CSV holds every sample: recover runs it through the pipeline."""
    home, raw = tmp_path / "home", tmp_path / "killed.csv"
    env = {**os.environ, "DORSIMETER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dorsimeter.cli", "record", "--speed", "1",
                             "--duration", "60", "--out", str(raw)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # 4 s of device time in the raw file
            if raw.exists() and raw.read_text().count("\n") > 400:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the recorder wrote nothing")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    with Store.open(home) as store:
        (s,) = store.sessions()
        assert store.count_samples(s.id) == 0  # the pipeline held them for the calibration
    rc, out, err = cli("recover", "--home", home)
    assert rc == 0, err
    with Store.open(home) as store:
        n = store.count_samples(s.id)
        assert store.session(s.id).ended
    rows = raw.read_text().count("\n") - 1
    # either re-analysed (every raw row a reading) or said why not (too short to calibrate)
    if n:
        assert abs(n - rows) <= 1 and f"re-analysed {n} readings from the raw CSV" in out, out
    else:
        assert "could not be re-analysed" in out, out
    assert "Traceback" not in err


def test_recover_re_analysis_stores_the_readings_of_a_long_enough_raw(tmp_path, rig):
    """A session row with no readings and a complete raw CSV (the store was not reachable):
    recover stores every reading and scores its trials, and history then agrees."""
    _, _, raw, _ = rig
    home = tmp_path / "home"
    with Store.open(home) as store:
        sid = store.start_session("record", "Ana", "sim", "sim", raw)
        store.close()  # the process "died": nothing stored but the row
    rc, out, err = cli("recover", "--home", home)
    assert rc == 0, err
    rows = raw.read_text().count("\n") - 1
    assert f"re-analysed {rows} readings from the raw CSV" in out, out
    with Store.open(home) as store:
        assert store.count_samples(sid) == rows and store.trials(sid)
        trials = store.trials(sid)
    rc, hist, _ = cli("history", "Ana", "--home", home)
    assert rc == 0 and f"{len([t for t in trials if t.counts])}" in hist
    assert json.loads(json.dumps(out))  # printable
