"""ST LSM6DSO / LSM6DSOX (WHO_AM_I 0x6C) or LSM6DS3TR-C (0x6A) 6-axis IMU on I2C, polled on
data-ready.

Set-up: ±4 g (0.122 mg/LSB), ±1000 dps (35 mdps/LSB), block data update, address auto-increment;
the registers used, their codes and these sensitivities are the same on all three (DS12140,
DS13693 for the DSOX, DS11873 for the DS3TR-C). The parts' output rates are 26, 52, 104, 208 and
416 Hz: ``odr_hz`` is the true one (the node's DT_US), ``rate_hz`` the nominal rate asked.
``read()`` returns the sample if a new one is ready (call it faster than the output rate).
An LSM6DSO32 answers 0x6C too but its code for ±4 g means ±8 g: it is not supported.
"""

import struct

ADDR = 0x6A  # SDO/SA0 low; 0x6B when high
WHO_AM_I, WHO_AM_I_VALUE = 0x0F, 0x6C
WHO_AM_I_DS3TRC = 0x6A
CTRL1_XL, CTRL2_G, CTRL3_C, STATUS_REG, OUTX_L_G = 0x10, 0x11, 0x12, 0x1E, 0x22
ODR_CODES = {25: 0x2, 50: 0x3, 100: 0x4, 200: 0x5, 400: 0x6}  # 26, 52, 104, 208, 416 Hz
ODR_HZ = {25: 26.0, 50: 52.0, 100: 104.0, 200: 208.0, 400: 416.0}
FS_XL_4G, FS_G_1000 = 0x2 << 2, 0x2 << 2
ACC_M_S2_PER_LSB = 0.122e-3 * 9.80665  # mg is standard gravity (datasheet)
GYR_RAD_S_PER_LSB = 35e-3 * 3.141592653589793 / 180.0


class Lsm6dso:
    kind = 2
    has_quat = False

    def __init__(self, i2c, clock, addr=ADDR, rate_hz=100):
        self.i2c, self.clock, self.addr = i2c, clock, addr
        who = i2c.readfrom_mem(addr, WHO_AM_I, 1)[0]
        if who not in (WHO_AM_I_VALUE, WHO_AM_I_DS3TRC):
            raise OSError(f"LSM6DSO not found (WHO_AM_I 0x{who:02x})")
        i2c.writeto_mem(addr, CTRL3_C, bytes([0x44]))  # BDU | IF_INC
        self.rate_hz = 0
        self.odr_hz = 0.0
        self.set_rate(rate_hz)

    def set_rate(self, rate_hz):
        code = ODR_CODES.get(rate_hz)
        if code is None:
            return self.rate_hz
        self.i2c.writeto_mem(self.addr, CTRL1_XL, bytes([(code << 4) | FS_XL_4G]))
        self.i2c.writeto_mem(self.addr, CTRL2_G, bytes([(code << 4) | FS_G_1000]))
        self.rate_hz = rate_hz
        self.odr_hz = ODR_HZ[rate_hz]
        return rate_hz

    def read(self):
        status = self.i2c.readfrom_mem(self.addr, STATUS_REG, 1)[0]
        if status & 0x03 != 0x03:  # XLDA and GDA
            return []
        raw = self.i2c.readfrom_mem(self.addr, OUTX_L_G, 12)
        gx, gy, gz, ax, ay, az = struct.unpack("<6h", raw)
        g, a = GYR_RAD_S_PER_LSB, ACC_M_S2_PER_LSB
        return [(self.clock.ticks_us(), (ax * a, ay * a, az * a), (gx * g, gy * g, gz * g), None)]
