"""The node's frame encoder and a small command-frame reader, in plain (Micro)Python.

Byte-for-byte the protocol of ``dorsimeter.wire.frames`` (specified in
``hardware_docs/protocol.md``), without numpy: this module runs on the ESP32-S3. A test checks
that it and the host's numpy encoder produce identical bytes.
"""

import struct

SYNC = 0xD5
VERSION = 1
T_DATA, T_COMMAND, T_RESPONSE, T_STATUS = 1, 2, 3, 4
HEADER_BYTES = 9
CRC_BYTES = 2
MAX_SAMPLES = 16
ENC_I16, ENC_P12, ENC_I16Q = 0, 1, 2
SAMPLE_BYTES = (12, 9, 20)
ACC_LSB_M_S2 = (0.0025, 0.02, 0.0025)
GYR_LSB_RAD_S = (0.001, 0.004, 0.001)
QUAT_LSB = 1.0 / 16384.0
INFO_HEEL_PRESENT = 0x40
INFO_HEEL_CONTACT = 0x80

CMD_SET_RATE, CMD_START, CMD_STOP, CMD_ZERO = 0x01, 0x02, 0x03, 0x04
CMD_IDENTIFY, CMD_BATTERY, CMD_STATUS, CMD_SET_ENCODING = 0x05, 0x06, 0x07, 0x08
MUTATING_COMMANDS = (CMD_SET_RATE, CMD_START, CMD_STOP, CMD_ZERO, CMD_SET_ENCODING)
ST_OK, ST_BAD_ARGS, ST_NOT_ALLOWED, ST_UNKNOWN, ST_BUSY = 0, 1, 2, 3, 4
STATUS_BOOT, STATUS_STREAMING, STATUS_SECURE = 0x01, 0x02, 0x04


def _make_table():
    table = []
    for b in range(256):
        crc = b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
        table.append(crc)
    return table


_TABLE = _make_table()


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF)."""
    t = _TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ t[((crc >> 8) ^ b) & 0xFF]
    return crc


def data_frame_bytes(n, encoding):
    return HEADER_BYTES + (2 if n > 1 else 0) + n * SAMPLE_BYTES[encoding] + CRC_BYTES


def max_samples_per_frame(max_payload, encoding):
    if data_frame_bytes(1, encoding) > max_payload:
        return 0
    n = (max_payload - HEADER_BYTES - 2 - CRC_BYTES) // SAMPLE_BYTES[encoding]
    return min(MAX_SAMPLES, max(1, n))


def _q(x, lsb, bits):
    """``x`` as a signed ``bits``-bit integer (symmetric saturation, ±inf too; NaN -> 0)."""
    if x != x:
        return 0
    lim = (1 << (bits - 1)) - 1
    y = x / lsb
    if y >= lim:  # also +inf, which round() cannot take
        return lim
    if y <= -lim:
        return -lim
    return int(round(y))


def _finish(body):
    return bytes([SYNC]) + body + struct.pack("<H", crc16(body))


def encode_data(seq, t_us, samples, encoding, dt_us=0, heel=None):
    """A DATA frame. ``samples``: sequence of (acc_m_s2 (3), gyr_rad_s (3), quat (4) or None)."""
    n = len(samples)
    info = (n - 1) | (encoding << 4)
    if heel is not None:
        info |= INFO_HEEL_PRESENT | (INFO_HEEL_CONTACT if heel else 0)
    out = bytearray(struct.pack("<BHIB", (VERSION << 4) | T_DATA, seq & 0xFFFF,
                                t_us & 0xFFFFFFFF, info))
    if n > 1:
        out += struct.pack("<H", dt_us & 0xFFFF)
    la, lg = ACC_LSB_M_S2[encoding], GYR_LSB_RAD_S[encoding]
    for acc, gyr, quat in samples:
        if encoding == ENC_P12:
            v = [_q(acc[0], la, 12), _q(acc[1], la, 12), _q(acc[2], la, 12),
                 _q(gyr[0], lg, 12), _q(gyr[1], lg, 12), _q(gyr[2], lg, 12)]
            for k in (0, 2, 4):
                pair = (v[k] & 0xFFF) | ((v[k + 1] & 0xFFF) << 12)
                out += bytes((pair & 0xFF, (pair >> 8) & 0xFF, (pair >> 16) & 0xFF))
        else:
            out += struct.pack("<6h", _q(acc[0], la, 16), _q(acc[1], la, 16), _q(acc[2], la, 16),
                               _q(gyr[0], lg, 16), _q(gyr[1], lg, 16), _q(gyr[2], lg, 16))
            if encoding == ENC_I16Q:
                out += struct.pack("<4h", _q(quat[0], QUAT_LSB, 16), _q(quat[1], QUAT_LSB, 16),
                                   _q(quat[2], QUAT_LSB, 16), _q(quat[3], QUAT_LSB, 16))
    return _finish(bytes(out))


def encode_message(mtype, seq, t_us, payload):
    return _finish(struct.pack("<BHIB", (VERSION << 4) | mtype, seq & 0xFFFF, t_us & 0xFFFFFFFF,
                               len(payload)) + bytes(payload))


def encode_response(seq, cmd, status, data=b"", t_us=0):
    return encode_message(T_RESPONSE, seq, t_us, bytes((cmd, status)) + bytes(data))


def encode_status(seq, t_us, flags, rate_hz, battery_pct, battery_mv, heel_raw, imu_kind):
    payload = struct.pack("<BHBHBB", flags & 0xFF, rate_hz & 0xFFFF, battery_pct & 0xFF,
                          battery_mv & 0xFFFF, heel_raw & 0xFF, imu_kind & 0xFF)
    return encode_message(T_STATUS, seq, t_us, payload)


class FrameReader:
    """Finds complete non-DATA frames (commands) in bytes arriving in pieces; drops garbage.

    Commands are rare and short, so a simple scan is fine here (the host's decoder is the
    vectorised one). ``feed`` returns a list of (type, seq, t_us, payload).
    """

    MAX_BUFFER = 512

    def __init__(self):
        self._buf = b""
        self.crc_errors = 0

    def feed(self, data):
        buf = self._buf + bytes(data)
        out = []
        i = 0
        while True:
            i = buf.find(bytes([SYNC]), i)
            if i < 0:
                buf = b""
                break
            if len(buf) - i < HEADER_BYTES:
                buf = buf[i:]
                break
            vt = buf[i + 1]
            if vt >> 4 != VERSION or (vt & 0x0F) in (0, T_DATA) or (vt & 0x0F) > T_STATUS:
                i += 1
                continue
            end = i + HEADER_BYTES + buf[i + 8] + CRC_BYTES
            if end > len(buf):
                buf = buf[i:]
                break
            if crc16(buf[i + 1:end - 2]) != buf[end - 2] | (buf[end - 1] << 8):
                self.crc_errors += 1
                i += 1
                continue
            seq, t_us = struct.unpack_from("<HI", buf, i + 2)
            out.append((vt & 0x0F, seq, t_us, bytes(buf[i + HEADER_BYTES:end - 2])))
            i = end
        self._buf = buf[-self.MAX_BUFFER:]
        return out
