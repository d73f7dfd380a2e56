"""One writer process and one reader process on the same history file; a killed recorder."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from dorsimeter.store import Store

WRITER = """
import os, sys, time
import numpy as np
from dorsimeter.store import Store
from dorsimeter.types import Readings
store = Store.open()
while not os.path.exists(sys.argv[2]):  # the reader is up and reading
    time.sleep(0.01)
sid = store.start_session("record", athlete="W")
print(sid, flush=True)
for k in range(int(sys.argv[1])):
    time.sleep(0.002)  # a live source's pace, roughly
    t = k + np.arange(50) / 50
    store.add_samples(sid, Readings(t, np.full(50, float(k)), np.zeros(50),
                                    np.array(["left"] * 50, dtype=object)))
    store.add_trial(sid, "left", float(k), True, "shank_imu", float(k), k + 0.98, rep=k + 1)
store.end_session(sid)
"""

READER = """
import json, pathlib, sys
from dorsimeter.store import Store
store = Store.open()
seen = []
pathlib.Path(sys.argv[1]).touch()
while True:
    with store.snapshot():
        s = store.sessions("W")
        if not s:
            continue
        info = s[-1]
        samples = store.samples(info.id)
        trials = store.trials(info.id)
    seen.append([len(samples), len(trials), info.ended,
                 float(samples.tibia_angle_deg[-1]) if len(samples) else -1.0])
    if info.ended:
        break
print(json.dumps(seen))
"""


def test_a_reader_process_sees_whole_transactions_while_a_writer_process_appends(tmp_path):
    env = {**os.environ, "DORSIMETER_HOME": str(tmp_path)}
    Store.open(tmp_path).close()  # created and migrated before both start
    n = 300
    ready = tmp_path / "reader-ready"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(ready)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(n), str(ready)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    w_out, w_err = writer.communicate(timeout=120)
    r_out, r_err = reader.communicate(timeout=120)
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err
    seen = json.loads(r_out)
    counts = [c for c, _, _, _ in seen]
    assert counts == sorted(counts)  # never goes backwards
    assert all(c % 50 == 0 for c in counts)  # only whole batches are ever visible
    # a batch's samples and its trial commit separately: in one snapshot the trials are the
    # batches' or one fewer, and the last sample is the last batch's value
    assert all(last == c // 50 - 1 for c, _, _, last in seen if c)
    assert all(c // 50 - 1 <= t <= c // 50 for c, t, _, _ in seen)
    assert len({c for c in counts if 0 < c < 50 * n}) >= 3, "reader never overlapped the writer"
    assert seen[-1][:3] == [50 * n, n, True]


def test_a_killed_record_leaves_a_visible_unfinished_session_with_its_samples(tmp_path):
    env = {**os.environ, "DORSIMETER_HOME": str(tmp_path)}
    rec = subprocess.Popen(
        [sys.executable, "-m", "dorsimeter.cli", "record", "--speed", "4", "--duration", "120",
         "--out", str(tmp_path / "raw.csv"), "--athlete", "K"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = tmp_path / "history.sqlite3"
    deadline = time.monotonic() + 60
    count = 0
    try:
        while time.monotonic() < deadline and count < 500:
            time.sleep(0.2)
            if db.exists():
                try:
                    count = sqlite3.connect(db).execute("SELECT COUNT(*) FROM samples"
                                                        ).fetchone()[0]
                except sqlite3.OperationalError:
                    count = 0  # schema not there yet
    finally:
        rec.send_signal(signal.SIGKILL)
        rec.communicate()
    assert count >= 500
    with Store.open(tmp_path) as store:
        info = store.session("latest")
        assert info.ended is False and info.end_utc is None and info.athlete == "K"
        assert store.count_samples(info.id) >= count
    out = subprocess.run([sys.executable, "-m", "dorsimeter.cli", "history", "K"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert f"{info.id:>6}*" in out and "not ended" in out


def test_processes_opening_a_new_history_at_once_all_get_one_migrated_file(tmp_path):
    env = {**os.environ, "DORSIMETER_HOME": str(tmp_path / "fresh")}
    code = ("import sys; from dorsimeter.store import Store; s = Store.open(); "
            "print(s.start_session('record', athlete=sys.argv[1]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, f"P{i}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert sorted(int(o) for o, _ in outs) == [1, 2, 3, 4]
    db = sqlite3.connect(tmp_path / "fresh" / "history.sqlite3")
    from dorsimeter.store import schema

    assert db.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sorted(r[0] for r in db.execute("SELECT name FROM athletes")) == [
        "P0", "P1", "P2", "P3"]
