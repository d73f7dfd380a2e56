"""scripts/clinic_services.py as docs/clinic.md runs it: ``start`` leaves both servers running
with owner-only secrets and records their pids; ``stop`` ends exactly those."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.clinic.conftest import ROOT, _missing, wait_for


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


def test_start_and_stop_from_the_command_line():
    if _missing():
        pytest.skip(_missing())
    tmp = Path(tempfile.mkdtemp(prefix="dorsimeter-clinic-cli-"))
    os.chmod(tmp, 0o711)
    script = [sys.executable, str(ROOT / "scripts" / "clinic_services.py")]
    pids: list[int] = []
    try:
        out = subprocess.run([*script, "start", str(tmp / "s"), "--clinic", "physio1",
                              "--rigs", "room1,room2"], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        state = json.loads((tmp / "s" / "clinic.json").read_text())
        pids = [state["mqtt"]["pid"], state["postgres"]["pid"]]
        assert all(_alive(p) for p in pids)
        for port in (state["mqtt"]["port"], state["postgres"]["port"]):
            with socket.create_connection(("127.0.0.1", port), timeout=30):
                pass
        secrets = [*state["mqtt"]["password_files"].values(),
                   *state["postgres"]["dsn_files"].values(), tmp / "s" / "clinic.json"]
        assert set(state["mqtt"]["password_files"]) == {"room1", "room2", "ingest", "team"}
        for f in secrets:
            assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
        acl = (tmp / "s" / "mosquitto" / "acl").read_text()
        assert "user room1\ntopic readwrite dorsimeter/physio1/room1/#" in acl
        again = subprocess.run([*script, "start", str(tmp / "s"), "--clinic", "physio1",
                                "--rigs", "room1"], capture_output=True, text=True, timeout=60)
        assert again.returncode == 2 and "already set up" in again.stderr
        assert subprocess.run([*script, "stop", str(tmp / "s")], timeout=120).returncode == 0
        wait_for(lambda: not any(_alive(p) for p in pids), "both servers to exit")
    finally:
        for p in pids:  # only the pids this test's start recorded
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
