"""TDK InvenSense ICM-42688-P 6-axis IMU on I2C, polled on data-ready.

Set-up: accel ±4 g (8192 LSB/g), gyro ±1000 dps (32.8 LSB/dps), both low-noise mode. Output
registers are big-endian. ``read()`` returns the sample if a new one is ready.
"""

import struct

ADDR = 0x68  # AP_AD0 low; 0x69 when high
WHO_AM_I, WHO_AM_I_VALUE = 0x75, 0x47
PWR_MGMT0, GYRO_CONFIG0, ACCEL_CONFIG0 = 0x4E, 0x4F, 0x50
INT_STATUS, ACCEL_DATA_X1 = 0x2D, 0x1F
DATA_RDY = 0x08
ODR_CODES = {25: 0x0A, 50: 0x09, 100: 0x08, 200: 0x07, 400: 0x0F}  # 400 -> 500 Hz code
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
        self.rate_hz = 0
        self.set_rate(rate_hz)

    def set_rate(self, rate_hz):
        code = ODR_CODES.get(rate_hz)
        if code is None or rate_hz == 400:  # no 400 Hz ODR on this part
            return self.rate_hz
        self.i2c.writeto_mem(self.addr, GYRO_CONFIG0, bytes([FS_GYRO_1000DPS | code]))
        self.i2c.writeto_mem(self.addr, ACCEL_CONFIG0, bytes([FS_ACCEL_4G | code]))
        self.rate_hz = rate_hz
        self.odr_hz = float(rate_hz)  # this part's rates are exact
        return rate_hz

    def read(self):
        if not self.i2c.readfrom_mem(self.addr, INT_STATUS, 1)[0] & DATA_RDY:
            return []
        ax, ay, az, gx, gy, gz = struct.unpack(">6h", self.i2c.readfrom_mem(self.addr,
                                                                          ACCEL_DATA_X1, 12))
        a, g = ACC_M_S2_PER_LSB, GYR_RAD_S_PER_LSB
        return [(self.clock.ticks_us(), (ax * a, ay * a, az * a), (gx * g, gy * g, gz * g), None)]
