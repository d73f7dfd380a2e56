"""IMU drivers against a register map: the I2C bus is the one thing that cannot run here, so
the fake sits at the bus (register reads and writes), below all driver code."""

from __future__ import annotations

import math
import struct

import pytest

from firmware_bridge.drivers.clock import FifoTimes
from firmware_bridge.drivers.icm42688 import Icm42688
from firmware_bridge.drivers.lsm6dso import Lsm6dso


class RegisterBus:
    """An I2C bus with one device: a 256-byte register file with auto-increment."""

    def __init__(self, addr: int, regs: dict[int, int]) -> None:
        self.addr = addr
        self.mem = bytearray(256)
        for r, v in regs.items():
            self.mem[r] = v
        self.writes: list[tuple[int, bytes]] = []

    def readfrom_mem(self, addr, reg, n):
        assert addr == self.addr
        return bytes(self.mem[reg:reg + n])

    def writeto_mem(self, addr, reg, data):
        assert addr == self.addr
        self.writes.append((reg, bytes(data)))
        self.mem[reg:reg + len(data)] = data


class Clock:
    def ticks_us(self):
        return 1234


def test_lsm6ds3trc_fifo_configuration_and_word_pattern():
    bus = RegisterBus(0x6A, {0x0F: 0x6A})
    imu = Lsm6dso(bus, Clock(), rate_hz=200)
    assert imu.part == "LSM6DS3TR-C"
    # FIFO bypass, ODRs 208 Hz ±4 g / ±1000 dps, no decimation, FIFO at 208 Hz continuous
    assert bus.writes == [(0x12, b"\x44"), (0x0A, b"\x00"), (0x10, bytes([0x58])),
                          (0x11, bytes([0x58])), (0x08, b"\x09"), (0x0A, bytes([0x2E]))]
    assert imu.read() == []  # DIFF_FIFO 0
    # six words waiting, the pattern at gyro x; the register file repeats one word, so the
    # sample reads (1000, 1000, 1000, 1000, 1000, 1000)
    bus.mem[0x3A:0x3E] = bytes((6, 0, 0, 0))
    bus.mem[0x3E:0x40] = struct.pack("<h", 1000)
    ((t, acc, gyr, q),) = imu.read()
    assert t == 1234 and q is None
    assert acc[0] == pytest.approx(1000 * 0.122e-3 * 9.80665)
    assert gyr[0] == pytest.approx(math.radians(35.0))
    # out of step (pattern at word 4 with nothing held): words 4 and 5 are skipped
    bus.mem[0x3A:0x3E] = bytes((8, 0, 4, 0))
    assert len(imu.read()) == 1
    assert imu.set_rate(123) == 200


def test_lsm6dso_fifo_configuration_and_tagged_words():
    bus = RegisterBus(0x6A, {0x0F: 0x6C})
    imu = Lsm6dso(bus, Clock(), rate_hz=200, check_scale=False)
    # FIFO bypass (emptied), ODRs 208 Hz with ±4 g / ±1000 dps, BDR 208 Hz both, continuous
    assert bus.writes == [(0x12, b"\x44"), (0x0A, b"\x00"), (0x10, bytes([0x58])),
                          (0x11, bytes([0x58])), (0x09, bytes([0x55])), (0x0A, b"\x06")]
    assert imu.read() == []  # DIFF_FIFO 0
    # one word waiting: a gyroscope word alone is no sample yet
    bus.mem[0x3A:0x3C] = bytes((1, 0))
    bus.mem[0x78:0x7F] = bytes(((0x01 << 3) | (2 << 1),)) + struct.pack("<3h", 1000, -1000, 0)
    assert imu.read() == []
    # its accelerometer word (same TAG_CNT) completes it
    bus.mem[0x78:0x7F] = bytes(((0x02 << 3) | (2 << 1),)) + struct.pack("<3h", 0, 0, 8197)
    ((t, acc, gyr, q),) = imu.read()
    assert t == 1234 and q is None
    assert acc[2] == pytest.approx(8197 * 0.122e-3 * 9.80665)
    assert gyr[0] == pytest.approx(math.radians(35.0)) and gyr[1] == pytest.approx(-gyr[0])


def test_icm42688_fifo_configuration_big_endian_and_scaling():
    bus = RegisterBus(0x68, {0x75: 0x47})
    imu = Icm42688(bus, Clock(), rate_hz=100)
    assert bus.writes == [(0x4E, b"\x0f"), (0x5F, b"\x07"), (0x16, b"\x00"),
                          (0x4F, bytes([0x28])), (0x50, bytes([0x48])), (0x4B, b"\x02"),
                          (0x16, b"\x40")]
    assert imu.read() == []  # FIFO_COUNT 0
    bus.mem[0x2E:0x30] = struct.pack(">H", 16)  # one packet 3
    bus.mem[0x30:0x40] = struct.pack(">B6hbH", 0x68, 0, 0, 8192, 328, 0, -328, 25, 0)
    ((t, acc, gyr, _),) = imu.read()
    assert t == 1234
    assert acc == pytest.approx((0.0, 0.0, 9.80665))
    assert gyr == pytest.approx((math.radians(10), 0.0, -math.radians(10)))
    bus.mem[0x31:0x33] = struct.pack(">h", -32768)  # not yet valid: skipped
    assert imu.read() == []
    with pytest.raises(OSError, match="WHO_AM_I 0x00"):
        Icm42688(RegisterBus(0x68, {}), Clock())


class StepClock:
    def __init__(self):
        self.now_us = 0

    def ticks_us(self):
        return self.now_us & 0xFFFFFFFF


def test_fifo_times_keep_the_spacing_and_stay_within_one_period_of_the_reads():
    clock = StepClock()
    times = FifoTimes(104.0)
    assert times.dt_us == 9615
    pair = ((0.0, 0.0, 9.8), (0.0, 0.0, 0.0))
    clock.now_us = 50_000
    first = [s[0] for s in times.stamp(clock, [pair] * 3)]
    assert first == [50_000 - 2 * 9615, 50_000 - 9615, 50_000]
    # read 3.1 ms after the next sample was due: it keeps the spacing
    clock.now_us = 50_000 + 9615 + 3100
    (t,) = (s[0] for s in times.stamp(clock, [pair]))
    assert t == 50_000 + 9615
    # the part's clock fast: its next sample is read 200 µs before the spacing predicts it, and
    # is placed at the read, not in the future
    clock.now_us = t + 9615 - 200
    (t2,) = (s[0] for s in times.stamp(clock, [pair]))
    assert t2 == clock.now_us
    # samples lost to an overflow: the newest is placed within one period of the read
    clock.now_us += 20 * 9615
    (t3,) = (s[0] for s in times.stamp(clock, [pair]))
    assert clock.now_us - 9615 < t3 <= clock.now_us
    # a read that left 5 samples in the FIFO: its newest is 5 periods older
    clock.now_us += 9615
    t4 = times.stamp(clock, [pair] * 2, behind=5)[-1][0]
    assert clock.now_us - 6 * 9615 < t4 <= clock.now_us - 5 * 9615
    # device time wraps at 2**32 µs
    clock.now_us = (1 << 32) + 100
    t5 = [s[0] for s in times.stamp(clock, [pair] * 2)]
    assert t5[1] < 9615 + 100 and t5[0] > (1 << 32) - 9615 - 1
