"""Run the sensor node on a host: simulated drivers, real frames into a pseudo-terminal.

``python -m firmware_bridge --pty`` prints the path of the terminal to open (the pty's slave, or
``--link PATH``, a symlink kept pointing at the current pty) and streams until killed. SIGUSR1
"unplugs" the port (the pty is closed and the symlink removed; the node keeps sampling, so the
host sees the loss) and it comes back after ``--replug-after`` seconds as a new pty behind the
same symlink, like a USB serial adapter re-enumerating. ``--protocol witmotion-uart`` emulates a
WitMotion sensor on a UART instead (its 0x51/0x52/0x53 packets, no sequence numbers).
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import signal
import sys
import threading
import time
import tty

import numpy as np
from scipy.spatial.transform import Rotation

from dorsimeter.sim import Mount, SensorErrors, ShankSim
from firmware_bridge import wire
from firmware_bridge.node import SensorNode
from firmware_bridge.sim_drivers import SimBattery, SimClock, SimHeel, SimImu, SimLed

OUT_BUFFER_MAX = 64 * 1024  # like a USB CDC buffer: beyond this, frames are dropped


class PtyLink:
    """The node's USB serial port as a pseudo-terminal (the host opens ``path``)."""

    max_payload = 256
    trusted = True  # USB: physical access

    def __init__(self, link_path: str | None = None) -> None:
        self.link_path = link_path
        self.master: int | None = None
        self.slave: int | None = None
        self.slave_path = ""
        self._out = b""
        self.frames_dropped = 0
        self.bytes_written = 0
        self._lock = threading.Lock()
        self.plug()

    @property
    def path(self) -> str:
        return self.link_path or self.slave_path

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> None:
        with self._lock:
            if self.master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)  # binary-clean before the host opens it (no echo, no CR/LF)
            flags = fcntl.fcntl(master, fcntl.F_GETFL)
            fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
            self.master, self.slave = master, slave
            self.slave_path = os.ttyname(slave)
            self._out = b""
            if self.link_path:
                tmp = f"{self.link_path}.tmp{os.getpid()}"
                if os.path.lexists(tmp):
                    os.unlink(tmp)
                os.symlink(self.slave_path, tmp)
                os.replace(tmp, self.link_path)

    def unplug(self) -> None:
        with self._lock:
            if self.master is None:
                return
            if self.link_path and os.path.lexists(self.link_path):
                os.unlink(self.link_path)
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)  # pyright: ignore[reportArgumentType]
                except OSError:
                    pass
            self.master = self.slave = None

    def send(self, frame: bytes) -> None:
        with self._lock:
            if self.master is None:
                self.frames_dropped += 1
                return
            if len(self._out) + len(frame) > OUT_BUFFER_MAX:
                self.frames_dropped += 1
            else:
                self._out += frame
            self._drain()

    def _drain(self) -> None:
        while self._out and self.master is not None:
            try:
                n = os.write(self.master, self._out)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EIO, errno.EAGAIN):
                    return
                raise
            self.bytes_written += n
            self._out = self._out[n:]

    def receive(self) -> bytes:
        """Bytes the host wrote to the port (commands)."""
        with self._lock:
            if self.master is None:
                return b""
            self._drain()
            try:
                return os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                return b""

    def close(self) -> None:
        self.unplug()


class WitUartEmitter:
    """A WitMotion sensor on a UART: acc/gyro/angle packets of the same simulated shank."""

    def __init__(self, imu: SimImu, link: PtyLink) -> None:
        self.imu, self.link = imu, link

    def step(self) -> int:
        from dorsimeter.wire.witmotion import encode_uart_sample

        samples = self.imu.read()
        b = self.imu.last_batch
        if not samples or b is None:  # a read with samples always leaves its batch
            return 0
        q = b.truth["sensor_quat"]  # pyright: ignore[reportOptionalSubscript]
        ang = Rotation.from_quat(q, scalar_first=True).as_euler("ZYX", degrees=True)[:, ::-1]
        g = 9.81
        out = b"".join(encode_uart_sample(b.acc_m_s2[i] / g, np.degrees(b.gyr_rad_s[i]), ang[i])
                       for i in range(len(b)))
        self.link.send(out)
        return len(samples)


