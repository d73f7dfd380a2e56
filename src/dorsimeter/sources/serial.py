"""A sensor on a serial port (USB CDC or a UART adapter), read with pyserial.

The device family is recognised from the bytes (the registry's ``SerialProbe``: every family's
decoder is fed the same bytes). A reader thread owns the port and hands raw bytes to the async
``stream``, which decodes them (pure functions) into ImuBatch.

Unplug and replug: when the port fails (read error, device gone) the thread closes it and reopens
the same path with backoff (0.1 s doubling to 2 s) until ``give_up_s``, then the stream raises
DeviceError. Each outage is recorded as a :class:`Gap` in ``SerialSource.gaps`` (also passed to
``on_gap`` and counted in ``link.gaps``); the batches carry on with device time, so the gap is
also visible as a jump in ``t_s``. A family with sequence numbers and a clock (our node) counts
the samples lost during the outage exactly; a clockless one (WitMotion) has its sample clock
moved on by the outage's wall-clock length.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable

import numpy as np
import serial

from dorsimeter.errors import DeviceError
from dorsimeter.sources import registry
from dorsimeter.sources.base import Gap, LinkStats, Source
from dorsimeter.sources.registry import Decoder, SensorKind, SerialProbe, kind_for_bytes
from dorsimeter.types import ImuBatch

FALLBACK_BAUD = 9600  # many WitMotion UART sensors ship at 9600 baud; USB CDC ignores baud


def _snap(rate_hz: float, choices: Iterable[float]) -> float:
    best = min(choices, key=lambda r: abs(r - rate_hz))
    return float(best) if abs(best - rate_hz) <= 0.05 * best else round(rate_hz, 2)


def _nearest_log(rate_hz: float, choices: Iterable[float]) -> float:
    """The offered rate nearest ``rate_hz`` in ratio (a clockless family's rates are ≥ 25 %
    apart, so the arrival rate picks one)."""
    return float(min(choices, key=lambda r: abs(np.log(r / max(rate_hz, 1e-3)))))


class SerialSource(Source):
    """Streams the sensor on ``port``; ``rate_hz`` None means: find it from the first data.
    ``kind``: the family, when known beforehand (else recognised from the bytes)."""

    def __init__(self, port: str, rate_hz: float | None = None, side: str = "left",
                 baudrate: int = 115200, kind: SensorKind | None = None, probe_s: float = 3.0,
                 give_up_s: float = 30.0, on_gap: Callable[[Gap], None] | None = None) -> None:
        super().__init__()
        self.port = port
        self.side = side
        self.baudrate = baudrate
        self.kind = kind
        self.give_up_s = give_up_s
        self.on_gap = on_gap
        self.name = f"serial {port}"
        self.gaps: list[Gap] = []
        self.link = LinkStats(state="connecting", address=port)
        self._ser: serial.Serial | None = None
        self._chunks: list[bytes] = []  # bytes read before streaming began
        self._decoder: Decoder | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_t_s: float | None = None
        self._pending_gap: Gap | None = None
        self._open()
        if kind is not None:
            self._known(kind)
        if rate_hz is None:
            try:
                self.rate_hz = self._probe(probe_s)
            except DeviceError:
                self.drop_port()
                raise
        else:
            self.rate_hz = float(rate_hz)
            self._set_device_rate()

    def _known(self, kind: SensorKind) -> None:
        self.kind = kind
        self.link.kind, self.link.has_sequence = kind.name, kind.has_sequence

    # -- opening and probing (before streaming; blocking, short)
    def _open(self) -> None:
        try:
            self._ser = serial.Serial(self.port, self.baudrate, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as e:
            raise DeviceError(f"serial port {self.port}: cannot open ({e})") from None

    def _probe(self, probe_s: float) -> float:
        """Read until the family and rate are clear; the bytes are kept for the stream.

        A family with a clock: the median interval of its device time, snapped to the rates it
        offers. A clockless one: its samples per second of arrival over 1 s, to the nearest
        rate it offers."""
        assert self._ser is not None
        probe = SerialProbe()
        times: dict[SensorKind, list[np.ndarray]] = {k: [] for k in probe.decoders}
        t0 = time.monotonic()
        first: dict[SensorKind, tuple[float, int]] = {}  # first samples' arrival, count
        fallback = FALLBACK_BAUD if self.baudrate != FALLBACK_BAUD else None
        while time.monotonic() - t0 < probe_s:
            try:
                if fallback and time.monotonic() - t0 > probe_s / 2 and not probe.anything():
                    # nothing recognised: a UART adapter at WitMotion's factory 9600 baud?
                    self._ser.baudrate, self.baudrate, fallback = fallback, fallback, None
                    probe, self._chunks, first = SerialProbe(), [], {}
                    times = {k: [] for k in probe.decoders}
                data = self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise DeviceError(f"serial port {self.port}: read failed ({e})") from None
            if not data:
                continue
            self._chunks.append(data)
            now = time.monotonic()
            for k, batches in probe.feed(data).items():
                times[k] += [b.t_s for b in batches]
                if k not in first and probe.samples(k):
                    first[k] = (now, probe.samples(k))
            kind = self.kind or probe.kind()
            if kind is None:
                continue
            if kind.has_clock and sum(len(t) for t in times[kind]) >= 8:
                dt = np.diff(np.concatenate(times[kind]))
                dt = dt[(dt > 0) & (dt < 1.0)]
                if len(dt) >= 5:
                    self._known(kind)
                    return _snap(1.0 / float(np.median(dt)), kind.rates_hz)
            if not kind.has_clock and kind in first:
                t_first, n_first = first[kind]
                span = now - t_first
                if span >= 1.0:
                    self._known(kind)
                    return _nearest_log((probe.samples(kind) - n_first) / span, kind.rates_hz)
        names = " or ".join(k.name for k in registry.KINDS if k.serial)
        raise DeviceError(f"serial port {self.port}: no sensor data recognised in {probe_s:g} s "
                          f"(expected {names} data at 115200 or 9600 baud)")

    def _set_device_rate(self) -> None:
        """Ask the device for ``rate_hz`` with its family's rate commands (before the family is
        known: only those that are safe to send to any device)."""
        kinds = [self.kind] if self.kind is not None else [
            k for k in registry.KINDS if k.blind_setup]
        assert self._ser is not None  # called from __init__, after _open
        try:
            for kind in kinds:
                for k, cmd in enumerate(kind.rate_commands(self.rate_hz)):
                    if k:
                        time.sleep(kind.serial_command_gap_s)
                    self._ser.write(cmd)
        except (serial.SerialException, OSError, ValueError, DeviceError):
            pass  # a read-only adapter, a rate it does not offer: the stream shows its own

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
        loop, queue = self._loop, self._queue
        assert loop is not None and queue is not None  # stream() sets both before the thread
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
            return True
        except RuntimeError:  # the event loop is gone
            return False

    def _reader(self) -> None:
        backoff = 0.1
        down_since: float | None = None
        while not self._closing.is_set():
            if self._ser is None:
                # the port is open when stream() starts the thread: it is None only after the
                # drop below, which sets down_since
                assert down_since is not None
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
                self.drop_port()
                down_since = time.monotonic()
                if not self._post(("down", b"", down_since)):
                    return
                continue
            if data and not self._post(("data", data, time.monotonic())):
                return

    def drop_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except (serial.SerialException, OSError):
                pass

    # -- decoding
    def _decode(self, data: bytes) -> list[ImuBatch]:
        if self._decoder is None:
            self._chunks.append(data)
            if self.kind is None:
                joined = b"".join(self._chunks)
                kind = kind_for_bytes(joined, self.rate_hz)
                if kind is None:
                    self._chunks = [joined[-4096:]]
                    return []
                self._known(kind)
            assert self.kind is not None
            self._decoder = self.kind.serial_decoder(self.rate_hz, side=self.side)
            data, self._chunks = b"".join(self._chunks), []
        assert self.kind is not None
        out = self._decoder.feed(data)
        battery = self.kind.battery_seen(self._decoder)
        if battery is not None:
            self.link.battery_pct = battery
        self.kind.count(self._decoder, self.link)
        for b in out:
            b.side = self.side
        return [b for b in out if len(b)]

    def _note(self, batch: ImuBatch) -> None:
        self.link.arrived(time.monotonic(), len(batch))
        if batch.restart and self._pending_gap is None:  # a reset with the port kept open
            self._pending_gap = Gap(t_before_s=self._last_t_s)
        if self._pending_gap is not None:
            gap, self._pending_gap = self._pending_gap, None
            gap.t_after_s = float(batch.t_s[0])
            gap.restart = batch.restart
            if self.kind is not None and self.kind.has_clock and gap.t_before_s is not None:
                # device time is exact: the samples that should have come in between
                gap.lost_samples = max(0, int(round((gap.t_after_s - gap.t_before_s)
                                                    * self.rate_hz)) - 1)
            self.gaps.append(gap)
            self.link.gaps = len(self.gaps)
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
        self.link.state = "streaming"
        early, self._chunks = b"".join(self._chunks), []
        for b in self._decode(early) if early else []:
            self._note(b)
            yield b
        while True:
            event, data, when = await self._queue.get()
            if event == "data":
                for b in self._decode(data):
                    self._note(b)
                    yield b
            elif event == "down":
                self.link.state = "reconnecting"
                self._pending_gap = Gap(t_before_s=self._last_t_s)
            elif event == "up":
                self.link.state = "streaming"
                self.link.reconnects += 1
                if self._pending_gap is not None:
                    self._pending_gap.down_s = float(when)
                if self.kind is not None and self._decoder is not None:
                    # no device clock: the outage's length keeps sample times honest
                    self.kind.skip_samples(self._decoder, int(round(float(when) * self.rate_hz)))
            elif event == "lost":
                self.link.state = "lost"
                raise DeviceError(f"serial port {self.port}: gone for more than "
                                  f"{self.give_up_s:g} s")

    async def close(self) -> None:
        self._closing.set()
        self.link.state = "ended"
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)
        self.drop_port()
