"""An emulated Polar Verity Sense, from Polar's Measurement Data (PMD) documents
(polarofficial/polar-ble-sdk ``technical_documentation/``, ``SdkModeExplained.md``).

GATT: the PMD service ``FB005C80-…`` with its control point ``…5C81`` (read: ``0F`` and the
feature bits: ACC, PPG, PPI, gyro, magnetometer, SDK mode; write; indicate: the responses) and
data ``…5C82`` (notify), and the standard Battery Service (0x180F, level 0x2A19). It advertises
"Polar Sense XXXXXXXX".

Commands as the documents give them: ``01 type`` (the settings on offer), ``02 type settings``
(start), ``03 type`` (stop); SDK mode is type 9. Each is answered ``F0 op type status more
[params]``: 0 on success (a start's parameters carry the conversion factor, setting 5), else the
specification's error codes: 1 an unknown op code, 2 an unknown measurement, 3 gyro (or any
stream) the current mode does not have, 4 a command too short, 5 settings that do not parse,
6 already in that state, 7/8/9/11 a resolution, sample rate, range or channel count not offered.
Normal mode streams ACC at 52 Hz, ±8 g only; SDK mode ACC and gyro at 26-416 Hz; turning SDK
mode on or off closes the streams. Streams stop when the link drops (SDK mode stays on).

Samples: :class:`dorsimeter.sim.ShankSim`, ACC in G and gyro in °/s over the factor (range /
2^15) as int16, sent as delta-compressed frames (type 0x80: a reference sample, then blocks of
bit width, count and bit-packed deltas) of up to ``samples_per_frame`` samples, each stamped
with its last sample's time (ns since 2000-01-01; the clock starts at the Verity's default,
2017-01-01T10:00Z). What went onto the link is kept in ``sent``.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

import numpy as np
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.link import LocalLink

from dorsimeter.sim import ShankSim
from tests.emulators.peripheral import INDICATE, READ, WRITE, Impairments, Peripheral, Ticker

PMD_SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"

ECG, PPG, ACC, PPI, GYRO, MAG, SDK = 0, 1, 2, 3, 5, 6, 9
KNOWN_TYPES = (ECG, PPG, ACC, PPI, GYRO, MAG, 7, SDK, 10, 11, 12, 13, 14)
SDK_RATES = (26, 52, 104, 208, 416)
RANGES = {ACC: (2, 4, 8, 16), GYRO: (250, 500, 1000, 2000)}
#: 2017-01-01T10:00:00Z in ns since 2000-01-01T00:00:00Z (the Verity's default time)
DEFAULT_TIME_NS = ((17 * 365 + 5) * 86400 + 10 * 3600) * 1_000_000_000
G = 9.81


@dataclass
class SentFrames:
    """Per stream (ACC, gyro): each sample sent, its time (ns) and value in G or °/s."""

    t_ns: dict[int, list[int]] = field(default_factory=lambda: {ACC: [], GYRO: []})
    values: dict[int, list[np.ndarray]] = field(default_factory=lambda: {ACC: [], GYRO: []})
    frames: dict[int, list[bytes]] = field(default_factory=lambda: {ACC: [], GYRO: []})

    def arrays(self, measurement: int) -> tuple[np.ndarray, np.ndarray]:
        return (np.array(self.t_ns[measurement], dtype=np.int64),
                np.array(self.values[measurement]).reshape(-1, 3))


def delta_frame_content(raw: np.ndarray) -> bytes:
    """Compressed content of (n, 3) int16 samples: the reference sample (3 × int16 LE), then one
    block of ``width count deltas`` at the fewest bits that hold every delta (two's complement,
    packed least significant bit first, channel after channel)."""
    raw = np.asarray(raw, dtype=np.int64)
    out = struct.pack("<3h", *raw[0])
    deltas = np.diff(raw, axis=0).reshape(-1)
    for start in range(0, len(deltas) // 3, 255):  # a block counts at most 255 samples
        block = deltas[start * 3:(start + 255) * 3]
        width = max(1, max(int(d).bit_length() + 1 if d >= 0 else int(~d).bit_length() + 1
                           for d in block))
        bits = 0
        for i, d in enumerate(block):
            bits |= (int(d) & ((1 << width) - 1)) << (i * width)
        out += bytes([width, len(block) // 3]) + bits.to_bytes(-(-width * len(block) // 8),
                                                               "little")
    return out


class PolarPeripheral(Peripheral):
    """The emulated Verity Sense; ``sdk_mode_supported=False`` is a firmware before 1.1.5."""

    def __init__(self, link: LocalLink, name: str = "Polar Sense 1A2B3C4D",
                 address: str = "A0:9E:1A:00:00:01", impairments: Impairments | None = None,
                 seed: int = 0, battery_pct: int = 80, sdk_mode_supported: bool = True,
                 samples_per_frame: int = 36) -> None:
        super().__init__(link, name, address, impairments)
        self.seed = seed
        self.battery_pct = battery_pct
        self.sdk_supported = sdk_mode_supported
        self.samples_per_frame = samples_per_frame
        self.sdk_mode = False
        self.active: dict[int, tuple[int, int]] = {}  # measurement -> (rate Hz, range)
        self.responses: list[bytes] = []
        self.sent = SentFrames()
        self._mtu = 23
        self._stream: asyncio.Task | None = None

    # --- GATT
    def services(self) -> list[Service]:
        self.cp = Characteristic(PMD_CONTROL_POINT, READ | WRITE | INDICATE,
                                 Characteristic.READABLE | Characteristic.WRITEABLE,
                                 CharacteristicValue(read=lambda _c: self._features(),
                                                     write=self._on_command))
        return [Service(PMD_SERVICE, [self.cp, self.stream(PMD_DATA)]),
                self.battery_service(lambda: bytes([self.battery_pct]), BATTERY_SERVICE,
                                     BATTERY_LEVEL)]

    def _features(self) -> bytes:
        bits = 1 << ACC | 1 << PPG | 1 << PPI | 1 << GYRO | 1 << MAG
        if self.sdk_supported:
            bits |= 1 << SDK
        return bytes([0x0F]) + bits.to_bytes(2, "little")

    def _on_connection(self, connection) -> None:
        super()._on_connection(connection)
        connection.on("disconnection", lambda _reason: self._close_streams())

    # --- commands
    def _on_command(self, conn, value: bytes) -> None:
        self.counters.writes.append(bytes(value))
        self._mtu = int(getattr(conn, "att_mtu", 23))
        op = value[0] if value else 0
        mtype = value[1] if len(value) > 1 else 0
        status, params = self._handle(op, mtype, bytes(value))
        reply = bytes([0xF0, op, mtype, status, 0]) + params
        self.responses.append(reply)
        self.spawn(self.device.indicate_subscribers(self.cp, reply))

    def _handle(self, op: int, mtype: int, value: bytes) -> tuple[int, bytes]:
        if op not in (1, 2, 3, 4, 5, 6):
            return 1, b""
        if len(value) < 2:
            return 4, b""
        if mtype not in KNOWN_TYPES:
            return 2, b""
        if op == 2 and mtype == SDK:
            if not self.sdk_supported:
                return 3, b""
            if self.sdk_mode:
                return 6, b""
            self.sdk_mode = True
            self._close_streams()
            return 0, b""
        if op == 3 and mtype == SDK:
            if not self.sdk_mode:
                return 6, b""
            self.sdk_mode = False
            self._close_streams()
            return 0, b""
        if mtype not in (ACC, GYRO) or (mtype == GYRO and not self.sdk_mode):
            return 3, b""  # only ACC and gyro are emulated; gyro needs SDK mode
        rates = SDK_RATES if self.sdk_mode else (52,)
        ranges = RANGES[mtype] if self.sdk_mode else (8,)
        if op == 1:
            return 0, (bytes([0, len(rates)]) + b"".join(struct.pack("<H", r) for r in rates)
                       + bytes([1, 1, 16, 0, 2, len(ranges)])
                       + b"".join(struct.pack("<H", r) for r in ranges) + bytes([4, 1, 3]))
        if op == 3:
            if mtype not in self.active:
                return 6, b""
            del self.active[mtype]
            return 0, b""
        if op != 2:
            return 1, b""
        settings = _parse_settings(value[2:])
        if settings is None:
            return 5, b""
        if mtype in self.active:
            return 6, b""
        if settings.get(1, 16) != 16:
            return 7, b""
        if settings.get(0) not in rates or any(r != settings[0] for r, _ in self.active.values()):
            return 8, b""  # the streams share the IMU's one output rate
        range_ = settings.get(2, ranges[-1] if mtype == GYRO else 8)
        if range_ not in ranges:
            return 9, b""
        if settings.get(4, 3) != 3:
            return 11, b""
        self.active[mtype] = (settings[0], range_)
        self._ensure_streaming(settings[0])
        return 0, bytes([5, 1]) + struct.pack("<f", range_ / 2 ** 15)

    def _close_streams(self) -> None:
        self.active.clear()
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None

    # --- data
    def _ensure_streaming(self, rate: int) -> None:
        if self._stream is None:
            self._stream = self.spawn(self._run(rate))

    async def _run(self, rate: int) -> None:
        """Sample at ``rate`` on the device clock; each active stream frames its samples."""
        sim = ShankSim(rate_hz=float(rate), seed=self.seed)
        ticker = Ticker(float(rate))
        t0_ns = DEFAULT_TIME_NS + int(asyncio.get_running_loop().time() * 1e9)
        pending: dict[int, list[tuple[int, np.ndarray]]] = {ACC: [], GYRO: []}
        while True:
            n = ticker.due()
            if n:
                b = sim.generate(n)
                for i in range(n):
                    t_ns = t0_ns + (ticker.done + i) * 1_000_000_000 // rate
                    for mtype, vec in ((ACC, b.acc_m_s2[i] / G),
                                       (GYRO, np.degrees(b.gyr_rad_s[i]))):
                        if mtype in self.active:
                            pending[mtype].append((t_ns, vec))
                ticker.advance(n)
                for mtype, rows in pending.items():
                    while len(rows) >= self.samples_per_frame:
                        chunk, rows[:] = rows[:self.samples_per_frame], \
                            rows[self.samples_per_frame:]
                        await self._send(mtype, chunk)
            await ticker.sleep()

    async def _send(self, mtype: int, rows: list[tuple[int, np.ndarray]]) -> None:
        if mtype not in self.active:
            return
        factor = self.active[mtype][1] / 2 ** 15
        vals = np.array([v for _, v in rows])
        raw = np.clip(np.rint(vals / factor), -32768, 32767).astype(np.int64)
        frame = bytes([mtype]) + struct.pack("<QB", rows[-1][0], 0x80) + \
            delta_frame_content(raw)
        if len(frame) > self._mtu - 3 and len(rows) > 1:  # too long for the link: two frames
            half = len(rows) // 2
            await self._send(mtype, rows[:half])
            await self._send(mtype, rows[half:])
            return
        if await self.notify(self.data, frame):
            self.sent.frames[mtype].append(frame)
            self.sent.t_ns[mtype].extend(t for t, _ in rows)
            self.sent.values[mtype].extend(raw * factor)


def _parse_settings(raw: bytes) -> dict[int, int] | None:
    """A start command's settings (``type 01 value``: rate, resolution, range u16; channels u8),
    None if they do not parse."""
    sizes = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1}
    out: dict[int, int] = {}
    pos = 0
    while pos < len(raw):
        if pos + 2 > len(raw) or raw[pos] not in sizes or raw[pos + 1] != 1:
            return None
        size = sizes[raw[pos]]
        if pos + 2 + size > len(raw):
            return None
        out[raw[pos]] = int.from_bytes(raw[pos + 2:pos + 2 + size], "little")
        pos += 2 + size
    return out


def demo(link: LocalLink, impairments: Impairments) -> tuple[PolarPeripheral, int]:
    """The Verity Sense ``python -m tests.emulators`` serves, and the RSSI the host sees."""
    return PolarPeripheral(link, "Polar Sense 1A2B3C4D", "A0:9E:1A:00:00:01", impairments), -70
