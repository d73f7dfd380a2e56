"""CEVA/Hillcrest BNO08x (BNO085/BNO086) on I2C via SHTP: calibrated accelerometer, calibrated
gyroscope and game rotation vector (no magnetometer), each at the node's rate.

SHTP packets: 4-byte header (length LE with bit 15 = continuation, channel, sequence). Sensor
reports arrive on channel 3 after a 5-byte base timestamp (0xFB). Q points: accelerometer Q8
(m/s²), gyroscope Q9 (rad/s), game rotation vector Q14 (i, j, k, real).
"""

import struct

ADDR = 0x4A  # 0x4B with SA0 high
CH_CONTROL, CH_REPORTS = 2, 3
SET_FEATURE = 0xFD
R_ACCEL, R_GYRO, R_GAME_RV, R_TIMEBASE = 0x01, 0x02, 0x08, 0xFB
REPORT_LEN = {R_ACCEL: 10, R_GYRO: 10, R_GAME_RV: 12, R_TIMEBASE: 5, 0xFA: 5}


def parse_reports(payload):
    """Channel-3 payload -> list of (report id, values). Unknown reports end the parse."""
    out = []
    i = 0
    while i < len(payload):
        rid = payload[i]
        n = REPORT_LEN.get(rid)
        if n is None or i + n > len(payload):
            break
        if rid == R_ACCEL:
            x, y, z = struct.unpack_from("<3h", payload, i + 4)
            out.append((rid, (x / 256.0, y / 256.0, z / 256.0)))
        elif rid == R_GYRO:
            x, y, z = struct.unpack_from("<3h", payload, i + 4)
            out.append((rid, (x / 512.0, y / 512.0, z / 512.0)))
        elif rid == R_GAME_RV:
            qi, qj, qk, qr = struct.unpack_from("<4h", payload, i + 4)
            s = 1.0 / 16384.0
            out.append((rid, (qr * s, qi * s, qj * s, qk * s)))  # scalar first
        i += n
    return out


class Bno08x:
    kind = 1
    has_quat = True

    def __init__(self, i2c, clock, addr=ADDR, rate_hz=100):
        self.i2c, self.clock, self.addr = i2c, clock, addr
        self._seq = [0] * 6
        self._acc = self._gyr = self._quat = None
        self.rate_hz = 0
        self.set_rate(rate_hz)

    def _send(self, channel, payload):
        n = len(payload) + 4
        hdr = bytes((n & 0xFF, n >> 8, channel, self._seq[channel]))
        self._seq[channel] = (self._seq[channel] + 1) & 0xFF
        self.i2c.writeto(self.addr, hdr + payload)

    def set_rate(self, rate_hz):
        if not 1 <= rate_hz <= 400:
            return self.rate_hz
        interval_us = int(1000000 / rate_hz)
        for rid in (R_ACCEL, R_GYRO, R_GAME_RV):
            self._send(CH_CONTROL, struct.pack("<BBBHIII", SET_FEATURE, rid, 0, 0, interval_us,
                                               0, 0))
        self.rate_hz = rate_hz
        return rate_hz

    def _packet(self):
        hdr = self.i2c.readfrom(self.addr, 4)
        n = (hdr[0] | (hdr[1] << 8)) & 0x7FFF
        if n <= 4:
            return None, b""
        data = self.i2c.readfrom(self.addr, n)
        return data[2], data[4:]

    def read(self):
        """Samples completed since the last call: one per game rotation vector report."""
        out = []
        for _ in range(8):
            channel, payload = self._packet()
            if channel is None:
                break
            if channel != CH_REPORTS:
                continue
            for rid, v in parse_reports(payload):
                if rid == R_ACCEL:
                    self._acc = v
                elif rid == R_GYRO:
                    self._gyr = v
                elif rid == R_GAME_RV:
                    self._quat = v
                    if self._acc is not None and self._gyr is not None:
                        out.append((self.clock.ticks_us(), self._acc, self._gyr, v))
        return out
