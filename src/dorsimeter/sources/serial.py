"""A sensor on a serial port (USB CDC or a UART adapter), read with pyserial.

The protocol is recognised from the bytes: our node's frames (``protocol.frames``) or WitMotion
UART packets (``protocol.witmotion``). A reader thread owns the port and hands raw bytes to the
async ``stream``, which decodes them (pure functions) into ImuBatch.

Unplug and replug: when the port fails (read error, device gone) the thread closes it and reopens
the same path with backoff (0.1 s doubling to 2 s) until ``give_up_s``, then the stream raises
DeviceError. Each outage is recorded as a :class:`Gap` in ``SerialSource.gaps`` (also passed to
``on_gap`` and counted in ``stats()["gaps"]``); the batches carry on with device time, so the gap
is also visible as a jump in ``t_s``. Our frames carry sequence numbers, so the samples lost
during the outage are counted exactly; WitMotion has none, so its sample clock is advanced by the
outage's wall-clock length.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

import numpy as np
import serial

from dorsimeter.errors import DeviceError
from dorsimeter.sources.base import Gap, Source
from dorsimeter.types import ImuBatch
from dorsimeter.wire import frames, witmotion
from dorsimeter.wire.frames import FrameDecoder
from dorsimeter.wire.witmotion import WitUartDecoder

NODE_RATES_HZ = (25.0, 50.0, 100.0, 200.0, 400.0)
PROTOCOLS = ("node", "witmotion-uart")
FALLBACK_BAUD = 9600  # many WitMotion UART sensors ship at 9600 baud; USB CDC ignores baud


def detect_protocol(data: bytes, rate_hz: float = 100.0) -> str | None:
    """``node`` or ``witmotion-uart`` if ``data`` clearly holds that protocol, else None."""
    node, wit = FrameDecoder(), WitUartDecoder(rate_hz)
    node.feed(data)
    wit.feed(data)
    return _decide(node, wit)


def _decide(node: FrameDecoder, wit: WitUartDecoder) -> str | None:
    if node.stats.frames >= 3 and node.stats.frames * 4 > wit.stats.packets:
        return "node"
    if wit.stats.packets >= 9 and wit.stats.samples >= 2:
        return "witmotion-uart"
    return None


def _snap(rate_hz: float, choices) -> float:
    best = min(choices, key=lambda r: abs(r - rate_hz))
    return float(best) if abs(best - rate_hz) <= 0.05 * best else round(rate_hz, 2)


class SerialSource(Source):
    """Streams the sensor on ``port``; ``rate_hz`` None means: find it from the first data."""

    def __init__(self, port: str, rate_hz: float | None = None, side: str = "left",
                 baudrate: int = 115200, protocol: str | None = None, probe_s: float = 3.0,
                 give_up_s: float = 30.0, on_gap: Callable[[Gap], None] | None = None) -> None:
        if protocol is not None and protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}")
        self.port = port
        self.side = side
        self.baudrate = baudrate
        self.protocol = protocol
        self.give_up_s = give_up_s
        self.on_gap = on_gap
        self.name = f"serial {port}"
        self.gaps: list[Gap] = []
        self.reconnects = 0
        self.state = "connecting"
        self.battery_pct: int | None = None
        self._ser: serial.Serial | None = None
        self._chunks: list[bytes] = []  # bytes read before streaming began
        self._decoder: FrameDecoder | WitUartDecoder | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_t_s: float | None = None
        self._pending_gap: Gap | None = None
        self._arrivals: deque[tuple[float, int]] = deque()
        self._open()
        if rate_hz is None:
            try:
                self.rate_hz = self._probe(probe_s)
            except DeviceError:
                self._drop_port()
                raise
        else:
            self.rate_hz = float(rate_hz)
            self._set_device_rate()

    # -- opening and probing (before streaming; blocking, short)
    def _open(self) -> None:
        try:
            self._ser = serial.Serial(self.port, self.baudrate, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as e:
            raise DeviceError(f"serial port {self.port}: cannot open ({e})") from None

    def _probe(self, probe_s: float) -> float:
        """Read until the protocol and rate are clear; the bytes are kept for the stream."""
        node, wit = FrameDecoder(), WitUartDecoder(100.0)
        node_t: list[np.ndarray] = []
        t0 = time.monotonic()
        first_wit: float | None = None
        fallback = FALLBACK_BAUD if self.baudrate != FALLBACK_BAUD else None
        while time.monotonic() - t0 < probe_s:
            try:
                if (fallback and time.monotonic() - t0 > probe_s / 2 and node.stats.frames == 0
                        and wit.stats.packets == 0):
                    # nothing recognised: a UART adapter at WitMotion's factory 9600 baud?
                    self._ser.baudrate, self.baudrate, fallback = fallback, fallback, None
                    node, wit, node_t, self._chunks = FrameDecoder(), WitUartDecoder(100.0), [], []
                data = self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise DeviceError(f"serial port {self.port}: read failed ({e})") from None
            if not data:
                continue
            self._chunks.append(data)
            node_t += [b.t_s for b in node.feed(data)]
            n_before = wit.stats.samples
            wit.feed(data)
            if first_wit is None and wit.stats.samples > n_before:
                first_wit, wit_base = time.monotonic(), wit.stats.samples
            kind = self.protocol or _decide(node, wit)
            if kind == "node" and sum(len(t) for t in node_t) >= 8:
                t = np.concatenate(node_t)
                dt = np.diff(t)
                dt = dt[(dt > 0) & (dt < 1.0)]
                if len(dt) >= 5:
                    self.protocol = "node"
                    return _snap(1.0 / float(np.median(dt)), NODE_RATES_HZ)
            if kind == "witmotion-uart" and first_wit is not None:
                span = time.monotonic() - first_wit
                if span >= 1.0:
                    self.protocol = "witmotion-uart"
                    rate = (wit.stats.samples - wit_base) / span
                    # no device clock: the nearest rate WitMotion offers (they are ≥ 25 % apart)
                    rates = [r for r in witmotion.RATE_CODES if r >= 1]
                    return float(min(rates, key=lambda r: abs(np.log(r / max(rate, 1e-3)))))
        raise DeviceError(f"serial port {self.port}: no sensor data recognised in {probe_s:g} s "
                          "(expected dorsimeter node frames or WitMotion UART packets at 115200 "
                          "or 9600 baud)")

    def _set_device_rate(self) -> None:
        """Ask the device for ``rate_hz`` (our node: SET_RATE; WitMotion: unlock, rate, save)."""
        try:
            if self.protocol == "witmotion-uart":
                for cmd in witmotion.rate_commands(self.rate_hz):
                    self._ser.write(cmd)
                    time.sleep(0.02)
            elif self.protocol in (None, "node") and self.rate_hz in NODE_RATES_HZ:
                self._ser.write(frames.encode_set_rate(1, int(self.rate_hz)))
        except (serial.SerialException, OSError, ValueError):
            pass  # a read-only adapter: the stream will show the device's own rate

    def send(self, data: bytes) -> bool:
        """Write ``data`` (e.g. a command frame) to the device; False if the port is down."""
        ser = self._ser
        if ser is None:
            return False
        try:
            ser.write(data)
            return True
        except (serial.SerialException, OSError):
            return False

    # -- the reader thread: bytes and link events into the asyncio queue
    def _post(self, item) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
            return True
        except RuntimeError:  # the event loop is gone
            return False

    def _reader(self) -> None:
        backoff = 0.1
        down_since: float | None = None
        while not self._closing.is_set():
            if self._ser is None:
                try:
                    self._ser = serial.Serial(self.port, self.baudrate, timeout=0.05)
                except (serial.SerialException, OSError, ValueError):
                    if time.monotonic() - down_since > self.give_up_s:
                        self._post(("lost", b"", time.monotonic()))
                        return
                    self._closing.wait(backoff)
                    backoff = min(2.0, backoff * 2)
                    continue
                backoff = 0.1
                if not self._post(("up", b"", time.monotonic() - down_since)):
                    return
                down_since = None
            try:
                data = self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError, TypeError, AttributeError):
                self._drop_port()
                down_since = time.monotonic()
                if not self._post(("down", b"", down_since)):
                    return
                continue
            if data and not self._post(("data", data, time.monotonic())):
                return

    def _drop_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except (serial.SerialException, OSError):
                pass

    # -- decoding
    def _new_decoder(self) -> FrameDecoder | WitUartDecoder:
        if self.protocol == "witmotion-uart":
            return WitUartDecoder(self.rate_hz, side=self.side)
        return FrameDecoder(side=self.side)

    def _decode(self, data: bytes) -> list[ImuBatch]:
        if self._decoder is None:
            self._chunks.append(data)
            if self.protocol is None:
                joined = b"".join(self._chunks)
                self.protocol = detect_protocol(joined, self.rate_hz)
                if self.protocol is None:
                    self._chunks = [joined[-4096:]]
                    return []
            self._decoder = self._new_decoder()
            data, self._chunks = b"".join(self._chunks), []
        out = self._decoder.feed(data)
        if isinstance(self._decoder, FrameDecoder):
            for msg in self._decoder.pop_messages():
                st = msg.node_status()
                if st is not None:
                    self.battery_pct = st.battery_pct
                elif msg.cmd == frames.CMD_BATTERY and msg.status == frames.ST_OK and msg.data:
                    self.battery_pct = msg.data[0]
        for b in out:
            b.side = self.side
        return [b for b in out if len(b)]

    def _note(self, batch: ImuBatch) -> None:
        now = time.monotonic()
        self._arrivals.append((now, len(batch)))
        while self._arrivals and now - self._arrivals[0][0] > 2.0:
            self._arrivals.popleft()
        if batch.restart and self._pending_gap is None:  # a reset with the port kept open
            self._pending_gap = Gap(t_before_s=self._last_t_s)
        if self._pending_gap is not None:
            gap, self._pending_gap = self._pending_gap, None
            gap.t_after_s = float(batch.t_s[0])
            gap.restart = batch.restart
            if isinstance(self._decoder, FrameDecoder) and gap.t_before_s is not None:
                # device time is exact: the samples that should have come in between
                gap.lost_samples = max(0, int(round((gap.t_after_s - gap.t_before_s)
                                                    * self.rate_hz)) - 1)
            self.gaps.append(gap)
            if self.on_gap is not None:
                self.on_gap(gap)
        self._last_t_s = float(batch.t_s[-1])

    def set_side(self, side: str) -> None:
        self.side = side

    async def stream(self) -> AsyncIterator[ImuBatch]:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        if self._thread is None:
            self._thread = threading.Thread(target=self._reader, name=f"serial {self.port}",
                                            daemon=True)
            self._thread.start()
        self.state = "streaming"
        early, self._chunks = b"".join(self._chunks), []
        for b in self._decode(early) if early else []:
            self._note(b)
            yield b
        while True:
            kind, data, when = await self._queue.get()
            if kind == "data":
                for b in self._decode(data):
                    self._note(b)
                    yield b
            elif kind == "down":
                self.state = "reconnecting"
                self._pending_gap = Gap(t_before_s=self._last_t_s)
            elif kind == "up":
                self.state = "streaming"
                self.reconnects += 1
                if self._pending_gap is not None:
                    self._pending_gap.down_s = float(when)
                if isinstance(self._decoder, WitUartDecoder):
                    # no device clock: the outage's length keeps sample times honest
                    self._decoder._n += int(round(float(when) * self.rate_hz))
            elif kind == "lost":
                self.state = "lost"
                raise DeviceError(f"serial port {self.port}: gone for more than "
                                  f"{self.give_up_s:g} s")

    def stats(self) -> dict:
        """Link figures for the UI (see ``Source.stats``)."""
        out: dict = {"state": self.state, "address": self.port, "gaps": len(self.gaps),
                     "reconnects": self.reconnects, "protocol": self.protocol or "?"}
        if len(self._arrivals) >= 2:
            span = self._arrivals[-1][0] - self._arrivals[0][0]
            if span > 0:
                out["rate_hz"] = sum(n for _, n in list(self._arrivals)[1:]) / span
        dec = self._decoder
        if isinstance(dec, FrameDecoder):
            s = dec.stats
            total = s.frames + s.lost
            out["loss"] = s.lost / total if total else 0.0
            out.update(lost_samples=s.lost_samples, crc_errors=s.crc_errors,
                       duplicates=s.duplicates, restarts=s.restarts)
        elif isinstance(dec, WitUartDecoder):
            out.update(checksum_errors=dec.stats.checksum_errors)
        if dec is not None:
            out["bytes_skipped"] = dec.stats.bytes_skipped
        if self.battery_pct is not None:
            out["battery"] = self.battery_pct / 100.0
        return out

    async def close(self) -> None:
        self._closing.set()
        self.state = "ended"
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)
        self._drop_port()
