"""ST LSM6DSO / LSM6DSOX (WHO_AM_I 0x6C) or LSM6DS3TR-C (0x6A) 6-axis IMU on I2C.

Set-up: ±4 g (0.122 mg/LSB), ±1000 dps (35 mdps/LSB), block data update, address auto-increment;
the control registers used, their codes and these sensitivities are the same on all three
(DS12140, DS13693 for the DSOX, DS11873 for the DS3TR-C; register map as in ST's
``lsm6dso_reg.h``). The parts' output rates are 26, 52, 104, 208 and 416 Hz: ``odr_hz`` is the
true one (the node's DT_US), ``rate_hz`` the nominal rate asked.

All three are read through their FIFO (continuous mode, gyroscope and accelerometer batched at
the output rate): a main loop that is late by up to the FIFO's depth (≥ 1.6 s at 208 Hz) loses
no sample. On the LSM6DSO(X) each FIFO word is a tag (sensor, 2-bit sample counter) and 6 data
bytes; a gyroscope and an accelerometer word with the same counter make one sample. The
LSM6DS3TR-C's FIFO (4 kbyte) is untagged: 16-bit words in the pattern gyro x, y, z, accel x, y,
z, FIFO_STATUS3/4 telling which word comes next (registers as in ST's ``lsm6ds3tr-c_reg.h``:
FIFO_CTRL3 decimation, FIFO_CTRL5 FIFO rate and mode, FIFO_STATUS1..4, FIFO_DATA_OUT 0x3E).

An LSM6DSO32 answers 0x6C too but its FS_XL code 10 means ±8 g (0.244 mg/LSB), so it would read
half the acceleration: the driver checks that the mean specific force over its first second is
near 1 g (it is, whatever the motion, unless in free fall: the mean of gravity plus a change of
velocity over 1 s) and scales by 0.244 mg/LSB when it is near 0.5 g.
"""

import struct

from firmware_bridge.drivers.clock import FifoTimes

ADDR = 0x6A  # SDO/SA0 low; 0x6B when high
WHO_AM_I, WHO_AM_I_VALUE = 0x0F, 0x6C
WHO_AM_I_DS3TRC = 0x6A
FIFO_CTRL3, FIFO_CTRL4 = 0x09, 0x0A
DS3_FIFO_CTRL3, DS3_FIFO_CTRL5, DS3_FIFO_DATA_OUT_L = 0x08, 0x0A, 0x3E
DS3_NO_DECIMATION = (1 << 3) | 1  # DEC_FIFO_GYRO, DEC_FIFO_XL: every sample in the FIFO
DS3_WORDS_PER_SAMPLE = 6
CTRL1_XL, CTRL2_G, CTRL3_C = 0x10, 0x11, 0x12
FIFO_STATUS1, FIFO_DATA_OUT_TAG = 0x3A, 0x78
FIFO_BYPASS, FIFO_CONTINUOUS = 0x00, 0x06
TAG_GYRO, TAG_ACC = 0x01, 0x02  # TAG_SENSOR: gyroscope NC, accelerometer NC
MAX_WORDS_PER_READ = 96  # bounds one call's I2C work (~48 samples); the rest waits in the FIFO
ODR_CODES = {25: 0x2, 50: 0x3, 100: 0x4, 200: 0x5, 400: 0x6}  # 26, 52, 104, 208, 416 Hz
ODR_HZ = {25: 26.0, 50: 52.0, 100: 104.0, 200: 208.0, 400: 416.0}
FS_XL_4G, FS_G_1000 = 0x2 << 2, 0x2 << 2
ACC_M_S2_PER_LSB = 0.122e-3 * 9.80665  # mg is standard gravity (datasheet)
ACC_M_S2_PER_LSB_DSO32 = 0.244e-3 * 9.80665  # the same code on an LSM6DSO32 is ±8 g
GYR_RAD_S_PER_LSB = 35e-3 * 3.141592653589793 / 180.0
SCALE_CHECK_S = 1.0  # how long the LSM6DSO32 check averages |a|


