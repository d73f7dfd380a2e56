"""`record`'s status line (issue 12 item 12): on a terminal one line with the calibration
progress, then the live angle, and the time left; nothing of it when stdout is a pipe."""

import os
import pty
import re
import select
import subprocess
import sys
import time


def _record(tmp_path, tty: bool) -> str:
    argv = [sys.executable, "-m", "dorsimeter.cli", "record", "--sensor", "sim", "--speed", "8",
            "--duration", "20", "--out", str(tmp_path / f"r{tty}.csv"), "--home",
            str(tmp_path / "home")]
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    if not tty:
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env).stdout
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True, env=env)
    os.close(slave)
    out, deadline = b"", time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal: all read
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    return out.decode(errors="replace")


def test_status_line_on_a_terminal_and_quiet_in_a_pipe(tmp_path):
    seen = _record(tmp_path, tty=True)
    assert "recording: left calibrating: stand tall and still (" in seen
    assert "recording: left calibrating: drive the knee forward" in seen
    angles = re.findall(r"recording: left\s+(-?\d+\.\d)° · (\d+) s left", seen)
    assert angles and max(float(a) for a, _ in angles) > 10.0  # the live angle, knee forward
    lefts = [int(s) for _, s in angles]
    assert lefts == sorted(lefts, reverse=True) and min(lefts) <= 5  # the time left counts down
    assert re.search(r"\(([\d.]+) s of ([\d.]+) s\)", seen)
    for got, need in re.findall(r"\(([\d.]+) s of ([\d.]+) s\)", seen):
        assert float(got) <= float(need)  # never "3.0 s of 1.5 s"
    assert "stored session" in seen
    piped = _record(tmp_path, tty=False)
    assert "recording:" not in piped and "\x1b" not in piped
    assert piped.startswith("wrote 2000 samples")
