"""Serial end to end: the firmware runs on this host writing real frames into a pseudo-terminal,
real pyserial reads it through SerialSource, and the pipeline's tibia angles match the simulator.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dorsimeter.errors import DeviceError
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import SensorErrors, ShankSim
from dorsimeter.sources import SensorSpec, open_source
from dorsimeter.sources.registry import kind_for_bytes
from dorsimeter.sources.serial import SerialSource
from firmware_bridge import wire
from firmware_bridge.host import HostRunner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner_factory():
    runners = []

    def make(**kw) -> HostRunner:
        r = HostRunner(**kw)
        r.imu.keep_truth = True
        runners.append(r.start())
        time.sleep(0.05)
        return r

    yield make
    for r in runners:
        r.stop()


def _truth(runner: HostRunner, offset_s: float = 0.0):
    t = np.concatenate([t for t, _ in runner.imu.truth]) + offset_s
    a = np.concatenate([a for _, a in runner.imu.truth])
    return t, a


async def _collect(src, seconds, on_batch=None):
    out = []
    n = 0
    async for b in src:
        out.append(b)
        n += len(b)
        if on_batch is not None:
            on_batch(n)
        if b.t_s[-1] - out[0].t_s[0] >= seconds:
            break
    await src.close()
    return out


@pytest.mark.parametrize("max_payload,encoding", [(256, None), (20, wire.ENC_P12)])
def test_firmware_to_pipeline_matches_truth_across_clock_wrap(runner_factory, max_payload,
                                                              encoding):
    offset_us = (1 << 32) - 12_000_000  # the device clock wraps 12 s into the run
    r = runner_factory(rate_hz=100, speed=20.0, clock_offset_us=offset_us,
                       max_payload=max_payload, encoding=encoding)
    src = SerialSource(r.path)
    assert (src.kind.key, src.rate_hz) == ("node", 100.0)
    batches = asyncio.run(_collect(src, 25.0))
    t = np.concatenate([b.t_s for b in batches])
    assert np.all(np.diff(t) > 0) and t[-1] > 2**32 * 1e-6  # unwrapped through the wrap
    assert np.allclose(np.diff(t), 0.01, atol=2e-6)
    pipe = Pipeline(src.rate_hz)
    readings = [pipe.push(b)[0] for b in batches]
    rt = np.concatenate([x.t_s for x in readings])
    ang = np.concatenate([x.tibia_angle_deg for x in readings])
    assert "left" in pipe.calibrations and len(rt) > 1000
    tt, ta = _truth(r, offset_us * 1e-6)
    idx = np.searchsorted(tt, rt - 1e-7)
    assert np.allclose(tt[idx], rt, atol=1e-6)
    rmse = float(np.sqrt(np.mean((ang - ta[idx]) ** 2)))
    assert rmse < 1.0, rmse
    assert src.link.loss == 0.0


def test_unplug_replug_is_survived_and_the_gap_marked(runner_factory, tmp_path):
    link = str(tmp_path / "ttyNODE")
    r = runner_factory(rate_hz=100, speed=10.0, link_path=link)
    src = SerialSource(link, give_up_s=10)
    unplugged = []

    def maybe_unplug(n):
        if n > 300 and not unplugged:
            unplugged.append(r.imu.sim.t_s)
            r.unplug(replug_after_s=0.6)

    batches = asyncio.run(_collect(src, 12.0, maybe_unplug))
    t = np.concatenate([b.t_s for b in batches])
    assert len(src.gaps) == 1 and src.link.reconnects == 1
    gap = src.gaps[0]
    assert gap.down_s >= 0.5
    jump = np.flatnonzero(np.diff(t) > 0.015)
    assert len(jump) == 1  # the only hole in the data is the outage
    assert t[jump[0]] == gap.t_before_s and t[jump[0] + 1] == gap.t_after_s
    # every sample the node took during the outage is accounted for, exactly
    assert gap.lost_samples == round((gap.t_after_s - gap.t_before_s) * 100) - 1
    assert gap.lost_samples >= 0.5 * 10 * 100 * 0.8
    assert src.link.gaps == 1


def test_port_gone_for_good_raises_device_error(runner_factory, tmp_path):
    link = str(tmp_path / "ttyNODE")
    r = runner_factory(rate_hz=50, speed=2.0, link_path=link)
    src = SerialSource(link, give_up_s=0.5)

    async def go():
        n = 0
        async for b in src:
            n += len(b)
            if n > 50 and r.link.plugged:
                r.unplug()  # never replugged

    with pytest.raises(DeviceError, match="gone for more than"):
        asyncio.run(go())


def test_witmotion_uart_detected_and_decoded_to_si(runner_factory):
    r = runner_factory(rate_hz=50, speed=1.0, protocol="witmotion-uart")  # paced by the wall
    src = SerialSource(r.path)
    assert (src.kind.key, src.rate_hz) == ("witmotion", 50.0)
    batches = asyncio.run(_collect(src, 1.5))
    acc = np.concatenate([b.acc_m_s2 for b in batches])
    quat = np.concatenate([b.quat for b in batches])
    # still stance at the start: gravity in m/s², and the on-chip orientation agrees with it
    assert np.allclose(np.linalg.norm(acc[:50], axis=1), 9.81, atol=0.1)
    from scipy.spatial.transform import Rotation

    up = Rotation.from_quat(quat[:50], scalar_first=True).inv().apply([0, 0, 9.81])
    assert np.abs(up - acc[:50]).max() < 0.15
    t = np.concatenate([b.t_s for b in batches])
    assert np.allclose(np.diff(t), 0.02)


def test_witmotion_uart_commands_are_paced_as_the_vendor_paces_them(tmp_path):
    """Unlock, rate, save over a real pty, each 100 ms (``witmotion.COMMAND_GAP_S``, the
    vendor SDK's pause) after the one before; the arrival times are read on the far side."""
    from dorsimeter.sources.registry import WitMotionKind
    from dorsimeter.wire import witmotion as W

    master, slave = os.openpty()
    got: list[tuple[float, bytes]] = []
    stop = threading.Event()

    def read_far_side():
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                got.append((time.monotonic(), os.read(master, 64)))

    reader = threading.Thread(target=read_far_side, daemon=True)
    reader.start()
    try:
        src = SerialSource(os.ttyname(slave), rate_hz=100, kind=WitMotionKind())
        src.drop_port()
        deadline = time.monotonic() + 5
        while sum(len(d) for _, d in got) < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        reader.join(2)
        os.close(master)
        os.close(slave)
    assert b"".join(d for _, d in got) == b"".join(W.rate_commands(100))
    # each command's first byte arrived 100 ms after the previous command's (less 20 ms for
    # the reader's own delays on a loaded machine; the old pacing was 20 ms)
    starts, pos = [], 0
    for t, d in got:
        starts += [t for k in range(len(d)) if (pos + k) % 5 == 0]
        pos += len(d)
    assert len(starts) == 3
    assert np.all(np.diff(starts) >= W.COMMAND_GAP_S - 0.02), np.diff(starts)


def test_the_family_is_recognised_from_the_bytes():
    from dorsimeter.wire import frames as F
    from dorsimeter.wire import witmotion as W

    node = b"".join(F.encode_data(i, i * 10_000, [[0, 0, 9.81]], [[0, 0, 0]]) for i in range(4))
    wit = b"".join(W.encode_uart_sample([0, 0, 1], [0, 0, 0], [0, 0, 0]) for _ in range(4))
    assert kind_for_bytes(b"\x00junk" + node).key == "node"
    assert kind_for_bytes(wit[5:]).key == "witmotion"
    assert kind_for_bytes(os.urandom(64)) is None


def test_open_source_serial_errors():
    with pytest.raises(DeviceError, match="cannot open"):
        open_source(SensorSpec.parse("serial:/nonexistent/ttyX"))
    from dorsimeter.errors import DorsimeterError

    with pytest.raises(DorsimeterError, match="not a rate"):
        SensorSpec.parse("serial:/dev/null@fast")


def test_cli_record_from_the_firmware_on_a_pty(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    fw = subprocess.Popen([sys.executable, "-m", "firmware_bridge", "--pty", "--speed", "10",
                           "--rate", "100", "--ideal"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        path = fw.stdout.readline().strip()
        assert path.startswith("/dev/")
        out = tmp_path / "raw.csv"
        rec = subprocess.run([str(ROOT / ".venv/bin/dorsimeter"), "record", "--sensor",
                              f"serial:{path}", "--duration", "5", "--out", str(out)],
                             capture_output=True, text=True, timeout=60, env=env)
        assert rec.returncode == 0, rec.stderr
        assert "wrote 500 samples" in rec.stdout
        raw = read_raw_csv(out)
        assert len(raw.t_s) == 500 and raw.rate_hz == 100.0
        assert np.allclose(np.diff(raw.t_s), 0.01, atol=1e-6)
        # SI units, and the very values the simulated IMU produced (within the wire's LSB/2)
        idx = np.round(raw.t_s * 100).astype(int)
        ref = ShankSim(rate_hz=100.0, seed=0, errors=SensorErrors.none()).generate(
            int(idx[-1]) + 1)
        assert np.abs(raw.acc_m_s2 - ref.acc_m_s2[idx]).max() <= 0.00125 + 1e-9
        assert np.abs(raw.gyr_rad_s - ref.gyr_rad_s[idx]).max() <= 0.0005 + 1e-9
    finally:
        fw.terminate()
        fw.wait(timeout=10)


def test_cli_bad_serial_port_is_one_line_exit_1(tmp_path, capsys):
    from dorsimeter.cli import main

    code = main(["record", "--sensor", "serial:/nonexistent/ttyX", "--duration", "1", "--out",
                 str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "serial port /nonexistent/ttyX: cannot open" in err


def test_record_calibrate_then_record_with_the_calibration(runner_factory, tmp_path, capsys):
    """The serial flows through the CLI: record a session, calibrate it, use the calibration."""
    from dorsimeter.cli import main

    # the firmware streams from its start at 10× real time and record's first import of the
    # numerics takes seconds (tens of device seconds): import them first, or the recording
    # begins after the stance and calibration drives (it did when this test ran first)
    importlib.import_module("dorsimeter.session.live")
    r = runner_factory(rate_hz=100, speed=10.0)
    raw, cal = tmp_path / "raw.csv", tmp_path / "cal.json"
    assert main(["record", "--sensor", f"serial:{r.path}", "--duration", "20", "--out",
                 str(raw)]) == 0
    assert main(["calibrate", str(raw), "--out", str(cal)]) == 0
    assert main(["record", "--sensor", f"serial:{r.path}@100", "--duration", "5",
                 "--calibration", str(cal), "--out", str(tmp_path / "raw2.csv")]) == 0
    out = capsys.readouterr().out
    # --duration is device time (the node's own clock): 20 s and 5 s of its samples
    wrote = [int(n) for n in re.findall(r"wrote (\d+) samples", out)]
    assert len(wrote) == 2 and abs(wrote[0] - 2000) <= 2 and abs(wrote[1] - 500) <= 2, out
    rec = read_raw_csv(raw)
    assert len(rec.t_s) == wrote[0] and rec.t_s[-1] - rec.t_s[0] < 20.0
    assert f"wrote {cal}" in out


def test_silent_port_is_a_device_error_after_trying_both_bauds(tmp_path):
    master, slave = os.openpty()
    try:
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match="no sensor data recognised"):
            SerialSource(os.ttyname(slave), probe_s=0.6)
        assert time.monotonic() - t0 >= 0.6
        os.write(master, os.urandom(64))  # garbage is not a sensor either
        with pytest.raises(DeviceError, match="115200 or 9600 baud"):
            SerialSource(os.ttyname(slave), probe_s=0.4)
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.slow
@pytest.mark.parametrize("phase,gap_s,process", [("stance", 1.0, False), ("drives", 1.0, True),
                                                 ("after calibration", 1.0, False)])
def test_a_real_replug_in_any_phase_gives_a_right_number_or_a_refusal(phase, gap_s, process):
    """A subset of ``bench gaps``' serial section: the node's firmware on a pty (``process``:
    ``python -m firmware_bridge --pty --link PATH --replug-after N`` as its own process,
    unplugged by ``kill -USR1``), real pyserial, the unplug when the host has the phase's start,
    a new pty behind the same path ``gap_s`` of device time later; every scripted rep scored
    within 1° of the truth, or refused (the session, or the reps before a calibration the user
    was told restarted), never a wrong number; and the outage really happened (measured from
    the device time either side)."""
    from bench.bench_gaps import run_serial_case

    outcome, why, measured_s, _ = run_serial_case(1, phase, gap_s, process=process)
    assert outcome in ("right", "refused"), why
    assert measured_s >= gap_s - 0.05
