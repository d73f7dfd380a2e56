"""An emulated MbientLab MetaMotionR (BMI160) or MetaMotionS (BMI270) with MetaWear firmware.

Written from the open MetaWear SDK (mbientlab/MetaWear-SDK-Cpp: the register enums in
``accelerometer_bosch_register.h``, ``gyro_bosch_register.h``, ``settings_register.h`` and the
byte arrays of its tests: ``test/common.py``'s MetaMotionR and MetaMotionS module tables,
``test_accelerometer_bmi160.py``, ``test_accelerometer_bmi270.py``, ``test_gyro_bmi160.py``,
``test_settings.py``), not from our decoder:

- GATT: service ``326a9000-…`` with the command characteristic ``326a9001-…`` (write, write
  without response) and the notify characteristic ``326a9006-…``; the standard Battery Service
  (the SDKs' ``readBatteryLevelAsync``). Advertises "MetaWear" and its service.
- ``module 80`` reads answer the board's module info (MetaMotionR: acc ``03 80 01 01``, BMI160;
  gyro ``13 80 00 01``; MetaMotionS: ``03 80 04 00``, ``13 80 01 00``, BMI270; settings ``11 80
  00 03``); ``11 8c`` answers the battery state.
- Accelerometer and gyro: config (``03 03`` / ``13 03`` + conf + range), data interrupt enable,
  power mode, the data and packed-data subscriptions. A sensor streams only with a valid config
  (an ODR code the BMI160 does not have, or a range code it does not know, leaves it in error:
  silent), its interrupt enabled, a signal subscribed and its power mode on, as the SDK sets
  them. Unknown commands are ignored (kept in ``refused``).
- Data: packed notifications (BMI160 ``03 1c`` / ``13 07``, BMI270 ``03 05`` / ``13 05``, + 3
  samples of x, y, z int16 LE at the configured LSB per g and per °/s), or single samples
  (``03 04`` / ``13 05``, BMI270 ``03 04`` / ``13 04``).

It samples a simulated shank (:class:`dorsimeter.sim.ShankSim`) at the accelerometer's ODR (the
gyro is configured to the same one). The board keeps sampling when the link drops (its settings
survive a disconnection); what it produced meanwhile goes nowhere. Every packet is kept in
``sent`` with whether it went onto the link.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field

import numpy as np
from bumble.gatt import Service
from bumble.link import LocalLink

from dorsimeter.sim import ShankSim
from dorsimeter.types import GRAVITY_M_S2
from tests.emulators.peripheral import Impairments, Peripheral, Ticker, uuid128_list

SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"
#: ``test/common.py``: the boards' answers to ``module 80``
MODULE_INFO = {0x03: b"\x03\x80\x01\x01", 0x13: b"\x13\x80\x00\x01", 0x11: b"\x11\x80\x00\x03"}
MODULE_INFO_S = {**MODULE_INFO, 0x03: b"\x03\x80\x04\x00", 0x13: b"\x13\x80\x01\x00"}
#: (single, packed) data registers: ``accelerometer_bosch_register.h``, ``gyro_bosch_register.h``
DATA_REGS = {"BMI160": {0x03: (0x04, 0x1C), 0x13: (0x05, 0x07)},
             "BMI270": {0x03: (0x04, 0x05), 0x13: (0x04, 0x05)}}
#: BMI160 ACC_CONF / GYR_CONF output data rate codes (datasheet table; the SDK's enums)
ACC_ODR_HZ = {1: 25 / 32, 2: 25 / 16, 3: 25 / 8, 4: 25 / 4, 5: 12.5, 6: 25.0, 7: 50.0, 8: 100.0,
              9: 200.0, 10: 400.0, 11: 800.0, 12: 1600.0}
GYRO_ODR_HZ = {6: 25.0, 7: 50.0, 8: 100.0, 9: 200.0, 10: 400.0, 11: 800.0, 12: 1600.0, 13: 3200.0}
ACC_LSB_PER_G = {"BMI160": {0x03: 16384.0, 0x05: 8192.0, 0x08: 4096.0, 0x0C: 2048.0},
                 "BMI270": {0: 16384.0, 1: 8192.0, 2: 4096.0, 3: 2048.0}}
GYRO_LSB_PER_DPS = {0: 16.4, 1: 32.8, 2: 65.6, 3: 131.2, 4: 262.4}


@dataclass
class Sensor:
    """One BMI160 sensor's registers as the SDK writes them."""

    odr_hz: float | None = None
    lsb: float | None = None
    interrupt: bool = False
    power: bool = False
    packed: bool = False
    single: bool = False

    @property
    def streaming(self) -> bool:
        return (self.odr_hz is not None and self.lsb is not None and self.interrupt
                and self.power and (self.packed or self.single))


@dataclass
class SentPacket:
    module: int  # 0x03 acc, 0x13 gyro
    raw: np.ndarray  # (n, 3) int16 as sent
    lsb: float
    delivered: bool


@dataclass
class Sent:
    packets: list[SentPacket] = field(default_factory=list)

    def stream(self, module: int, delivered_only: bool = True) -> np.ndarray:
        """The values a stream sent, in g (acc) or °/s (gyro), one row per sample."""
        rows = [p.raw / p.lsb for p in self.packets
                if p.module == module and (p.delivered or not delivered_only)]
        return np.concatenate(rows) if rows else np.empty((0, 3))


