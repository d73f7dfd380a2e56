"""An emulated Movella (Xsens) DOT, from the Movella DOT BLE Services Specification.

GATT as the specification lays it out (base ``1517xxxx-4947-11e9-8646-d663bd873d93``):
configuration service ``1000`` (Device Info ``1001`` read, Device Control ``1002`` read/write, 32
bytes), measurement service ``2000`` (Control ``2001`` read/write, 3 bytes; long, medium and short
payload ``2002``-``2004`` notify) and battery service ``3000`` (Battery ``3001`` read/notify:
level %, charging). It advertises its device tag as its name ("Movella DOT" until renamed) and
Xsens' manufacturer data (company 0x0886, then its address); no service UUID.

Like the sensor: the output rate is Device Control's bytes 24-25, changed by a write whose visit
index has bit 4 set, to one of the rates the specification lists (any other write leaves it);
the Control value ``01 01 mode`` starts a measurement in a payload mode the firmware has (custom
mode 5 = 26 unless ``custom_mode_5=False``, an old firmware), ``01 00 mode`` stops it, and a
value outside the specification is not taken (the read-back shows the old value). Streaming stops
when the link drops; the µs clock runs on (it starts near its 2³² wrap so tests cross it).

The samples are :class:`dorsimeter.sim.ShankSim`'s: the sensor's orientation (sensor to ENU),
acceleration in m/s² and angular velocity in °/s, packed as float32 in the 44 bytes of custom
mode 5 at the start of the 63-byte long payload. What went onto the link is kept in ``sent``.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

import numpy as np
from bumble.core import AdvertisingData
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.link import LocalLink

from dorsimeter.sim import ShankSim
from tests.emulators.peripheral import NOTIFY, READ, WRITE, Impairments, Peripheral, Ticker

BASE = "1517{:04x}-4947-11e9-8646-d663bd873d93"
CONFIG_SERVICE, DEVICE_INFO, DEVICE_CONTROL = BASE.format(0x1000), BASE.format(0x1001), \
    BASE.format(0x1002)
MEASUREMENT_SERVICE, CONTROL = BASE.format(0x2000), BASE.format(0x2001)
LONG_PAYLOAD, MEDIUM_PAYLOAD, SHORT_PAYLOAD = (BASE.format(0x2002), BASE.format(0x2003),
                                               BASE.format(0x2004))
BATTERY_SERVICE, BATTERY = BASE.format(0x3000), BASE.format(0x3001)
XSENS_COMPANY_ID = 0x0886
#: Device Control: "output rate": 1, 4, 10, 12, 15, 20, 30, 60, 120 Hz (120: recording only)
OUTPUT_RATES = (1, 4, 10, 12, 15, 20, 30, 60, 120)
#: the payload modes of the specification (Control, "payload mode")
PAYLOAD_MODES = (1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26)
CUSTOM_MODE_5 = 26
DEFAULT_RATE_HZ = 60


@dataclass
class SentPackets:
    """Each custom mode 5 packet that went onto the link."""

    t_us: list[int] = field(default_factory=list)
    quat: list[np.ndarray] = field(default_factory=list)
    acc_m_s2: list[np.ndarray] = field(default_factory=list)
    gyr_dps: list[np.ndarray] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (np.array(self.t_us, dtype=np.int64), np.array(self.quat).reshape(-1, 4),
                np.array(self.acc_m_s2).reshape(-1, 3), np.array(self.gyr_dps).reshape(-1, 3))


def _device_control(tag: str, rate_hz: int) -> bytearray:
    """The 32-byte Device Control value: visit index, identifying, power options, timeouts
    (x 0 min 0 s... the defaults), tag length, tag (16), output rate, filter profile, reserved."""
    raw = tag.encode()[:16]
    return bytearray(bytes([0, 0, 0, 10, 0, 30, 0, len(raw)]) + raw.ljust(16, b"\0")
                     + struct.pack("<HB", rate_hz, 0) + bytes(5))


class MovellaPeripheral(Peripheral):
    """The emulated DOT; ``battery_pct`` its charge, ``custom_mode_5=False`` a firmware that
    lacks the mode."""

    def __init__(self, link: LocalLink, name: str = "Movella DOT",
                 address: str = "D4:22:CD:00:00:01", impairments: Impairments | None = None,
                 seed: int = 0, battery_pct: int = 77, custom_mode_5: bool = True,
                 clock_start_us: int = (1 << 32) - 3_000_000) -> None:
        super().__init__(link, name, address, impairments)
        self.seed = seed
        self.battery_pct = battery_pct
        self.modes = tuple(m for m in PAYLOAD_MODES if custom_mode_5 or m != CUSTOM_MODE_5)
        self.device_control = _device_control(name, DEFAULT_RATE_HZ)
        self.control = bytearray([1, 0, CUSTOM_MODE_5 if custom_mode_5 else 2])
        self.sent = SentPackets()
        self.rate_changes: list[int] = []
        self.starts = 0
        self._clock_start_us = clock_start_us
        self._clock_t0: float | None = None
        self._stream: asyncio.Task | None = None

    @property
    def rate_hz(self) -> int:
        return struct.unpack_from("<H", self.device_control, 24)[0]

    def services(self) -> list[Service]:
        info = Characteristic(DEVICE_INFO, READ, Characteristic.READABLE, CharacteristicValue(
            read=lambda _c: bytes.fromhex(self.address.replace(":", ""))[::-1]
            + bytes([2, 6, 0]) + bytes(25)))  # address, firmware 2.6.0, build, serial...
        both = READ | WRITE
        perm = Characteristic.READABLE | Characteristic.WRITEABLE
        dev_control = Characteristic(DEVICE_CONTROL, both, perm, CharacteristicValue(
            read=lambda _c: bytes(self.device_control), write=self._on_device_control))
        control = Characteristic(CONTROL, both, perm, CharacteristicValue(
            read=lambda _c: bytes(self.control), write=self._on_control))
        return [Service(CONFIG_SERVICE, [info, dev_control]),
                Service(MEASUREMENT_SERVICE, [control, self.stream(LONG_PAYLOAD, bytes(63)),
                                              Characteristic(MEDIUM_PAYLOAD, NOTIFY,
                                                             Characteristic.READABLE, bytes(40)),
                                              Characteristic(SHORT_PAYLOAD, NOTIFY,
                                                             Characteristic.READABLE, bytes(20))]),
                self.battery_service(lambda: bytes([self.battery_pct, 0]), BATTERY_SERVICE,
                                     BATTERY)]

    def advertisement(self) -> tuple[bytes, bytes]:
        mac_le = bytes.fromhex(self.address.replace(":", ""))[::-1]
        return self.named_advertisement((AdvertisingData.MANUFACTURER_SPECIFIC_DATA,
                                         struct.pack("<H", XSENS_COMPANY_ID) + mac_le))

    async def start(self) -> MovellaPeripheral:
        await super().start()
        self._clock_t0 = asyncio.get_running_loop().time()  # the clock runs from power-on
        return self

    def _on_connection(self, connection) -> None:
        super()._on_connection(connection)
        connection.on("disconnection", lambda _reason: self._stop())  # streaming ends

    # --- the device clock: µs, uint32, wrapping
    def _now_us(self) -> int:
        now = asyncio.get_running_loop().time()
        if self._clock_t0 is None:
            self._clock_t0 = now
        return self._clock_start_us + int(round((now - self._clock_t0) * 1e6))

    # --- writes
    def _on_device_control(self, _conn, value: bytes) -> None:
        self.counters.writes.append(bytes(value))
        if len(value) != 32 or not value[0] & 0x10:
            return  # only the output rate is emulated; other visits leave the value
        rate = struct.unpack_from("<H", value, 24)[0]
        if rate in OUTPUT_RATES:
            self.device_control[24:26] = struct.pack("<H", rate)
            self.rate_changes.append(rate)

    def _on_control(self, _conn, value: bytes) -> None:
        self.counters.writes.append(bytes(value))
        if len(value) != 3 or value[0] != 1 or value[1] not in (0, 1) or value[2] not in self.modes:
            return  # not a measurement command of the specification: not taken
        self._stop()
        self.control[:] = value
        if value[1] == 1:
            self.starts += 1
            self._stream = self.spawn(self._run(value[2]))

    def _stop(self) -> None:
        self.control[1] = 0
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None

    # --- data
    async def _run(self, mode: int) -> None:
        """Stream at the output rate (real time: at most 60 Hz) while the measurement runs;
        custom mode 5 packets (other modes: accepted, nothing emulated)."""
        if mode != CUSTOM_MODE_5:
            return
        rate = min(self.rate_hz, 60)
        sim = ShankSim(rate_hz=float(rate), seed=self.seed)
        ticker = Ticker(float(rate))
        t_first = self._now_us()
        while True:
            n = ticker.due()
            if n:
                b = sim.generate(n)
                q = b.truth["sensor_quat"] if b.truth else np.tile([1.0, 0, 0, 0], (n, 1))
                for i in range(n):
                    t_us = (t_first + int(round((ticker.done + i) * 1e6 / rate))) % (1 << 32)
                    await self._send(t_us, q[i], b.acc_m_s2[i], np.degrees(b.gyr_rad_s[i]))
                ticker.advance(n)
            await ticker.sleep()

    async def _send(self, t_us: int, quat, acc, gyr_dps) -> None:
        vals = np.concatenate([quat, acc, gyr_dps]).astype("<f4")
        pkt = struct.pack("<I", t_us) + vals.tobytes() + bytes(63 - 44)
        if await self.notify(self.data, pkt):
            f = vals.astype(float)
            self.sent.t_us.append(t_us)
            self.sent.quat.append(f[0:4])
            self.sent.acc_m_s2.append(f[4:7])
            self.sent.gyr_dps.append(f[7:10])


def demo(link: LocalLink, impairments: Impairments) -> tuple[MovellaPeripheral, int]:
    """The DOT ``python -m tests.emulators`` serves, and the RSSI the host sees it at."""
    return MovellaPeripheral(link, "Movella DOT", "D4:22:CD:00:00:01", impairments), -62
