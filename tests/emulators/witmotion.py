"""An emulated WitMotion BWT901BLE: service ffe5, 0x55 0x61 notifications on ffe4, commands on ffe9.

Like the real sensor it samples from power-on (10 Hz until told otherwise) and notifies
whoever has subscribed; the output-rate register (``FF AA 03 rr 00``) is only accepted within
10 s of the unlock command (``FF AA 69 88 B5``). A register read (``FF AA 27 rr 00``) is
answered as the vendor's SDK (WITMOTION/WitBluetooth_BWT901BLE5_0) reads it: a 20-byte
notification on the data characteristic, ``55 71``, the register number (low byte, high byte),
then that register's and the next 7 registers' values as int16 little-endian; register 0x64 is
the cell voltage in units of 10 mV (``battery_v``). The data come from
:class:`dorsimeter.sim.ShankSim`: acceleration in g, rate in °/s and the sensor's
roll/pitch/yaw, quantised on the wire by
:func:`dorsimeter.wire.witmotion.encode_ble_packet`. Every sample sent is kept in ``sent``
so a test can compare what the host decoded with what went onto the link.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from bumble.gatt import Service
from bumble.link import LocalLink
from scipy.spatial.transform import Rotation

from dorsimeter.sim import ShankSim
from dorsimeter.types import GRAVITY_M_S2
from dorsimeter.wire import witmotion
from tests.emulators.peripheral import Impairments, Peripheral, Ticker, uuid128_list

# the BWT901BLE's GATT layout, as the vendor's app and SDK use it (a base of …-00805f9a34fb)
SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"
NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_UUID = "0000ffe9-0000-1000-8000-00805f9a34fb"
DEFAULT_RATE_HZ = 10.0
UNLOCK_WINDOW_S = 10.0
READ_REGISTER = bytes.fromhex("ffaa27")  # + register, 0x00: the SDK's ``get_readBytes``
REG_BATTERY = 0x64  # the SDK's Android/Unity examples: volts = int16 at bytes 4-5 / 100
_CODE_TO_HZ = {code: float(hz) for hz, code in witmotion.RATE_CODES.items()}


@dataclass
class SentSamples:
    """Values handed to the encoder, one row per notification that went onto the link."""

    acc_g: list[np.ndarray] = field(default_factory=list)
    gyr_dps: list[np.ndarray] = field(default_factory=list)
    angle_deg: list[np.ndarray] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.array(self.acc_g).reshape(-1, 3), np.array(self.gyr_dps).reshape(-1, 3),
                np.array(self.angle_deg).reshape(-1, 3))


def wit_angles_deg(sensor_quat_wxyz: np.ndarray) -> np.ndarray:
    """Roll, pitch, yaw (WitMotion's convention: R = Rz(yaw)·Ry(pitch)·Rx(roll)) of quaternions."""
    rot = Rotation.from_quat(np.asarray(sensor_quat_wxyz).reshape(-1, 4), scalar_first=True)
    return rot.as_euler("ZYX", degrees=True)[:, ::-1]


class WitMotionPeripheral(Peripheral):
    """The emulated sensor; ``autostart=False`` leaves streaming to :meth:`stream_for`."""

    def __init__(self, link: LocalLink, name: str = "WT901BLE68",
                 address: str = "C0:57:17:00:00:01", impairments: Impairments | None = None,
                 seed: int = 0, autostart: bool = True, battery_v: float = 3.85) -> None:
        super().__init__(link, name, address, impairments)
        self.battery_v = battery_v  # the cell now; a test may change it while streaming
        self.register_reads: list[int] = []
        self.seed = seed
        self.sim = ShankSim(rate_hz=DEFAULT_RATE_HZ, seed=seed)
        self._ready: deque[tuple[bytes, np.ndarray, np.ndarray, np.ndarray]] = deque()
        self.rate_hz = DEFAULT_RATE_HZ
        self.sent = SentSamples()
        self.rate_changes: list[float] = []
        self._unlocked_until = -1.0
        self._rate_changed = asyncio.Event()
        self.autostart = autostart

    def services(self) -> list[Service]:
        write = self.writable(WRITE_UUID, self._on_command)
        return [Service(SERVICE_UUID, [self.stream(NOTIFY_UUID), write])]

    def advertisement(self) -> tuple[bytes, bytes]:
        # WitMotion's UUIDs sit on a non-standard base (…-00805f9a34fb), so they are 128-bit
        return self.named_advertisement(uuid128_list(SERVICE_UUID))

    async def start(self) -> WitMotionPeripheral:
        await super().start()
        if self.autostart:
            self.spawn(self._run())
        return self

    # --- commands
    def _on_command(self, value: bytes) -> None:
        now = asyncio.get_running_loop().time()
        if value == witmotion.UNLOCK:
            self._unlocked_until = now + UNLOCK_WINDOW_S
        elif len(value) == 5 and value[:3] == b"\xff\xaa\x03" and now <= self._unlocked_until:
            hz = _CODE_TO_HZ.get(value[3])
            if hz is not None:
                self._set_rate(hz)
        elif len(value) == 5 and value[:3] == READ_REGISTER:
            self.register_reads.append(value[3])
            self.spawn(self.notify(self.data, self._register_reply(value[3])))

    def _registers(self) -> dict[int, int]:
        """The registers the emulator models (any other reads as 0)."""
        return {REG_BATTERY: round(self.battery_v * 100),
                0x03: witmotion.RATE_CODES.get(self.rate_hz, 0)}  # RRATE

    def _register_reply(self, reg: int) -> bytes:
        """``55 71 RegL RegH`` + 8 registers from ``reg`` on (16 bytes): 20 bytes in all."""
        regs = self._registers()
        return b"\x55\x71" + struct.pack("<H8h", reg, *(regs.get(reg + k, 0) for k in range(8)))

    def _set_rate(self, hz: float) -> None:
        self.rate_hz = hz
        self.sim = ShankSim(rate_hz=hz, seed=self.seed)  # the simulated session starts afresh
        self._ready.clear()
        self.rate_changes.append(hz)
        self._rate_changed.set()

    # --- data
    def _refill(self, n: int) -> None:
        """Simulate the next ``n`` samples and encode them, ready to send."""
        b = self.sim.generate(n)
        acc_g = b.acc_m_s2 / GRAVITY_M_S2
        gyr_dps = np.degrees(b.gyr_rad_s)
        ang = wit_angles_deg(b.truth["sensor_quat"])
        pkts = witmotion.encode_ble_packet(acc_g, gyr_dps, ang)
        size = witmotion.BLE_PACKET_BYTES
        self._ready.extend((pkts[i * size:(i + 1) * size], acc_g[i], gyr_dps[i], ang[i])
                           for i in range(n))

    async def _send_one(self) -> bool:
        if not self._ready:
            self._refill(max(1, int(self.rate_hz // 10)))
        pkt, acc_g, gyr_dps, ang = self._ready.popleft()
        ok = await self.notify(self.data, pkt)
        if ok:
            self.sent.acc_g.append(acc_g)
            self.sent.gyr_dps.append(gyr_dps)
            self.sent.angle_deg.append(ang)
        return ok

    async def _run(self) -> None:
        """Sample forever at the current rate, like the real sensor; while nobody listens the
        packets go nowhere (counted in ``counters.unsent``)."""
        while True:
            ticker = Ticker(self.rate_hz)
            self._rate_changed.clear()
            while not self._rate_changed.is_set():
                n = ticker.due()
                for _ in range(n):
                    await self._send_one()
                ticker.advance(n)
                await ticker.sleep()

    async def stream_for(self, rate_hz: float, seconds: float) -> int:
        """Send ``rate_hz × seconds`` samples at ``rate_hz`` (benchmarks); returns how many."""
        self._set_rate(rate_hz)
        ticker = Ticker(rate_hz)
        n_total = int(round(rate_hz * seconds))
        done = 0
        while done < n_total:
            n = min(ticker.due(), n_total - done)
            for _ in range(n):
                await self._send_one()
            done += n
            ticker.advance(n)
            await ticker.sleep()
        return done


def demo(link: LocalLink, impairments: Impairments) -> tuple[WitMotionPeripheral, int]:
    """The WitMotion ``python -m tests.emulators`` serves, and the RSSI the host sees it at."""
    return WitMotionPeripheral(link, "WT901BLE68", "C0:57:17:00:00:01", impairments), -67
