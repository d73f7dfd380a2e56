"""IMU drivers against a register map: the I2C bus is the one thing that cannot run here, so
the fake sits at the bus (register reads and writes), below all driver code."""

from __future__ import annotations

import math
import struct

import pytest

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


def test_lsm6dso_configuration_and_scaling():
    bus = RegisterBus(0x6A, {0x0F: 0x6C})
    imu = Lsm6dso(bus, Clock(), rate_hz=200)
    assert bus.writes == [(0x12, b"\x44"), (0x10, bytes([0x58])), (0x11, bytes([0x58]))]
    assert imu.read() == []  # no data ready
    bus.mem[0x1E] = 0x03
    bus.mem[0x22:0x2E] = struct.pack("<6h", 1000, -1000, 0, 0, 0, 8197)
    ((t, acc, gyr, q),) = imu.read()
    assert t == 1234 and q is None
    assert acc[2] == pytest.approx(8197 * 0.122e-3 * 9.80665)  # ≈ 1 g (mg: standard gravity)
    assert gyr[0] == pytest.approx(math.radians(35.0)) and gyr[1] == pytest.approx(-gyr[0])
    assert imu.set_rate(123) == 200


def test_icm42688_configuration_big_endian_and_scaling():
    bus = RegisterBus(0x68, {0x75: 0x47})
    imu = Icm42688(bus, Clock(), rate_hz=100)
    assert bus.writes == [(0x4E, b"\x0f"), (0x4F, bytes([0x28])), (0x50, bytes([0x48]))]
    bus.mem[0x2D] = 0x08
    bus.mem[0x1F:0x2B] = struct.pack(">6h", 0, 0, 8192, 328, 0, -328)
    ((_, acc, gyr, _),) = imu.read()
    assert acc == pytest.approx((0.0, 0.0, 9.80665))
    assert gyr == pytest.approx((math.radians(10), 0.0, -math.radians(10)))
    with pytest.raises(OSError, match="WHO_AM_I 0x00"):
        Icm42688(RegisterBus(0x68, {}), Clock())
