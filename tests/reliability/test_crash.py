"""The recorder killed, interrupted or hung up on, as a real ``dorsimeter record`` process.

SIGKILL: everything flushed before the kill is readable (raw CSV and history), the next start
prints a one-line notice, and ``dorsimeter recover`` keeps the session. SIGINT / SIGHUP /
SIGTERM: the raw CSV ends on a whole line, the session is stored and ended, the exit code is
128 + the signal number.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.sim import ShankSim
from dorsimeter.sources.sim import rig_spec
from dorsimeter.store import Store
from dorsimeter.store.locks import interrupted_ids, startup_notice
from dorsimeter.store.summary import summarize
from tests.conftest import end_tmux_server, tmux_socket

ROOT = Path(__file__).resolve().parents[2]
DORSIMETER = [sys.executable, "-m", "dorsimeter.cli"]


def _start_record(tmp_path: Path, home: Path) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "raw.csv"
    p = subprocess.Popen([*DORSIMETER, "record", "--sensor", "sim", "--speed", "10",
                          "--duration", "600", "--out", str(out), "--home", str(home)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                         start_new_session=True)
    return p, out


def _wait_rows(p: subprocess.Popen, out: Path, rows: int, timeout_s: float = 40.0) -> int:
    """Wait until the raw CSV has ``rows`` data lines (written and flushed by the recorder)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        assert p.poll() is None, p.communicate()
        if out.exists():
            n = out.read_bytes().count(b"\n") - 1
            if n >= rows:
                return n
        time.sleep(0.05)
    raise AssertionError(f"the recorder wrote fewer than {rows} rows in {timeout_s} s")


def _sim_reference(n: int) -> np.ndarray:
    """The first ``n`` samples the simulated rig streams (same seed, same 5-sample batches)."""
    sim = ShankSim(rate_hz=100.0, seed=0, script=rig_spec())
    batches = [sim.generate(5) for _ in range((n + 4) // 5)]
    return np.concatenate([b.acc_m_s2 for b in batches])[:n]


def test_sigkill_loses_nothing_flushed_and_the_next_start_offers_recovery(tmp_path, capsys):
    home = tmp_path / "home"
    p, out = _start_record(tmp_path, home)
    try:
        seen = _wait_rows(p, out, 1800)  # 18 s of device time: calibrated, samples stored
        # while it records, the session is not "interrupted" (its lock is held)
        assert interrupted_ids(home / "history.sqlite3") == []
        assert startup_notice(home) is None
        with Store.open(home) as store:
            stored_before = store.count_samples(1)
        os.kill(p.pid, signal.SIGKILL)
        assert p.wait(timeout=10) == -signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
    rec = read_raw_csv(out)  # a line cut by the kill is dropped, everything else is there
    assert len(rec.t_s) >= seen
    np.testing.assert_array_equal(rec.acc_m_s2, _sim_reference(len(rec.t_s)))  # bit-exact
    np.testing.assert_allclose(np.diff(rec.t_s), 0.01, atol=1e-9)
    with Store.open(home) as store:
        info = store.session(1)
        assert not info.ended
        stored = store.count_samples(1)
        assert stored >= stored_before > 0
    assert [i for i, _, _ in interrupted_ids(home / "history.sqlite3")] == [1]
    # the next start of any command says so, in one line
    assert main(["history", "--home", str(home)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "session 1 did not end" in err
    assert "dorsimeter recover" in err
    assert main(["recover", "--home", str(home)]) == 0
    got = capsys.readouterr()
    assert f"recovered session 1: {stored} readings" in got.out, got
    assert f"{len(rec.t_s)} rows readable" in got.out and got.err == ""
    with Store.open(home) as store:
        info = store.session(1)
        assert info.ended and "recovered" in (info.notes or "")
        assert store.count_samples(1) == stored  # nothing lost by recovering
        trials = store.trials(1)
        assert trials and all(np.isfinite(t.angle_deg) for t in trials)
    # the trials stored while recording are counted as history counts them (it said "0 trials
    # scored" where history showed 3/3)
    s = summarize(trials)
    assert (f"scored/trials left {s['left'].n_scored}/{s['left'].n_trials}, right "
            f"{s['right'].n_scored}/{s['right'].n_trials}") in got.out, got.out
    assert startup_notice(home) is None  # offered once, then done


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGHUP, 129),
                                      (signal.SIGTERM, 143)])
def test_interrupt_or_hangup_flushes_closes_and_ends_the_session(tmp_path, sig, code):
    home = tmp_path / "home"
    p, out = _start_record(tmp_path, home)
    try:
        _wait_rows(p, out, 1500)
        os.killpg(p.pid, sig)  # as the terminal does: to the whole foreground group
        stdout, stderr = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == code, stderr
    assert stderr.count("\n") == 1 and f"stopped by {sig.name}" in stderr
    n = int(stderr.split("wrote ")[1].split(" samples")[0])
    data = out.read_bytes()
    assert data.endswith(b"\n")  # closed on a whole line
    rec = read_raw_csv(out)
    assert not rec.dropped_tail and len(rec.t_s) == n >= 1500
    with Store.open(home) as store:
        info = store.session(1)
        assert info.ended and info.end_utc is not None
        assert 0 < store.count_samples(1) <= n
    assert not list((home / "running").glob("*.lock"))  # the liveness lock is gone
    assert startup_notice(home) is None


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_closing_the_terminal_of_the_monitor_ends_its_session(tmp_path):
    """The real ``dorsimeter monitor`` in a tmux pane; killing the pane hangs up its terminal."""
    home, raw, pidfile = tmp_path / "home", tmp_path / "raw.csv", tmp_path / "pid"
    sock = tmux_socket("rel")
    cmd = (f"echo $$ > {pidfile}; exec {sys.executable} -m dorsimeter.cli monitor --sensor sim "
           f"--speed 5 --record {raw} --home {home}")
    subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-s", "m", "-x", "100", "-y", "30",
                    "-c", str(ROOT), "sh", "-c", cmd], check=True, timeout=30)
    try:
        t0 = time.monotonic()
        while not (raw.exists() and raw.read_bytes().count(b"\n") > 1500):
            assert time.monotonic() - t0 < 40, "the monitor recorded nothing"
            time.sleep(0.1)
        pid = int(pidfile.read_text())
        subprocess.run(["tmux", "-L", sock, "kill-session", "-t", "m"], timeout=30)
        t0 = time.monotonic()
        while Path(f"/proc/{pid}").exists():
            assert time.monotonic() - t0 < 30, "the monitor did not exit after the hang-up"
            time.sleep(0.1)
    finally:
        end_tmux_server(sock)  # and the pane's process group, if the hang-up did not end it
    assert raw.read_bytes().endswith(b"\n")  # closed on a whole line
    rec = read_raw_csv(raw)
    assert not rec.dropped_tail and len(rec.t_s) > 1500
    with Store.open(home) as store:
        info = store.session(1)
        assert info.ended and 0 < store.count_samples(1) <= len(rec.t_s)
    assert startup_notice(home) is None