class Lsm6dso:
    kind = 2
    has_quat = False

    def __init__(self, i2c, clock, addr=ADDR, rate_hz=100, check_scale=True):
        self.i2c, self.clock, self.addr = i2c, clock, addr
        who = i2c.readfrom_mem(addr, WHO_AM_I, 1)[0]
        if who not in (WHO_AM_I_VALUE, WHO_AM_I_DS3TRC):
            raise OSError(f"LSM6DSO not found (WHO_AM_I 0x{who:02x})")
        self.tagged = who == WHO_AM_I_VALUE  # LSM6DSO(X) tagged FIFO, else the LSM6DS3TR-C's
        self.part = "LSM6DSO" if self.tagged else "LSM6DS3TR-C"
        self.acc_lsb = ACC_M_S2_PER_LSB
        self._acc = self._gyr = None  # FIFO words waiting for their partner: (counter, xyz)
        self._words = []  # LSM6DS3TR-C: the words of a sample read so far
        self.overruns = 0
        self._held = []
        i2c.writeto_mem(addr, CTRL3_C, bytes([0x44]))  # BDU | IF_INC
        self.rate_hz = 0
        self.odr_hz = 0.0
        self.set_rate(rate_hz)
        # samples the LSM6DSO32 check averages (it holds them back, then hands them on)
        self._check_n = int(SCALE_CHECK_S * self.odr_hz) if self.tagged and check_scale else 0

    def set_rate(self, rate_hz):
        code = ODR_CODES.get(rate_hz)
        if code is None:
            return self.rate_hz
        w = self.i2c.writeto_mem
        mode_reg = FIFO_CTRL4 if self.tagged else DS3_FIFO_CTRL5
        w(self.addr, mode_reg, bytes([FIFO_BYPASS]))  # empties the FIFO
        w(self.addr, CTRL1_XL, bytes([(code << 4) | FS_XL_4G]))
        w(self.addr, CTRL2_G, bytes([(code << 4) | FS_G_1000]))
        if self.tagged:
            w(self.addr, FIFO_CTRL3, bytes([(code << 4) | code]))  # BDR_GY | BDR_XL
            w(self.addr, FIFO_CTRL4, bytes([FIFO_CONTINUOUS]))
        else:
            w(self.addr, DS3_FIFO_CTRL3, bytes([DS3_NO_DECIMATION]))
            w(self.addr, DS3_FIFO_CTRL5, bytes([(code << 3) | FIFO_CONTINUOUS]))  # ODR_FIFO
        self._acc = self._gyr = None
        self._words = []
        self.rate_hz = rate_hz
        self.odr_hz = ODR_HZ[rate_hz]
        self._times = FifoTimes(self.odr_hz)
        return rate_hz

    def read(self):
        if not self.tagged:
            return self._read_ds3_fifo()
        out = self._read_fifo()
        if not self._check_n:
            return out
        self._held.extend(out)  # the first second is held back until the scale is known
        if len(self._held) < self._check_n:
            return []
        out, self._held, self._check_n = self._check_scale(self._held), [], 0
        return out

    def _check_scale(self, held):
        """LSM6DSO or LSM6DSO32: the mean |a| over the first second, read at ±4 g scaling, is
        ≈ 1 g on an LSM6DSO and ≈ 0.5 g on an LSM6DSO32; the split is at 0.75 g. Returns the
        samples, rescaled if it is an LSM6DSO32."""
        total = 0.0
        for _t, acc, _g, _q in held:
            total += (acc[0] ** 2 + acc[1] ** 2 + acc[2] ** 2) ** 0.5
        if total / len(held) >= 0.75 * 9.80665:
            return held
        self.acc_lsb = ACC_M_S2_PER_LSB_DSO32
        self.part = "LSM6DSO32"
        k = ACC_M_S2_PER_LSB_DSO32 / ACC_M_S2_PER_LSB
        return [(t, (a[0] * k, a[1] * k, a[2] * k), g, q) for t, a, g, q in held]

    def _read_fifo(self):
        st = self.i2c.readfrom_mem(self.addr, FIFO_STATUS1, 2)
        words = st[0] | ((st[1] & 0x03) << 8)
        if st[1] & 0x40:  # FIFO_OVR_IA: the loop was later than the FIFO is deep
            self.overruns += 1
        left = max(0, words - MAX_WORDS_PER_READ)
        words -= left
        a, g = self.acc_lsb, GYR_RAD_S_PER_LSB
        out = []
        for _ in range(words):
            word = self.i2c.readfrom_mem(self.addr, FIFO_DATA_OUT_TAG, 7)
            tag, cnt = word[0] >> 3, (word[0] >> 1) & 0x03
            x, y, z = struct.unpack_from("<3h", word, 1)
            if tag == TAG_GYRO:
                self._gyr = (cnt, (x * g, y * g, z * g))
            elif tag == TAG_ACC:
                self._acc = (cnt, (x * a, y * a, z * a))
            else:
                continue
            if self._acc is not None and self._gyr is not None and self._acc[0] == self._gyr[0]:
                out.append((self._acc[1], self._gyr[1]))
                self._acc = self._gyr = None
        return self._times.stamp(self.clock, out, (left + 1) // 2)

    def _read_ds3_fifo(self):
        st = self.i2c.readfrom_mem(self.addr, FIFO_STATUS1, 4)
        words = st[0] | ((st[1] & 0x07) << 8)
        pattern = st[2] | ((st[3] & 0x03) << 8)  # the next word's place in gx gy gz ax ay az
        if st[1] & 0x40:  # OVER_RUN
            self.overruns += 1
        if len(self._words) != pattern:  # out of step (an overrun): start at the next gyro x
            self._words = []
            skip = (DS3_WORDS_PER_SAMPLE - pattern) % DS3_WORDS_PER_SAMPLE
        else:
            skip = 0
        left = max(0, words - MAX_WORDS_PER_READ)
        words -= left
        a, g = self.acc_lsb, GYR_RAD_S_PER_LSB
        out = []
        for k in range(words):
            v = struct.unpack("<h", self.i2c.readfrom_mem(self.addr, DS3_FIFO_DATA_OUT_L, 2))[0]
            if k < skip:
                continue
            self._words.append(v)
            if len(self._words) == DS3_WORDS_PER_SAMPLE:
                gx, gy, gz, ax, ay, az = self._words
                out.append(((ax * a, ay * a, az * a), (gx * g, gy * g, gz * g)))
                self._words = []
        return self._times.stamp(self.clock, out, left // DS3_WORDS_PER_SAMPLE)
