"""Disk full and a read-only data directory: one clear line, the live view goes on, and nothing
already written is lost.

Disk full is real: ``RLIMIT_FSIZE`` (with SIGXFSZ ignored) makes writes past the limit fail with
EFBIG, ``/dev/full`` fails every write with ENOSPC. Read-only: ``/sys/fs`` is a directory that
nobody may create files in, not even root (the tests may run as root, where mode bits are moot).
"""

from __future__ import annotations

import contextlib
import io
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.io.rawcsv import RawCsvWriter, read_raw_csv
from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import ShankSim
from dorsimeter.sources.sim import SimSource, rig_spec
from dorsimeter.store import Store
from dorsimeter.tui.app import MonitorApp
from dorsimeter.tui.services import StoreClient
from tests.tui.rig import wait_for

ROOT = Path(__file__).resolve().parents[2]
READ_ONLY_DIR = "/sys/fs"


def _sim_reference(n: int, batch_n: int = 100) -> np.ndarray:
    """What the rig streamed: at --speed 0 it runs 1 s (100 samples) per call (SimSource)."""
    sim = ShankSim(rate_hz=100.0, seed=0, script=rig_spec())
    return np.concatenate([sim.generate(batch_n).acc_m_s2
                           for _ in range((n + batch_n - 1) // batch_n)])[:n]


def _cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def file_size_limit(n_bytes: int):
    """Writes past ``n_bytes`` in any file of this process fail with EFBIG, as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


@pytest.mark.parametrize("with_history", [False, True])
async def test_monitor_keeps_running_when_the_disk_fills_and_keeps_what_was_written(
        tmp_path, with_history):
    raw, home = tmp_path / "raw.csv", tmp_path / "home"
    store = StoreClient(home) if with_history else None
    app = MonitorApp(SimSource(speed=0.0, batch_n=50), Pipeline(100.0), RawCsvWriter(raw),
                     store=store, record_session=with_history)
    finished = None
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.readings_count > 1000)
            with file_size_limit(raw.stat().st_size + 20_000):
                await wait_for(pilot, lambda: app.chosen.raw is None)
                if not with_history:
                    assert app.message.startswith("recording stopped:")
                    assert f"{raw}: File too large" in app.message
                else:  # the history may hit the limit first: whichever did is said
                    assert app.message.startswith(("recording stopped:", "history not saved:"))
                n_at_stop, readings_at_stop = app.samples, app.readings_count
                # the live view goes on: samples in, readings out, no error from the source
                await wait_for(pilot, lambda: app.readings_count > readings_at_stop + 2000)
                assert not app.source_ended and app.samples > n_at_stop + 2000
            app.refresh_view()
            finished = app.finish_session()
    finally:
        sid = None if finished is None else finished.result(timeout=30)
        if store is not None:
            store.close()
    rec = read_raw_csv(raw)  # every whole line written before the disk filled
    assert len(rec.t_s) >= 1000 and raw.stat().st_size <= n_at_stop * 200
    np.testing.assert_array_equal(rec.acc_m_s2, _sim_reference(len(rec.t_s)))
    if with_history:  # space again: the session is ended with what it stored
        with Store.open(home) as s:
            assert s.session(sid).ended and s.count_samples(sid) > 0


def _limit_child(n_bytes: int):
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited through exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))
    return pre


def test_record_on_a_full_disk_is_one_line_exit_1_and_keeps_every_whole_line(tmp_path):
    raw, home = tmp_path / "raw.csv", tmp_path / "home"
    home.mkdir()
    Store.open(home).close()  # the history exists already (it is not what fills up)
    p = subprocess.run([sys.executable, "-m", "dorsimeter.cli", "record", "--speed", "0",
                        "--duration", "600", "--out", str(raw), "--home", str(home)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120,
                       preexec_fn=_limit_child(400_000))
    assert p.returncode == 1, p.stderr
    # whichever file hits the full disk first (the raw CSV or the history's write-ahead log)
    # is named, on one line
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("dorsimeter: error: ")
    assert (f"{raw}: File too large" in p.stderr
            or f"{home / 'history.sqlite3'}: cannot write the history" in p.stderr), p.stderr
    assert raw.stat().st_size <= 400_000
    rec = read_raw_csv(raw)
    assert len(rec.t_s) > 1000
    np.testing.assert_array_equal(rec.acc_m_s2, _sim_reference(len(rec.t_s)))
    with Store.open(home) as s:  # what the history committed before is still there
        info = s.session("latest")
        assert 0 < s.count_samples(info.id) <= len(rec.t_s)


def test_raw_file_on_dev_full_is_one_line(tmp_path):
    rc, _, err = _cli(["record", "--speed", "0", "--duration", "5", "--out", "/dev/full",
                       "--home", str(tmp_path / "home")])
    assert rc == 1 and err == "dorsimeter: error: /dev/full: No space left on device\n"


@pytest.mark.skipif(not Path(READ_ONLY_DIR).is_dir(), reason="no sysfs here")
def test_read_only_data_directory(tmp_path):
    rc, _, err = _cli(["record", "--speed", "0", "--duration", "5",
                       "--out", str(tmp_path / "raw.csv"), "--home", READ_ONLY_DIR])
    assert rc == 1 and err.count("\n") == 1
    assert f"{READ_ONLY_DIR}/history.sqlite3" in err and ("denied" in err or "not permitted" in err)
    rc, _, err = _cli(["sensors", "add", "C0:D0:57:00:00:A1", "--home", READ_ONLY_DIR])
    assert rc == 1 and err.count("\n") == 1 and READ_ONLY_DIR in err


async def test_monitor_with_a_read_only_data_directory_still_shows_the_live_view(tmp_path):
    store = StoreClient(READ_ONLY_DIR)
    raw = tmp_path / "raw.csv"
    app = MonitorApp(SimSource(speed=0.0, batch_n=50), Pipeline(100.0), RawCsvWriter(raw),
                     store=store)
    finished = None
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.message.startswith("history not saved:"))
            assert "history.sqlite3" in app.message
            await wait_for(pilot, lambda: app.readings_count > 1500)  # calibrated, measuring
            assert app.error.startswith("history not saved:")
            assert not app.source_ended
            finished = app.finish_session()
    finally:
        assert finished is None or finished.result(timeout=30) is None
        store.close()
    # the raw recording went on regardless
    assert len(read_raw_csv(raw).t_s) >= app.samples - 5
