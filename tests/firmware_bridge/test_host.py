"""``python -m firmware_bridge --pty`` as a process: frames on a pty, commands answered over it,
SIGUSR1 unplugs the port and it comes back behind the same path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import serial

from dorsimeter.wire import frames as F

ROOT = Path(__file__).resolve().parents[2]


def _read_until(port: serial.Serial, dec: F.FrameDecoder, done, timeout_s: float = 30.0) -> int:
    """Samples decoded until ``done(samples so far)`` (or the deadline: a busy machine may
    starve the bridge, so no fixed reading time)."""
    n, deadline = 0, time.monotonic() + timeout_s
    while not done(n) and time.monotonic() < deadline:
        n += sum(len(b) for b in dec.feed(port.read(max(1, port.in_waiting))))
    return n


def test_pty_process_streams_answers_and_replugs(tmp_path):
    link = tmp_path / "ttyNODE"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "firmware_bridge", "--pty", "--link", str(link),
                             "--rate", "200", "--speed", "4", "--replug-after", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=env)
    try:
        assert proc.stdout.readline().strip() == str(link)
        port = serial.Serial(str(link), timeout=0.05)
        dec = F.FrameDecoder()
        assert _read_until(port, dec, lambda n: n > 200) > 200
        port.write(F.encode_command(42, F.CMD_STATUS) + F.encode_set_rate(43, 100))
        msgs: list = []

        def answered(_n: int) -> bool:
            msgs.extend(dec.pop_messages())
            return ({m.seq for m in msgs if m.mtype == F.T_RESPONSE} >= {42, 43}
                    and any(m.mtype == F.T_STATUS for m in msgs))

        _read_until(port, dec, answered)
        resp = {m.seq: m.status for m in msgs if m.mtype == F.T_RESPONSE}
        assert resp == {42: F.ST_OK, 43: F.ST_OK}
        assert [m.node_status().rate_hz for m in msgs if m.mtype == F.T_STATUS][-1] == 200
        lost_before = dec.stats.lost
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 30
        failed = False
        while time.monotonic() < deadline and not failed:
            try:
                port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError):  # in_waiting's ioctl: EIO on a closed pty
                failed = True
        assert failed, "reading an unplugged port must fail"
        port.close()
        while not link.exists() and time.monotonic() < deadline + 3:
            time.sleep(0.05)
        port = serial.Serial(str(link), timeout=0.05)
        assert _read_until(port, dec, lambda n: n > 100) > 100
        assert dec.stats.lost > lost_before  # frames sent while unplugged never arrived
        assert dec.stats.crc_errors == 0 and dec.stats.restarts == 0
        port.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "frames dropped" in proc.stderr.read()
