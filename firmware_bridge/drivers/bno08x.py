"""CEVA/Hillcrest BNO08x (BNO085/BNO086) on I2C via SHTP: calibrated accelerometer, calibrated
gyroscope and game rotation vector (no magnetometer), each at the node's rate.

SHTP packets: 4-byte header (length LE with bit 15 = continuation, channel, sequence). Sensor
reports arrive on channel 3 after a 5-byte base timestamp (0xFB). Q points: accelerometer Q8
(m/s²), gyroscope Q9 (rad/s), game rotation vector Q14 (i, j, k, real).

Start-up as Adafruit's CircuitPython BNO08x driver does it (``soft_reset``, ``_check_id``,
``enable_feature``): a soft reset (channel 1, byte 1), the packets it answers with drained; a
Product ID Request (0xF9) that must be answered with a Product ID Response (0xF8) on channel 2,
else there is no BNO08x; each Set Feature (0xFD) must be confirmed by a Get Feature Response
(0xFC) for that report, whose report interval is the one the hub really runs (the frames'
DT_US). A header of 0xFFFF (the chip's error/not-ready answer), a channel above 5 or a length
beyond ``MAX_PACKET`` is no packet: the driver never asks for 32,767 bytes.

The BNO08x on the ESP32-S3's I2C is reported unreliable (clock stretching; Adafruit lists it
among its troublesome chips): see hardware_docs/bom.md.
"""

import struct
import time  # MicroPython's: its ticks_*, sleep_ms have no CPython stubs (pyright ignores)

ADDR = 0x4A  # 0x4B with SA0 high
CH_COMMAND, CH_EXECUTABLE, CH_CONTROL, CH_REPORTS = 0, 1, 2, 3
SET_FEATURE, GET_FEATURE_RESPONSE = 0xFD, 0xFC
PRODUCT_ID_REQUEST, PRODUCT_ID_RESPONSE = 0xF9, 0xF8
EXE_RESET = 1
R_ACCEL, R_GYRO, R_GAME_RV, R_TIMEBASE = 0x01, 0x02, 0x08, 0xFB
FEATURES = (R_ACCEL, R_GYRO, R_GAME_RV)
REPORT_LEN = {R_ACCEL: 10, R_GYRO: 10, R_GAME_RV: 12, R_TIMEBASE: 5, 0xFA: 5}
MAX_PACKET = 384  # the largest SHTP packet the hub sends (its advertisement is ~280 bytes)
RESET_DRAIN_MS = 300  # the hub answers a reset within this (advertisement, reset complete)
ANSWER_TIMEOUT_MS = 500  # for the product ID and each feature's confirmation


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
        self.errors = 0  # error headers (0xFFFF) and impossible lengths/channels seen
        self.part_number = None
        self.confirmed = {}  # report id -> interval (µs) the hub confirmed
        self.rate_hz = 0
        self.odr_hz = 0.0
        self._reset()
        self._check_id()
        if self.set_rate(rate_hz) != rate_hz:
            raise OSError(f"BNO08x did not confirm its reports at {rate_hz} Hz")

    def _send(self, channel, payload):
        n = len(payload) + 4
        hdr = bytes((n & 0xFF, n >> 8, channel, self._seq[channel]))
        self._seq[channel] = (self._seq[channel] + 1) & 0xFF
        self.i2c.writeto(self.addr, hdr + payload)

    def _packet(self):
        """(channel, payload) of the next packet, (None, b"") if there is none or the header is
        an error (counted in ``errors``)."""
        hdr = self.i2c.readfrom(self.addr, 4)
        raw = hdr[0] | (hdr[1] << 8)
        n = raw & 0x7FFF
        if raw == 0xFFFF or n > MAX_PACKET or hdr[2] > 5:
            self.errors += 1
            return None, b""
        if n <= 4:
            return None, b""
        data = self.i2c.readfrom(self.addr, n)
        return data[2], data[4:]

    def _wait(self, done, timeout_ms):
        """Read packets (control ones handled, reports dropped) until ``done()`` or timeout."""
        start = time.ticks_ms()  # pyright: ignore[reportAttributeAccessIssue]
        while not done():
            channel, payload = self._packet()
            if channel == CH_CONTROL:
                self._control(payload)
            elif channel is None:
                if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:  # pyright: ignore[reportAttributeAccessIssue]
                    return False
                time.sleep_ms(2)  # pyright: ignore[reportAttributeAccessIssue]
        return True

    def _control(self, payload):
        if not payload:
            return
        if payload[0] == PRODUCT_ID_RESPONSE and len(payload) >= 16:
            self.part_number = struct.unpack_from("<I", payload, 4)[0]
        elif payload[0] == GET_FEATURE_RESPONSE and len(payload) >= 17:
            rid = payload[1]
            self.confirmed[rid] = struct.unpack_from("<I", payload, 5)[0]

    def _reset(self):
        self._send(CH_EXECUTABLE, bytes((EXE_RESET,)))
        time.sleep_ms(RESET_DRAIN_MS)  # pyright: ignore[reportAttributeAccessIssue]
        for _ in range(8):  # advertisement, reset complete, and whatever was still queued
            channel, _payload = self._packet()
            if channel is None:
                break

    def _check_id(self):
        self._send(CH_CONTROL, bytes((PRODUCT_ID_REQUEST, 0)))
        if not self._wait(lambda: self.part_number is not None, ANSWER_TIMEOUT_MS):
            raise OSError("BNO08x did not answer its product ID request")

    def set_rate(self, rate_hz):
        """Ask for the three reports at ``rate_hz``; the rate in use once the hub confirmed all
        three (unchanged if it did not)."""
        if not 1 <= rate_hz <= 400:
            return self.rate_hz
        interval_us = int(1000000 / rate_hz)
        for rid in FEATURES:
            self.confirmed.pop(rid, None)
            self._send(CH_CONTROL, struct.pack("<BBBHIII", SET_FEATURE, rid, 0, 0, interval_us,
                                               0, 0))
        if not self._wait(lambda: all(r in self.confirmed for r in FEATURES), ANSWER_TIMEOUT_MS):
            return self.rate_hz
        got_us = self.confirmed[R_GAME_RV]
        if got_us <= 0:
            return self.rate_hz
        self.rate_hz = rate_hz
        self.odr_hz = 1000000.0 / got_us  # what the hub runs: the frames' DT_US
        self._acc = self._gyr = None
        return rate_hz

    def read(self):
        """Samples completed since the last call: one per game rotation vector report."""
        out = []
        for _ in range(8):
            channel, payload = self._packet()
            if channel is None:
                break
            if channel == CH_CONTROL:
                self._control(payload)
                continue
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
