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
    """Samples are produced at the configured output rate from the moment it is set; a FIFO
    keeps the unread ones up to its depth (continuous/stream mode: the oldest go on overflow)."""

    FIFO_SAMPLES = 0  # depth in samples (0: no FIFO modelled)

    def __init__(self, world, acc_m_s2, gyr_rad_s, who_reg, who):
        self.w = world
        self.regs = bytearray(128)
        self.regs[who_reg] = who
        self.acc, self.gyr = acc_m_s2, gyr_rad_s
        self.odr_hz = 0.0
        self.last_index = -1  # index of the last sample read out (output registers)
        self.t0_us = 0
        self.reads = 0
        self.writes = []
        self.fifo_on = False
        self.fifo_next = 0  # index of the oldest sample still in the FIFO
        self.fifo_lost = 0  # samples dropped because the FIFO overflowed
        self.produced_total = 0  # samples produced at earlier rates

    def index(self):
        if self.odr_hz <= 0:
            return -1
        return int((self.w.now_us - self.t0_us) * self.odr_hz // 1000000)

    def ready(self):
        return self.index() > self.last_index

    def restart(self, odr_hz):
        """A new output rate (or a FIFO reset): sample 0 is one period from now."""
        self.produced_total += self.index() + 1
        self.odr_hz, self.t0_us, self.last_index = odr_hz, self.w.now_us, -1
        self.fifo_next = 0

    def fifo_level(self):
        """Samples waiting in the FIFO (after dropping those an overflow pushed out)."""
        if not self.fifo_on:
            return 0
        produced = self.index() + 1
        if produced - self.fifo_next > self.FIFO_SAMPLES:
            self.fifo_lost += produced - self.fifo_next - self.FIFO_SAMPLES
            self.fifo_next = produced - self.FIFO_SAMPLES
            self.overflowed = True
        return produced - self.fifo_next

    def write(self, reg, data):
        self.writes.append((reg, bytes(data)))
        for k, b in enumerate(data):
            self.regs[reg + k] = b
        self.configure(reg)


class Lsm6dsoModel(_Model):
    """ST LSM6DSO (DS12140; register map as in ST's lsm6dso_reg.h): WHO_AM_I 0x6C at 0x0F;
    CTRL1_XL/CTRL2_G ODR codes 1..8 are 12.5, 26, 52, 104, 208, 416, 833, 1666 Hz; STATUS_REG
    0x1E XLDA|GDA; OUTX_L_G 0x22.. gyro x, y, z then accelerometer x, y, z, little-endian; FS_XL
    00 ±2, 01 ±16, 10 ±4, 11 ±8 g (0.061, 0.488, 0.122, 0.244 mg/LSB); FS_G 00 250, 01 500, 10
    1000, 11 2000 dps (8.75..70 mdps/LSB).

    FIFO: FIFO_CTRL3 0x09 BDR_GY (7:4) and BDR_XL (3:0), codes as the ODR; FIFO_CTRL4 0x0A
    FIFO_MODE (2:0) 000 bypass (empties it), 110 continuous; FIFO_STATUS1/2 0x3A/0x3B: DIFF_FIFO
    (10 bits, words unread), FIFO_OVR_IA (bit 6 of 0x3B); FIFO_DATA_OUT_TAG 0x78: TAG_SENSOR
    (7:3; 0x01 gyroscope, 0x02 accelerometer), TAG_CNT (2:1), then 6 data bytes at 0x79..0x7E;
    a 7-byte read at 0x78 pops one word. One sample is a gyroscope then an accelerometer word
    with the same TAG_CNT. The model holds 256 samples (512 words; the part holds more).

    ``who`` 0x6A makes it an LSM6DS3TR-C (DS11873; ST's lsm6ds3tr-c_reg.h): same control and
    output registers, an untagged FIFO of 16-bit words: FIFO_CTRL3 0x08 decimation (001 001: none),
    FIFO_CTRL5 0x0A ODR_FIFO (6:3, the ODR codes) and FIFO_MODE (2:0, 110 continuous);
    FIFO_STATUS1/2 0x3A/0x3B DIFF_FIFO (11 bits, words unread), OVER_RUN (bit 6 of 0x3B),
    FIFO_STATUS3/4 0x3C/0x3D FIFO_PATTERN (the next word: 0 gyro x .. 5 accel z); a 2-byte read of
    FIFO_DATA_OUT_L 0x3E pops one word. 4 kbyte: the model holds 341 samples. ``dso32``: an
    LSM6DSO32 (DS13129: WHO_AM_I 0x6C,
    FS_XL 00 ±4, 01 ±32, 10 ±8, 11 ±16 g: 0.122, 0.976, 0.244, 0.488 mg/LSB)."""

    ODR_HZ = {1: 12.5, 2: 26.0, 3: 52.0, 4: 104.0, 5: 208.0, 6: 416.0, 7: 833.0, 8: 1666.0}
    MG_PER_LSB = {0: 0.061, 1: 0.488, 2: 0.122, 3: 0.244}
    MG_PER_LSB_DSO32 = {0: 0.122, 1: 0.976, 2: 0.244, 3: 0.488}
    MDPS_PER_LSB = {0: 8.75, 1: 17.5, 2: 35.0, 3: 70.0}
    FIFO_SAMPLES = 256

    def __init__(self, world, acc_m_s2, gyr_rad_s, who=0x6C, dso32=False):
        super().__init__(world, acc_m_s2, gyr_rad_s, 0x0F, who)
        self.has_fifo = who == 0x6C  # the tagged FIFO; an LSM6DS3TR-C (``ds3``) has its own
        self.ds3 = who == 0x6A
        if self.ds3:
            self.FIFO_SAMPLES = 341
        self.mg = self.MG_PER_LSB_DSO32 if dso32 else self.MG_PER_LSB
        self.word = 0  # the next FIFO word: 0 gyro, 1 accel (tagged); 0..5 gx..az (LSM6DS3TR-C)
        self.overflowed = False

    def configure(self, reg):
        odr = self.ODR_HZ.get(self.regs[0x10] >> 4, 0.0)
        fifo_on = (self.has_fifo or self.ds3) and self.regs[0x0A] & 0x07 == 0x06
        if fifo_on and self.ds3:
            code = self.regs[0x10] >> 4
            assert self.regs[0x08] == 0x09, "no decimation of either sensor"
            assert (self.regs[0x0A] >> 3) & 0x0F == code, "FIFO rate = ODR"
            assert self.regs[0x11] >> 4 == code, "gyroscope and accelerometer at one ODR"
        elif fifo_on:
            code = self.regs[0x10] >> 4
            assert self.regs[0x09] == (code << 4) | code, "BDR must equal both ODRs"
            assert self.regs[0x11] >> 4 == code, "gyroscope and accelerometer at one ODR"
        if odr != self.odr_hz or fifo_on != self.fifo_on:
            self.restart(odr)
            self.fifo_on, self.word = fifo_on, 0

    def _raw(self):
        mg = self.mg[(self.regs[0x10] >> 2) & 3]
        mdps = self.MDPS_PER_LSB[(self.regs[0x11] >> 2) & 3]
        g = [_clip16(v / DEG * 1000.0 / mdps) for v in self.gyr]
        a = [_clip16(v / G * 1000.0 / mg) for v in self.acc]
        return g, a

    def read(self, reg, n):
        self.reads += 1
        if reg == 0x1E and n == 1:
            return bytes((0x03 if self.ready() else 0x00,))
        if reg == 0x22:
            assert self.regs[0x12] & 0x04, "IF_INC not set: a burst read would repeat one register"
            g, a = self._raw()
            self.last_index = self.index()
            return struct.pack("<6h", g[0], g[1], g[2], a[0], a[1], a[2])[:n]
        if reg == 0x3A and self.ds3:
            words = 6 * self.fifo_level() - self.word
            ovr = 0x40 if self.overflowed else 0  # OVER_RUN, until this status is read
            self.overflowed = False
            return bytes((words & 0xFF, ((words >> 8) & 0x07) | ovr, self.word, 0))[:n]
        if reg == 0x3E and self.ds3:
            assert n == 2, "one FIFO word per read"
            if self.fifo_level() == 0:
                return bytes(2)
            g, a = self._raw()
            v = (g + a)[self.word]
            self.word = (self.word + 1) % 6
            if self.word == 0:
                self.fifo_next += 1
            return struct.pack("<h", v)
        if reg == 0x3A and self.has_fifo:
            words = 2 * self.fifo_level() - self.word
            ovr = 0x40 if self.overflowed else 0  # FIFO_OVR_IA, until this status is read
            self.overflowed = False
            return bytes((words & 0xFF, ((words >> 8) & 0x03) | ovr))[:n]
        if reg == 0x78 and self.has_fifo:
            assert n == 7, "one FIFO word (tag + 6 bytes) per read"
            if self.fifo_level() == 0:
                return bytes(7)  # empty: no valid tag
            k = self.fifo_next
            g, a = self._raw()
            tag = 0x01 if self.word == 0 else 0x02
            head = (tag << 3) | ((k & 3) << 1)
            xyz = g if self.word == 0 else a
            self.word ^= 1
            if self.word == 0:
                self.fifo_next += 1
            return bytes((head,)) + struct.pack("<3h", xyz[0], xyz[1], xyz[2])
        return bytes(self.regs[reg:reg + n])


class Icm42688Model(_Model):
    """TDK ICM-42688-P (DS-000347): WHO_AM_I 0x47 at 0x75; GYRO_CONFIG0 0x4F and ACCEL_CONFIG0
    0x50 hold FS_SEL (bits 7:5) and ODR (bits 3:0: 6 1 kHz, 7 200, 8 100, 9 50, 10 25, 15 500 Hz);
    accel FS 0 ±16 .. 3 ±2 g (2048 << fs LSB/g), gyro FS 0 2000 .. 7 15.6 dps (16.4 << fs
    LSB/dps). Data only once PWR_MGMT0 (0x4E) puts both sensors on.

    FIFO: FIFO_CONFIG 0x16 bits 7:6 FIFO_MODE (00 bypass, 01 stream); FIFO_CONFIG1 0x5F
    accel (bit 0), gyro (bit 1), temperature (bit 2) enabled gives packet 3: 16 bytes, header
    0x68 (accel, gyro, ODR timestamp), accel x y z, gyro x y z big-endian, temperature (1 byte),
    timestamp (2); FIFO_COUNTH/L 0x2E/0x2F bytes unread, big-endian (INTF_CONFIG0 default);
    FIFO_DATA 0x30: a 16-byte read pops one packet, an empty FIFO reads header 0x80;
    SIGNAL_PATH_RESET 0x4B bit 1 flushes it. 2 kbyte: 128 packets."""

    ODR_HZ = {6: 1000.0, 7: 200.0, 8: 100.0, 9: 50.0, 10: 25.0, 15: 500.0}
    FIFO_SAMPLES = 128

    def __init__(self, world, acc_m_s2, gyr_rad_s):
        super().__init__(world, acc_m_s2, gyr_rad_s, 0x75, 0x47)
        self.regs[0x4F] = self.regs[0x50] = 0x06
        self.overflowed = False

    def configure(self, reg):
        on = self.regs[0x4E] & 0x0F == 0x0F
        odr = self.ODR_HZ.get(self.regs[0x50] & 0x0F, 0.0) if on else 0.0
        fifo_on = self.regs[0x16] >> 6 == 1
        if fifo_on:
            assert self.regs[0x5F] & 0x07 == 0x07, "packet 3 needs accel, gyro and temperature"
            assert self.regs[0x4F] & 0x0F == self.regs[0x50] & 0x0F, "one ODR for both"
        flush = reg == 0x4B and self.regs[0x4B] & 0x02
        if odr != self.odr_hz or fifo_on != self.fifo_on or flush:
            self.restart(odr)
            self.fifo_on = fifo_on
        self.regs[0x4B] = 0  # FIFO_FLUSH clears itself

    def read(self, reg, n):
        self.reads += 1
        a_lsb = 2048.0 * (1 << (self.regs[0x50] >> 5))
        g_lsb = 16.4 * (1 << (self.regs[0x4F] >> 5))
        a = [_clip16(v / G * a_lsb) for v in self.acc]
        g = [_clip16(v / DEG * g_lsb) for v in self.gyr]
        if reg == 0x2E and n == 2:
            return struct.pack(">H", 16 * self.fifo_level())
        if reg == 0x30:
            assert n == 16, "one packet 3 per read"
            if self.fifo_level() == 0:
                return bytes((0x80,)) + bytes(15)
            self.fifo_next += 1
            return struct.pack(">B6hbH", 0x68, a[0], a[1], a[2], g[0], g[1], g[2], 25, 0)
        if reg == 0x1F:
            return struct.pack(">6h", a[0], a[1], a[2], g[0], g[1], g[2])[:n]
        return bytes(self.regs[reg:reg + n])


class Bno08xModel:
    """CEVA BNO08x over I2C (SH-2 / SHTP, 1000-3927 and 1000-3625, as Adafruit's CircuitPython
    BNO08x driver reads them): every read starts with the 4-byte SHTP header (length LE, bit 15
    continuation; channel; sequence); a read of the header alone does not consume the packet.

    * A soft reset (channel 1, byte 1) forgets every feature and queues the advertisement
      (channel 0) and "reset complete" (channel 1, byte 1).
    * A Product ID Request (channel 2, 0xF9) is answered by a Product ID Response (0xF8: reset
      cause, software version, part number u32 at offset 4, build u32, patch u16).
    * Set Feature (0xFD, report id, flags, sensitivity u16, interval u32 at offset 5) on channel
      2 enables a report and is answered by a Get Feature Response (0xFC, same layout) with the
      interval the hub runs: the requested one rounded to ``quantum_us`` (the hub's own rates).
    * With accelerometer (0x01, Q8 m/s²), gyroscope (0x02, Q9 rad/s) and game rotation vector
      (0x08, Q14 i, j, k, real) enabled, one channel-3 packet per interval: base timestamp
      (0xFB) then the three reports.
    * ``error_every``: every n-th header read answers ``FF FF FF FF`` (what the chip sends when
      it is not ready or in error); reading more than 512 bytes at once is a firmware fault.
    * ``silent``: the chip never answers (a wrong part or a dead bus)."""

    PART_NUMBER = 10003608  # BNO085's SH-2 firmware part number, as the product ID reports it
    MAX_READ = 512

    def __init__(self, world, acc_m_s2, gyr_rad_s, quat_wxyz, quantum_us=0, error_every=0,
                 silent=False):
        self.w = world
        self.acc, self.gyr, self.quat = acc_m_s2, gyr_rad_s, quat_wxyz
        self.quantum_us, self.error_every, self.silent = quantum_us, error_every, silent
        self.interval_us = {}
        self.t0_us = 0
        self.last_index = -1
        self.seq = 0
        self.writes = []
        self.queue = []  # control/command packets waiting to be read, oldest first
        self.header_reads = 0
        self.errors_sent = 0
        self.resets = 0

    def _queue(self, channel, payload):
        n = len(payload) + 4
        self.queue.append(bytes((n & 0xFF, n >> 8, channel, 0)) + payload)

    def writeto(self, buf):
        buf = bytes(buf)
        self.writes.append(buf)
        n = (buf[0] | (buf[1] << 8)) & 0x7FFF
        assert n == len(buf), "SHTP length must cover header and payload"
        if self.silent:
            return
        channel, payload = buf[2], buf[4:]
        if channel == 1 and payload[:1] == b"\x01":
            self.resets += 1
            self.w.write("bno", "reset")
            self.interval_us, self.queue = {}, []
            self._queue(0, bytes((0x00, 0x01, 0x04)) + bytes(270))  # advertisement (shortened)
            self._queue(1, b"\x01")
        elif channel == 2 and payload[:1] == b"\xf9":
            self.w.write("bno", "product_id")
            self._queue(2, struct.pack("<BBBBIIHH", 0xF8, 0x01, 3, 2, self.PART_NUMBER, 370, 17,
                                       0))
        elif channel == 2 and payload[:1] == b"\xfd":
            rid = payload[1]
            want = struct.unpack_from("<I", payload, 5)[0]
            q = self.quantum_us
            got = max(q, (want + q // 2) // q * q) if q else want
            self.interval_us[rid] = got
            self.w.write("bno", "feature", rid, want, got)
            self.t0_us, self.last_index = self.w.now_us, -1
            self._queue(2, struct.pack("<BBBHIII", 0xFC, rid, 0, 0, got, 0, 0))

    def _packet(self):
        if self.queue:
            return None, self.queue[0]
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
        assert n <= self.MAX_READ, f"read of {n} bytes: an error header taken for a length"
        if n == 4:
            self.header_reads += 1
            if self.error_every and self.header_reads % self.error_every == 0:
                self.errors_sent += 1
                self.w.write("bno", "error_header")
                return b"\xff\xff\xff\xff"
        p = self._packet()
        if p is None:
            return bytes(n)  # length 0: nothing to read
        index, packet = p
        if n > 4:
            if index is None:
                self.queue.pop(0)
            else:
                self.last_index = index
                self.seq = (self.seq + 1) & 0xFF
        return packet[:n] + bytes(max(0, n - len(packet)))