def _i16(values: np.ndarray, lsb: float) -> np.ndarray:
    return np.clip(np.rint(values * lsb), -32768, 32767).astype("<i2")


class MetaWearPeripheral(Peripheral):
    """The emulated board; ``battery_pct`` is what its Battery Service and settings read."""

    def __init__(self, link: LocalLink, name: str = "MetaWear",
                 address: str = "F7:A1:2B:00:00:01", impairments: Impairments | None = None,
                 seed: int = 0, battery_pct: int = 91, chip: str = "BMI160",
                 module_info: dict | None = None) -> None:
        super().__init__(link, name, address, impairments)
        self.seed = seed
        self.battery_pct = battery_pct
        self.chip = chip
        self.module_info = dict(module_info if module_info is not None else
                                MODULE_INFO if chip == "BMI160" else MODULE_INFO_S)
        self.acc, self.gyro = Sensor(), Sensor()
        self.sent = Sent()
        self.refused: list[bytes] = []
        self.answers: list[bytes] = []
        self.sim: ShankSim | None = None
        self._changed = asyncio.Event()

    def services(self) -> list[Service]:
        command = self.writable(COMMAND_UUID, self._on_command)
        return [Service(SERVICE_UUID, [command, self.stream(NOTIFY_UUID)]),
                self.battery_service(lambda: bytes([self.battery_pct]))]

    def advertisement(self) -> tuple[bytes, bytes]:
        return self.named_advertisement(uuid128_list(SERVICE_UUID))

    async def start(self) -> MetaWearPeripheral:
        await super().start()
        self.spawn(self._run())
        return self

    # --- the firmware's register writes
    def _answer(self, value: bytes) -> None:
        self.answers.append(value)
        self.spawn(self.notify(self.data, value))

    def _on_command(self, value: bytes) -> None:
        if len(value) < 2:
            self.refused.append(value)
            return
        module, reg, args = value[0], value[1], value[2:]
        if reg == 0x80 and not args:
            info = self.module_info.get(module)
            self._answer(info if info is not None else bytes([module, 0x80]))
            return
        if module == 0x11 and reg == 0x8C and not args:
            self._answer(b"\x11\x8c" + struct.pack("<BH", self.battery_pct,
                                                   3600 + 6 * self.battery_pct))
            return
        sensor = {0x03: self.acc, 0x13: self.gyro}.get(module)
        if sensor is None or not self._sensor_write(module, sensor, reg, args, self.chip):
            self.refused.append(value)
            return
        self._changed.set()

    @staticmethod
    def _sensor_write(module: int, s: Sensor, reg: int, args: bytes, chip: str) -> bool:
        single_reg, packed_reg = DATA_REGS[chip][module]
        if reg == 0x03 and len(args) == 2:  # config: a code the chip lacks leaves it silent
            odrs, lsbs = (ACC_ODR_HZ, ACC_LSB_PER_G[chip]) if module == 0x03 else \
                (GYRO_ODR_HZ, GYRO_LSB_PER_DPS)
            s.odr_hz, s.lsb = odrs.get(args[0] & 0x0F), lsbs.get(args[1])
            return s.odr_hz is not None and s.lsb is not None
        if reg == 0x02 and len(args) == 2:
            s.interrupt = bool(args[0]) or (s.interrupt and not args[1])
            return True
        if reg == 0x01 and len(args) == 1:
            s.power = bool(args[0])
            return True
        if reg in (packed_reg, single_reg) and len(args) == 1:
            setattr(s, "packed" if reg == packed_reg else "single", bool(args[0]))
            return True
        return False

    # --- data
    async def _run(self) -> None:
        """Sample at the accelerometer's ODR while either sensor streams."""
        while True:
            self._changed.clear()
            if not (self.acc.streaming or self.gyro.streaming):
                await self._changed.wait()
                continue
            rate = float(self.acc.odr_hz or self.gyro.odr_hz or 100.0)
            if self.sim is None or self.sim.rate_hz != rate:
                self.sim = ShankSim(rate_hz=rate, seed=self.seed)
            per = 3 if (self.acc.packed or self.gyro.packed) else 1
            ticker = Ticker(rate / per)
            while not self._changed.is_set():
                due = ticker.due()
                for _ in range(due):
                    await self._send(self.sim.generate(per))
                ticker.advance(due)
                await ticker.sleep()

    async def _send(self, b) -> None:
        for module, s, values in ((0x03, self.acc, b.acc_m_s2 / GRAVITY_M_S2),
                                  (0x13, self.gyro, np.degrees(b.gyr_rad_s))):
            if not s.streaming or s.lsb is None:
                continue
            raw = _i16(values, s.lsb)
            single_reg, packed_reg = DATA_REGS[self.chip][module]
            reg = packed_reg if s.packed else single_reg
            rows = [raw] if s.packed else [raw[i:i + 1] for i in range(len(raw))]
            for r in rows:
                ok = await self.notify(self.data, bytes([module, reg]) + r.tobytes())
                self.sent.packets.append(SentPacket(module, r.astype(float), s.lsb, ok))


def demo(link: LocalLink, impairments: Impairments) -> tuple[MetaWearPeripheral, int]:
    """The MetaMotionR ``python -m tests.emulators`` serves, and the RSSI the host sees."""
    return MetaWearPeripheral(link, "MetaWear", "F7:A1:2B:00:00:01", impairments), -70