class HostRunner:
    """The node (or a WitMotion emulation) on simulated drivers, paced against the wall clock."""

    def __init__(self, rate_hz: float = 100.0, seed: int = 0, side: str = "left",
                 speed: float = 1.0, protocol: str = "node", link_path: str | None = None,
                 clock_offset_us: int = 0, encoding: int | None = None, heel: bool = False,
                 quat: bool = False, clip_rotation_deg=(0.0, 0.0, 0.0),
                 max_payload: int = 256, script: str = "wall", ideal: bool = False,
                 sim: ShankSim | None = None) -> None:
        self.clock = SimClock(clock_offset_us)
        # ``sim``: a shank of the caller's (an athlete of the benchmarks), else one from the args
        self.sim = sim if sim is not None else ShankSim(
            rate_hz=rate_hz, side=side, seed=seed, heel_switch=heel,
            mount=Mount(clip_rotation_deg=tuple(clip_rotation_deg)), script=script,
            **({"errors": SensorErrors.none()} if ideal else {}))  # pyright: ignore[reportArgumentType]
        self.imu = SimImu(self.sim, self.clock, has_quat=quat)
        self.link = PtyLink(link_path)
        self.link.max_payload = max_payload
        self.speed = speed
        self.protocol = protocol
        self.led = SimLed()
        if protocol == "node":
            self.node: SensorNode | None = SensorNode(
                self.imu, SimHeel(self.imu) if heel else None, SimBattery(self.clock),
                self.clock, self.led, encoding=encoding)
            self.node.attach(self.link)
            self.emitter = None
        elif protocol == "witmotion-uart":
            self.node = None
            self.emitter = WitUartEmitter(self.imu, self.link)
        else:
            raise ValueError(f"unknown protocol {protocol}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._replug_at: float | None = None
        self._unplug_request: float | None = None  # set from a signal handler
        self.samples = 0

    @property
    def path(self) -> str:
        return self.link.path

    def unplug(self, replug_after_s: float | None = None) -> None:
        self.link.unplug()
        if replug_after_s is not None:
            self._replug_at = time.monotonic() + replug_after_s

    def replug(self) -> None:
        self._replug_at = None
        self.link.plug()

    def run(self, duration_s: float | None = None, tick_s: float = 0.004) -> None:
        """Stream until ``stop()`` or ``duration_s`` of simulated time."""
        t0 = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if self._unplug_request is not None:
                self.unplug(self._unplug_request)
                self._unplug_request = None
            if self._replug_at is not None and now >= self._replug_at:
                self.replug()
            self.clock.now_s = (now - t0) * self.speed
            if duration_s is not None and self.clock.now_s > duration_s:
                break
            if self.node is not None:
                self.samples += self.node.step()
                cmd = self.link.receive()
                if cmd:
                    self.node.handle_command(cmd, self.link, trusted=True)
            else:
                self.samples += self.emitter.step()  # pyright: ignore[reportOptionalMemberAccess]
                self.link.receive()
            time.sleep(tick_s)

    def start(self, duration_s: float | None = None) -> HostRunner:
        self._thread = threading.Thread(target=self.run, args=(duration_s,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.link.close()


ENCODINGS = {"auto": None, "i16": wire.ENC_I16, "p12": wire.ENC_P12, "i16q": wire.ENC_I16Q}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware_bridge",
                                description="Run the sensor node on this host with a simulated "
                                            "shank, writing real frames into a pseudo-terminal.")
    p.add_argument("--pty", action="store_true", required=True,
                   help="serve the node's USB serial port as a pseudo-terminal")
    p.add_argument("--link", help="keep a symlink at this path pointing at the current pty")
    p.add_argument("--rate", type=float, default=100.0, help="sample rate, Hz (default 100)")
    p.add_argument("--protocol", choices=("node", "witmotion-uart"), default="node")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--side", choices=("left", "right"), default="left")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    p.add_argument("--duration", type=float, help="stop after this many simulated seconds")
    p.add_argument("--clock-offset-us", type=int, default=0,
                   help="device clock at start, µs (e.g. 4294000000 to cross the uint32 wrap)")
    p.add_argument("--encoding", choices=tuple(ENCODINGS), default="auto")
    p.add_argument("--heel", action="store_true", help="simulate the heel FSR")
    p.add_argument("--quat", action="store_true", help="on-chip orientation (like a BNO08x)")
    p.add_argument("--script", default="wall", help="simulator script (wall, lunge, ...)")
    p.add_argument("--max-payload", type=int, default=256, help="bytes per write")
    p.add_argument("--ideal", action="store_true", help="a perfect IMU (no noise, no bias)")
    p.add_argument("--replug-after", type=float, default=1.0,
                   help="seconds a SIGUSR1 unplug lasts (default 1)")
    args = p.parse_args(argv)
    runner = HostRunner(args.rate, args.seed, args.side, args.speed, args.protocol, args.link,
                        args.clock_offset_us, ENCODINGS[args.encoding], args.heel, args.quat,
                        max_payload=args.max_payload, script=args.script, ideal=args.ideal)
    def request_unplug(*_):
        runner._unplug_request = args.replug_after

    signal.signal(signal.SIGUSR1, request_unplug)
    signal.signal(signal.SIGTERM, lambda *_: runner._stop.set())
    print(runner.path, flush=True)
    try:
        runner.run(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        runner.link.close()
    print(f"{runner.samples} samples, {runner.link.frames_dropped} frames dropped",
          file=sys.stderr)
    return 0
