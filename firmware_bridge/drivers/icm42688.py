"""TDK InvenSense ICM-42688-P 6-axis IMU on I2C, read through its FIFO.

Set-up: accel ±4 g (8192 LSB/g), gyro ±1000 dps (32.8 LSB/dps), both low-noise mode; the FIFO
in stream mode with accelerometer, gyroscope and temperature enabled, which gives the 16-byte
packet 3 (header, accel x y z, gyro x y z big-endian, temperature, 2-byte timestamp). The FIFO
holds 2 kbyte (128 packets: 1.28 s at 100 Hz), so a main loop that is late by less than that
loses nothing. Registers and packet layout from DS-000347 (as used by the ICM42688 driver of
finani/ICM42688, ``src/registers.h`` and ``ICM42688_FIFO::readFifo``).
"""

import struct

from firmware_bridge.drivers.clock import FifoTimes

ADDR = 0x68  # AP_AD0 low; 0x69 when high
WHO_AM_I, WHO_AM_I_VALUE = 0x75, 0x47
FIFO_CONFIG, FIFO_COUNTH, FIFO_DATA = 0x16, 0x2E, 0x30
SIGNAL_PATH_RESET, PWR_MGMT0, GYRO_CONFIG0, ACCEL_CONFIG0 = 0x4B, 0x4E, 0x4F, 0x50
FIFO_CONFIG1 = 0x5F
FIFO_STREAM, FIFO_BYPASS = 0x40, 0x00
FIFO_ACCEL_GYRO_TEMP = 0x07  # FIFO_ACCEL_EN | FIFO_GYRO_EN | FIFO_TEMP_EN: packet 3
FIFO_FLUSH = 0x02
PACKET_BYTES = 16
HEADER_EMPTY, HEADER_ACCEL_GYRO = 0x80, 0x60
INVALID = -32768  # what the FIFO holds for a sensor that has no valid sample yet
MAX_PACKETS_PER_READ = 48  # bounds one call's I2C work; the rest waits in the FIFO
ODR_CODES = {25: 0x0A, 50: 0x09, 100: 0x08, 200: 0x07}  # no 400 Hz output rate on this part
FS_GYRO_1000DPS, FS_ACCEL_4G = 0x1 << 5, 0x2 << 5
ACC_M_S2_PER_LSB = 9.80665 / 8192.0  # g is standard gravity (datasheet)
GYR_RAD_S_PER_LSB = 3.141592653589793 / 180.0 / 32.8


class Icm42688:
    kind = 3
    has_quat = False

    def __init__(self, i2c, clock, addr=ADDR, rate_hz=100):
        self.i2c, self.clock, self.addr = i2c, clock, addr
        who = i2c.readfrom_mem(addr, WHO_AM_I, 1)[0]
        if who != WHO_AM_I_VALUE:
            raise OSError(f"ICM-42688 not found (WHO_AM_I 0x{who:02x})")
        i2c.writeto_mem(addr, PWR_MGMT0, bytes([0x0F]))  # gyro and accel in low-noise mode
        i2c.writeto_mem(addr, FIFO_CONFIG1, bytes([FIFO_ACCEL_GYRO_TEMP]))
        self.rate_hz = 0
        self.set_rate(rate_hz)

    def set_rate(self, rate_hz):
        code = ODR_CODES.get(rate_hz)
        if code is None:
            return self.rate_hz
        w = self.i2c.writeto_mem
        w(self.addr, FIFO_CONFIG, bytes([FIFO_BYPASS]))
        w(self.addr, GYRO_CONFIG0, bytes([FS_GYRO_1000DPS | code]))
        w(self.addr, ACCEL_CONFIG0, bytes([FS_ACCEL_4G | code]))
        w(self.addr, SIGNAL_PATH_RESET, bytes([FIFO_FLUSH]))  # samples at the old rate go
        w(self.addr, FIFO_CONFIG, bytes([FIFO_STREAM]))
        self.rate_hz = rate_hz
        self.odr_hz = float(rate_hz)  # this part's rates are exact
        self._times = FifoTimes(self.odr_hz)
        return rate_hz

    def read(self):
        count = struct.unpack(">H", self.i2c.readfrom_mem(self.addr, FIFO_COUNTH, 2))[0]
        packets = count // PACKET_BYTES
        left = max(0, packets - MAX_PACKETS_PER_READ)
        packets -= left
        a, g = ACC_M_S2_PER_LSB, GYR_RAD_S_PER_LSB
        pairs = []
        for _ in range(packets):
            p = self.i2c.readfrom_mem(self.addr, FIFO_DATA, PACKET_BYTES)
            if p[0] & HEADER_EMPTY:
                break
            if p[0] & HEADER_ACCEL_GYRO != HEADER_ACCEL_GYRO:
                continue
            v = struct.unpack_from(">6h", p, 1)
            if INVALID in v:
                continue
            pairs.append(((v[0] * a, v[1] * a, v[2] * a), (v[3] * g, v[4] * g, v[5] * g)))
        return self._times.stamp(self.clock, pairs, left)
