"""MbientLab MetaWear / MetaMotion boards: BMI160 (MetaMotionR, RL, C) or BMI270 (MetaMotionS).

The register protocol of the open MetaWear SDK (mbientlab/MetaWear-SDK-Cpp): every command and
every notification starts ``module, register``; the host writes commands without response to
``326a9001-…`` and the board notifies on ``326a9006-…`` (service ``326a9000-85cb-9195-d9dd-
464cfbbae75a``). A register read sets bit 0x80 of the register (``03 80``: the accelerometer's
module info, answered ``03 80 implementation revision``: BMI160 = 1, BMI270 = 4; the gyro's
BMI160 = 0, BMI270 = 1).

What we use (byte layouts as the SDK's tests hold them: ``test_accelerometer_bmi160.py``,
``test_accelerometer_bmi270.py``, ``test_gyro_bmi160.py``, ``test_settings.py``):

- accelerometer, module 0x03: config ``03 03 acc_conf acc_range``: acc_conf = ODR code | normal
  bandwidth 0x20 (BMI270: | 0x80, its performance filter; 100 Hz = 0x28, BMI270 0xa8); range
  ±2/4/8/16 g = 0x03/0x05/0x08/0x0c (BMI270: 0-3), 16384/8192/4096/2048 LSB per g; data
  interrupt enable ``03 02 01 00``, start ``03 01 01``; data ``03 04`` + x, y, z int16 LE, or
  packed ``03 1c`` (BMI270 ``03 05``) + three such samples.
- gyro, module 0x13: config ``13 03 gyr_conf gyr_range`` (same ODR codes, 25-3200 Hz, bandwidth
  0x20; range ±2000/1000/500/250/125 °/s = 0..4, 16.4 × 2^code LSB per °/s), enable ``13 02
  01 00``, start ``13 01 01``; data ``13 05`` (BMI270 ``13 04``), packed ``13 07`` (BMI270
  ``13 05``) + three samples.
- settings, module 0x11 (revision 3 and later): battery state read ``11 8c``, answered ``11 8c
  charge_% voltage_mV(uint16 LE)``.

Streaming data carry no device time and no counter (the SDK stamps them with the host's clock):
``t_s`` is a sample counter over the configured rate, ``seq`` that counter. Acceleration and
rotation arrive as two streams from the one IMU at one ODR; their samples are paired in order.
A lost notification of one stream shows as the other's backlog growing past one packet: its
oldest packet is then dropped (``stats.unpaired``, ``stats.lost``), so the pairs realign.
Each ``feed()`` is one notification (BLE delivers them whole); a data notification is known by
its module, register and length, so one decoder reads either chip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dorsimeter.types import GRAVITY_M_S2, ImuBatch

SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"

ACC, GYRO, SETTINGS = 0x03, 0x13, 0x11  # modules
READ = 0x80
POWER_MODE, DATA_INTERRUPT_ENABLE, CONFIG = 0x01, 0x02, 0x03  # registers of both sensors
BATTERY_STATE = 0x0C
INFO = 0x00  # read as ``module 80``
BMI160, BMI270 = "BMI160", "BMI270"
#: the module info's implementation numbers -> chip
ACC_CHIPS = {1: BMI160, 4: BMI270}
GYRO_CHIPS = {0: BMI160, 1: BMI270}
#: data registers per chip: (single sample, packed)
ACC_DATA = {BMI160: (0x04, 0x1C), BMI270: (0x04, 0x05)}
GYRO_DATA = {BMI160: (0x05, 0x07), BMI270: (0x04, 0x05)}

#: ODR codes of the BMI160's ACC_CONF / GYR_CONF (the SDK's AccBmi160Odr, GyroBoschOdr)
ODR_CODES = {12.5: 5, 25.0: 6, 50.0: 7, 100.0: 8, 200.0: 9, 400.0: 10, 800.0: 11, 1600.0: 12,
             3200.0: 13}
NORMAL_BANDWIDTH = 0x20
#: rates both sensors offer, streamed packed (3 samples a notification) over BLE
RATES_HZ = (25.0, 50.0, 100.0, 200.0)
ACC_RANGE_CODES = {BMI160: {2: 0x03, 4: 0x05, 8: 0x08, 16: 0x0C}, BMI270: {2: 0, 4: 1, 8: 2, 16: 3}}
ACC_PERFORMANCE = {BMI160: 0x00, BMI270: 0x80}  # the BMI270's acc_filter_perf bit
ACC_LSB_PER_G = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}
GYRO_RANGE_CODES = {2000: 0, 1000: 1, 500: 2, 250: 3, 125: 4}
GYRO_LSB_PER_DPS = {2000: 16.4, 1000: 32.8, 500: 65.6, 250: 131.2, 125: 262.4}
ACC_RANGE_G, GYRO_RANGE_DPS = 16, 2000  # what we configure: a shank's impacts and swings fit
PACKED_SAMPLES = 3


def acc_config(rate_hz: float, range_g: int = ACC_RANGE_G, chip: str = BMI160) -> bytes:
    """``03 03 acc_conf acc_range`` (``mbl_mw_acc_bosch_write_acceleration_config``)."""
    return bytes([ACC, CONFIG, ACC_PERFORMANCE[chip] | NORMAL_BANDWIDTH | ODR_CODES[rate_hz],
                  ACC_RANGE_CODES[chip][range_g]])


def gyro_config(rate_hz: float, range_dps: int = GYRO_RANGE_DPS) -> bytes:
    """``13 03 gyr_conf gyr_range`` (``mbl_mw_gyro_bmi160_write_config``)."""
    return bytes([GYRO, CONFIG, NORMAL_BANDWIDTH | ODR_CODES[rate_hz],
                  GYRO_RANGE_CODES[range_dps]])


def read_command(module: int, register: int) -> bytes:
    return bytes([module, READ | register])


def start_commands(rate_hz: float, chip: str = BMI160) -> list[bytes]:
    """Acc + gyro of ``chip`` at ``rate_hz`` (one of ``RATES_HZ``), packed, in the SDK's order:
    configure, subscribe the packed signals, enable their data interrupts, start."""
    if rate_hz not in RATES_HZ:
        raise ValueError(f"MetaWear streams acc + gyro at {', '.join(f'{r:g}' for r in RATES_HZ)}"
                         f" Hz, not {rate_hz:g}")
    return [acc_config(rate_hz, chip=chip), gyro_config(rate_hz),
            bytes([ACC, ACC_DATA[chip][1], 1]), bytes([GYRO, GYRO_DATA[chip][1], 1]),
            bytes([ACC, DATA_INTERRUPT_ENABLE, 1, 0]), bytes([GYRO, DATA_INTERRUPT_ENABLE, 1, 0]),
            bytes([ACC, POWER_MODE, 1]), bytes([GYRO, POWER_MODE, 1])]


def stop_commands() -> list[bytes]:
    """Both sensors off and their data interrupts disabled: the same registers on either chip
    (the packed-data subscriptions, which differ, go with the connection)."""
    return [bytes([ACC, POWER_MODE, 0]), bytes([GYRO, POWER_MODE, 0]),
            bytes([ACC, DATA_INTERRUPT_ENABLE, 0, 1]), bytes([GYRO, DATA_INTERRUPT_ENABLE, 0, 1])]


def chips(acc_impl: int, gyro_impl: int) -> str | None:
    """The IMU the module info names, when both sensors are one we read, else None."""
    acc, gyro = ACC_CHIPS.get(acc_impl), GYRO_CHIPS.get(gyro_impl)
    return acc if acc is not None and acc == gyro else None


@dataclass(frozen=True)
class BatteryState:
    charge_pct: int
    voltage_mv: int


def parse_battery(data: bytes) -> BatteryState | None:
    """``11 8c charge voltage`` -> its state, else None."""
    if len(data) == 5 and data[0] == SETTINGS and data[1] == READ | BATTERY_STATE:
        return BatteryState(data[2], int.from_bytes(data[3:5], "little"))
    return None


def parse_info(data: bytes) -> tuple[int, int, int] | None:
    """``module 80 implementation revision …`` of a module we use -> (module, implementation,
    revision)."""
    if len(data) >= 4 and data[1] == READ | INFO and data[0] in (ACC, GYRO, SETTINGS):
        return data[0], data[2], data[3]
    return None


@dataclass
class MetaWearStats:
    packets: int = 0  # valid data notifications (acc or gyro)
    samples: int = 0  # paired samples delivered
    replies: int = 0  # info and battery answers
    bytes_skipped: int = 0
    resyncs: int = 0
    unpaired: int = 0  # samples of one stream dropped to realign the pairs
    lost: int = 0  # notifications that must have been lost (the other stream's surplus)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class MetaWearState:
    acc_raw: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))  # waiting for a pair
    gyr_raw: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))
    n: int = 0  # paired samples so far: the sample clock
    in_garbage: bool = False
    battery: BatteryState | None = None  # the last battery state answered
    info: dict[int, tuple[int, int]] = field(default_factory=dict)  # module -> (impl, rev)


#: (module, register, length) -> stream of the data notifications we decode, either chip
_DATA = {(module, reg, 2 + 6 * n): stream
         for module, regs, stream in ((ACC, ACC_DATA, "acc"), (GYRO, GYRO_DATA, "gyr"))
         for single, packed in regs.values()
         for reg, n in ((single, 1), (packed, PACKED_SAMPLES))}


class MetaWearDecoder:
    """Notifications of a BMI160 board streaming acc + gyro -> ImuBatch (m/s², rad/s) on a
    sample clock at ``rate_hz``. Never raises."""

    def __init__(self, rate_hz: float, side: str | None = None, range_g: int = ACC_RANGE_G,
                 range_dps: int = GYRO_RANGE_DPS) -> None:
        self.rate_hz = float(rate_hz)
        self.side = side
        self.acc_scale = GRAVITY_M_S2 / ACC_LSB_PER_G[range_g]
        self.gyr_scale = np.pi / 180.0 / GYRO_LSB_PER_DPS[range_dps]
        self.stats = MetaWearStats()
        self.state = MetaWearState()

    def feed(self, data: bytes) -> list[ImuBatch]:
        data = bytes(data)
        st = self.state
        stream = _DATA.get((data[0], data[1], len(data))) if len(data) >= 2 else None
        if stream is not None:
            raw = np.frombuffer(data, dtype="<i2", offset=2).astype(float).reshape(-1, 3)
            self.stats.packets += 1
            st.in_garbage = False
            if stream == "acc":
                st.acc_raw = np.concatenate([st.acc_raw, raw])
            else:
                st.gyr_raw = np.concatenate([st.gyr_raw, raw])
            return self._pairs(len(raw))
        battery = parse_battery(data)
        info = parse_info(data)
        if battery is not None or info is not None:
            self.stats.replies += 1
            st.in_garbage = False
            if battery is not None:
                st.battery = battery
            if info is not None:
                st.info[info[0]] = info[1:]
            return []
        if data:
            self.stats.bytes_skipped += len(data)
            self.stats.resyncs += not st.in_garbage
            st.in_garbage = True
        return []

    def _pairs(self, packet: int) -> list[ImuBatch]:
        st = self.state
        lead = len(st.acc_raw) - len(st.gyr_raw)
        if abs(lead) > packet:  # more than a packet ahead: the other stream lost one
            drop = abs(lead) - packet
            if lead > 0:
                st.acc_raw = st.acc_raw[drop:]
            else:
                st.gyr_raw = st.gyr_raw[drop:]
            self.stats.unpaired += drop
            self.stats.lost += -(-drop // packet)
            st.n += drop  # the sample clock goes on over the samples without a pair
        k = min(len(st.acc_raw), len(st.gyr_raw))
        if k == 0:
            return []
        acc, gyr = st.acc_raw[:k], st.gyr_raw[:k]
        st.acc_raw, st.gyr_raw = st.acc_raw[k:], st.gyr_raw[k:]
        idx = st.n + np.arange(k)
        st.n += k
        self.stats.samples += k
        return [ImuBatch(idx / self.rate_hz, acc * self.acc_scale, gyr * self.gyr_scale,
                         seq=idx, side=self.side)]
