"""Run the real `dorsimeter monitor` in a pseudo-terminal until its history holds N samples,
then quit with `q` like a user; for tests that compare what it stored with a reference."""

from __future__ import annotations

import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def run_monitor_in_pty(args: list[str], home: Path, n_samples: int, timeout_s: float = 60.0,
                       env: dict[str, str] | None = None) -> tuple[int | None, str, bool]:
    """(exit code, terminal output, whether `q` was sent) of ``dorsimeter monitor ARGS
    --home HOME``, quit once ``n_samples`` samples are stored (or killed at the timeout)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(
        [sys.executable, "-m", "dorsimeter.cli", "monitor", *args, "--home", str(home)],
        stdin=slave, stdout=slave, stderr=slave, close_fds=True,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30",
             **(env or {})})
    os.close(slave)
    out, sent, code, deadline = b"", False, None, time.monotonic() + timeout_s
    db = home / "history.sqlite3"
    try:
        while time.monotonic() < deadline and p.poll() is None:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
            if not sent and db.exists():
                try:
                    n = sqlite3.connect(db).execute("SELECT COUNT(*) FROM samples").fetchone()[0]
                except sqlite3.OperationalError:
                    n = 0
                if n >= n_samples:  # everything is in: quit like a user
                    os.write(master, b"q")
                    sent = True
        code = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    return code, out.decode(errors="replace"), sent
