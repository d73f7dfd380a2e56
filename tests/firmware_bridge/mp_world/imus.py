"""Register-level models of the IMUs the firmware drives, from their datasheets (MicroPython).

Each model answers I2C register reads and writes as the part does: WHO_AM_I, the configuration
registers that set output rate and full scale, data-ready status, and output registers in the
part's byte order and axis order, scaled by the full scale the firmware configured. The motion
is constant (``acc_m_s2``, ``gyr_rad_s``), so every decoded sample has one true value.
"""

import struct

G = 9.80665  # datasheet mg and g are standard gravity
DEG = 3.141592653589793 / 180.0


def _clip16(x):
    v = int(round(x))
    return 32767 if v > 32767 else (-32768 if v < -32768 else v)


class _Model:
    def __init__(self, world, acc_m_s2, gyr_rad_s, who_reg, who):
        self.w = world
        self.regs = bytearray(128)
        self.regs[who_reg] = who
        self.acc, self.gyr = acc_m_s2, gyr_rad_s
        self.odr_hz = 0.0
        self.last_index = -1  # index of the last sample read out
        self.t0_us = 0
        self.reads = 0
        self.writes = []

    def index(self):
        if self.odr_hz <= 0:
            return -1
        return int((self.w.now_us - self.t0_us) * self.odr_hz // 1000000)

    def ready(self):
        return self.index() > self.last_index

    def write(self, reg, data):
        self.writes.append((reg, bytes(data)))
        for k, b in enumerate(data):
            self.regs[reg + k] = b
        self.configure()


class Lsm6dsoModel(_Model):
    """ST LSM6DSO (DS12140): WHO_AM_I 0x6C at 0x0F; CTRL1_XL/CTRL2_G ODR codes 1..8 are
    12.5, 26, 52, 104, 208, 416, 833, 1666 Hz; STATUS_REG 0x1E XLDA|GDA; OUTX_L_G 0x22.. gyro
    x, y, z then accelerometer x, y, z, little-endian; FS_XL 00 ±2, 01 ±16, 10 ±4, 11 ±8 g
    (0.061, 0.488, 0.122, 0.244 mg/LSB); FS_G 00 250, 01 500, 10 1000, 11 2000 dps
    (8.75..70 mdps/LSB).
    ``who`` 0x6C is also what an LSM6DSO32 answers (its FS_XL codes mean ±4/32/8/16 g)."""

    ODR_HZ = {1: 12.5, 2: 26.0, 3: 52.0, 4: 104.0, 5: 208.0, 6: 416.0, 7: 833.0, 8: 1666.0}
    MG_PER_LSB = {0: 0.061, 1: 0.488, 2: 0.122, 3: 0.244}
    MDPS_PER_LSB = {0: 8.75, 1: 17.5, 2: 35.0, 3: 70.0}

    def __init__(self, world, acc_m_s2, gyr_rad_s, who=0x6C):
        super().__init__(world, acc_m_s2, gyr_rad_s, 0x0F, who)

    def configure(self):
        odr = self.ODR_HZ.get(self.regs[0x10] >> 4, 0.0)
        if odr != self.odr_hz:
            self.odr_hz, self.t0_us, self.last_index = odr, self.w.now_us, -1

    def read(self, reg, n):
        self.reads += 1
        if reg == 0x1E and n == 1:
            return bytes((0x03 if self.ready() else 0x00,))
        if reg == 0x22:
            assert self.regs[0x12] & 0x04, "IF_INC not set: a burst read would repeat one register"
            mg = self.MG_PER_LSB[(self.regs[0x10] >> 2) & 3]
            mdps = self.MDPS_PER_LSB[(self.regs[0x11] >> 2) & 3]
            g = [_clip16(v / DEG * 1000.0 / mdps) for v in self.gyr]
            a = [_clip16(v / G * 1000.0 / mg) for v in self.acc]
            self.last_index = self.index()
            return struct.pack("<6h", g[0], g[1], g[2], a[0], a[1], a[2])[:n]
        return bytes(self.regs[reg:reg + n])


class Icm42688Model(_Model):
    """TDK ICM-42688-P (DS-000347): WHO_AM_I 0x47 at 0x75; GYRO_CONFIG0 0x4F and ACCEL_CONFIG0
    0x50 hold FS_SEL (bits 7:5) and ODR (bits 3:0: 6 1 kHz, 7 200, 8 100, 9 50, 10 25, 15 500 Hz);
    INT_STATUS 0x2D bit 3 DATA_RDY, cleared by reading it; 0x1F.. accelerometer x, y, z then gyro
    x, y, z, big-endian; accel FS 0 ±16 .. 3 ±2 g (2048 << fs LSB/g), gyro FS 0 2000 .. 7 15.6
    dps (16.4 << fs LSB/dps). Data only once PWR_MGMT0 (0x4E) puts both sensors on."""

    ODR_HZ = {6: 1000.0, 7: 200.0, 8: 100.0, 9: 50.0, 10: 25.0, 15: 500.0}

    def __init__(self, world, acc_m_s2, gyr_rad_s):
        super().__init__(world, acc_m_s2, gyr_rad_s, 0x75, 0x47)
        self.regs[0x4F] = self.regs[0x50] = 0x06

    def configure(self):
        on = self.regs[0x4E] & 0x0F == 0x0F
        odr = self.ODR_HZ.get(self.regs[0x50] & 0x0F, 0.0) if on else 0.0
        if odr != self.odr_hz:
            self.odr_hz, self.t0_us, self.last_index = odr, self.w.now_us, -1

    def read(self, reg, n):
        self.reads += 1
        if reg == 0x2D and n == 1:
            ready = self.ready()
            if ready:
                self.last_index = self.index()
            return bytes((0x08 if ready else 0x00,))
        if reg == 0x1F:
            a_lsb = 2048.0 * (1 << (self.regs[0x50] >> 5))
            g_lsb = 16.4 * (1 << (self.regs[0x4F] >> 5))
            a = [_clip16(v / G * a_lsb) for v in self.acc]
            g = [_clip16(v / DEG * g_lsb) for v in self.gyr]
            return struct.pack(">6h", a[0], a[1], a[2], g[0], g[1], g[2])[:n]
        return bytes(self.regs[reg:reg + n])


class Bno08xModel:
    """CEVA BNO08x over I2C (SH-2 / SHTP, 1000-3927 and 1000-3625): every read starts with the
    4-byte SHTP header (length LE, bit 15 continuation; channel; sequence); a read of the header
    alone does not consume the packet. Set Feature (0xFD, report id, flags, sensitivity u16,
    interval u32 at offset 5) on channel 2 enables a report; with accelerometer (0x01, Q8 m/s²),
    gyroscope (0x02, Q9 rad/s) and game rotation vector (0x08, Q14 i, j, k, real) enabled, one
    channel-3 packet per interval: base timestamp (0xFB) then the three reports."""

    def __init__(self, world, acc_m_s2, gyr_rad_s, quat_wxyz):
        self.w = world
        self.acc, self.gyr, self.quat = acc_m_s2, gyr_rad_s, quat_wxyz
        self.interval_us = {}
        self.t0_us = 0
        self.last_index = -1
        self.seq = 0
        self.writes = []

    def writeto(self, buf):
        buf = bytes(buf)
        self.writes.append(buf)
        n = (buf[0] | (buf[1] << 8)) & 0x7FFF
        assert n == len(buf), "SHTP length must cover header and payload"
        if buf[2] == 2 and buf[4] == 0xFD:
            self.interval_us[buf[5]] = struct.unpack_from("<I", buf, 4 + 5)[0]
            self.t0_us, self.last_index = self.w.now_us, -1

    def _packet(self):
        if not all(r in self.interval_us for r in (0x01, 0x02, 0x08)):
            return None
        index = (self.w.now_us - self.t0_us) // self.interval_us[0x08]
        if index <= self.last_index:
            return None
        a = [_clip16(v * 256) for v in self.acc]
        g = [_clip16(v * 512) for v in self.gyr]
        w, x, y, z = (_clip16(v * 16384) for v in self.quat)
        payload = (bytes((0xFB, 0, 0, 0, 0)) + struct.pack("<BBBB3h", 0x01, 0, 3, 0, *a)
                   + struct.pack("<BBBB3h", 0x02, 0, 3, 0, *g)
                   + struct.pack("<BBBB5h", 0x08, 0, 3, 0, x, y, z, w, 0)[:12])
        n = len(payload) + 4
        return index, bytes((n & 0xFF, n >> 8, 3, self.seq)) + payload

    def readfrom(self, n):
        p = self._packet()
        if p is None:
            return bytes(n)  # length 0: nothing to read
        index, packet = p
        if n > 4:
            self.last_index = index
            self.seq = (self.seq + 1) & 0xFF
        return packet[:n] + bytes(max(0, n - len(packet)))
