"""The sensor node's wire protocol (version 1): frames, encoders and a vectorised decoder.

Every frame, little-endian (full spec with examples in ``hardware_docs/protocol.md``)::

    off size field
    0   1    SYNC 0xD5
    1   1    VT   version << 4 | message type (1 DATA, 2 COMMAND, 3 RESPONSE, 4 STATUS)
    2   2    SEQ  uint16, wraps; DATA frames count on their own, a RESPONSE echoes its COMMAND
    4   4    T_US uint32 device time in µs, wraps every 71.6 min (DATA: time of the first sample)
    8   1    INFO DATA: bits 0-3 n-1 (1..16 samples), bits 4-5 encoding, bit 6 heel channel
                  present, bit 7 heel contact (all samples of the frame; the node ends a frame
                  early when the heel changes). Other types: payload length.
    9   2    DT_US uint16 sample period in µs, DATA frames with n > 1 only
    ..  ..   samples (DATA) or payload
    -2  2    CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of bytes 1..-3, little-endian

Sample encodings (acc then gyro, sensor axes, two's complement):

* ``ENC_I16`` 12 bytes: 6 × int16, acc 0.0025 m/s²/LSB (±81.9 m/s²), gyro 0.001 rad/s/LSB.
* ``ENC_P12`` 9 bytes: 6 × 12-bit packed little-endian (field k at bit 12k), acc 0.02 m/s²/LSB
  (±40.9 m/s²), gyro 0.004 rad/s/LSB (±8.19 rad/s). The compact form: 11 + 9 = 20 bytes, one
  sample per notification at the default ATT MTU of 23.
* ``ENC_I16Q`` 20 bytes: ``ENC_I16`` then the on-chip orientation quaternion w, x, y, z as
  int16 with 2**-14 per LSB (sensor to world, z up).
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field

import numpy as np

from dorsimeter.types import ImuBatch
from dorsimeter.wire.chain import greedy_chain

SYNC = 0xD5
VERSION = 1
T_DATA, T_COMMAND, T_RESPONSE, T_STATUS = 1, 2, 3, 4
MESSAGE_TYPES = (T_DATA, T_COMMAND, T_RESPONSE, T_STATUS)
HEADER_BYTES = 9
CRC_BYTES = 2
MAX_SAMPLES = 16

ENC_I16, ENC_P12, ENC_I16Q = 0, 1, 2
SAMPLE_BYTES = {ENC_I16: 12, ENC_P12: 9, ENC_I16Q: 20}
ACC_LSB_M_S2 = {ENC_I16: 0.0025, ENC_P12: 0.02, ENC_I16Q: 0.0025}
GYR_LSB_RAD_S = {ENC_I16: 0.001, ENC_P12: 0.004, ENC_I16Q: 0.001}
QUAT_LSB = 1.0 / 16384.0
INFO_HEEL_PRESENT = 0x40
INFO_HEEL_CONTACT = 0x80

# commands (COMMAND payload: cmd id, then arguments)
CMD_SET_RATE = 0x01  # uint16 rate_hz
CMD_START = 0x02
CMD_STOP = 0x03
CMD_ZERO = 0x04  # capture the gyro bias now (the node must be still)
CMD_IDENTIFY = 0x05  # uint8 seconds to blink the LED
CMD_BATTERY = 0x06  # response data: uint8 percent, uint16 mV
CMD_STATUS = 0x07  # the node answers, then sends a STATUS frame
CMD_SET_ENCODING = 0x08  # uint8 encoding (ENC_*)
COMMAND_NAMES = {CMD_SET_RATE: "set_rate", CMD_START: "start", CMD_STOP: "stop", CMD_ZERO: "zero",
                 CMD_IDENTIFY: "identify", CMD_BATTERY: "battery", CMD_STATUS: "status",
                 CMD_SET_ENCODING: "set_encoding"}
#: commands that change the node: accepted only from a trusted (bonded or USB) host
MUTATING_COMMANDS = frozenset({CMD_SET_RATE, CMD_START, CMD_STOP, CMD_ZERO, CMD_SET_ENCODING})

# response status codes
ST_OK, ST_BAD_ARGS, ST_NOT_ALLOWED, ST_UNKNOWN, ST_BUSY = 0, 1, 2, 3, 4

# STATUS payload: flags, rate_hz, battery %, battery mV, heel raw (0..255), imu kind
STATUS_STRUCT = struct.Struct("<BHBHBB")
STATUS_BOOT, STATUS_STREAMING, STATUS_SECURE = 0x01, 0x02, 0x04
IMU_KINDS = {0: "simulated", 1: "bno08x", 2: "lsm6dso", 3: "icm42688"}

DATA_VT = (VERSION << 4) | T_DATA
_VALID_VT = np.zeros(256, dtype=bool)
for _t in MESSAGE_TYPES:
    _VALID_VT[(VERSION << 4) | _t] = True


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""
    return binascii.crc_hqx(data, 0xFFFF)


def data_frame_bytes(n: int, encoding: int) -> int:
    """Length of a DATA frame with ``n`` samples in ``encoding``."""
    return HEADER_BYTES + (2 if n > 1 else 0) + n * SAMPLE_BYTES[encoding] + CRC_BYTES


def max_samples_per_frame(max_payload: int, encoding: int) -> int:
    """Most samples one frame of at most ``max_payload`` bytes can carry (0 if none fits)."""
    if data_frame_bytes(1, encoding) > max_payload:
        return 0
    n = (max_payload - HEADER_BYTES - 2 - CRC_BYTES) // SAMPLE_BYTES[encoding]
    return int(min(MAX_SAMPLES, max(1, n)))


def _finish(body: bytes) -> bytes:
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "little")


def _quantise(x, lsb: float, bits: int) -> np.ndarray:
    lim = (1 << (bits - 1)) - 1
    q = np.rint(np.nan_to_num(np.asarray(x, dtype=float) / lsb))
    return np.clip(q, -lim, lim).astype(np.int64)


def encode_data(seq: int, t_us: int, acc_m_s2, gyr_rad_s, quat=None, heel: bool | None = None,
                encoding: int | None = None, dt_us: int = 0) -> bytes:
    """One DATA frame of n ≤ 16 samples (arrays (n, 3)); ``quat`` (n, 4) selects ENC_I16Q.

    Values beyond the encoding's range saturate; NaN becomes 0.
    """
    acc = np.asarray(acc_m_s2, dtype=float).reshape(-1, 3)
    gyr = np.asarray(gyr_rad_s, dtype=float).reshape(-1, 3)
    n = len(acc)
    if not 1 <= n <= MAX_SAMPLES or len(gyr) != n:
        raise ValueError(f"a frame carries 1..{MAX_SAMPLES} samples, got {n}")
    if encoding is None:
        encoding = ENC_I16 if quat is None else ENC_I16Q
    if (quat is not None) != (encoding == ENC_I16Q):
        raise ValueError("a quaternion needs ENC_I16Q and ENC_I16Q needs a quaternion")
    info = (n - 1) | (encoding << 4)
    if heel is not None:
        info |= INFO_HEEL_PRESENT | (INFO_HEEL_CONTACT if heel else 0)
    head = struct.pack("<BHIB", DATA_VT, seq & 0xFFFF, t_us & 0xFFFFFFFF, info)
    if n > 1:
        head += struct.pack("<H", int(dt_us) & 0xFFFF)
    if encoding == ENC_P12:
        vals = np.concatenate([_quantise(acc, ACC_LSB_M_S2[encoding], 12),
                               _quantise(gyr, GYR_LSB_RAD_S[encoding], 12)], axis=1) & 0xFFF
        packed = np.zeros(n, dtype=object)
        for k in range(6):
            packed = packed + (vals[:, k].astype(object) << (12 * k))
        body = b"".join(int(p).to_bytes(9, "little") for p in packed)
    else:
        cols = [_quantise(acc, ACC_LSB_M_S2[encoding], 16),
                _quantise(gyr, GYR_LSB_RAD_S[encoding], 16)]
        if encoding == ENC_I16Q:
            cols.append(_quantise(np.asarray(quat, dtype=float).reshape(-1, 4), QUAT_LSB, 16))
        body = np.concatenate(cols, axis=1).astype("<i2").tobytes()
    return _finish(head + body)


def encode_message(mtype: int, seq: int, t_us: int, payload: bytes) -> bytes:
    """A COMMAND, RESPONSE or STATUS frame with ``payload`` (≤ 255 bytes)."""
    if mtype == T_DATA or mtype not in MESSAGE_TYPES or len(payload) > 255:
        raise ValueError("bad message type or payload too long")
    head = struct.pack("<BHIB", (VERSION << 4) | mtype, seq & 0xFFFF, t_us & 0xFFFFFFFF,
                       len(payload))
    return _finish(head + bytes(payload))


def encode_command(seq: int, cmd: int, args: bytes = b"", t_us: int = 0) -> bytes:
    """A COMMAND frame (host to node)."""
    return encode_message(T_COMMAND, seq, t_us, bytes([cmd]) + bytes(args))


def encode_set_rate(seq: int, rate_hz: int) -> bytes:
    return encode_command(seq, CMD_SET_RATE, struct.pack("<H", rate_hz))


def encode_response(seq: int, cmd: int, status: int, data: bytes = b"", t_us: int = 0) -> bytes:
    """A RESPONSE frame (node to host) answering the COMMAND numbered ``seq``."""
    return encode_message(T_RESPONSE, seq, t_us, bytes([cmd, status]) + bytes(data))


@dataclass
class NodeStatus:
    """What a STATUS frame says about the node."""

    flags: int = 0
    rate_hz: int = 0
    battery_pct: int = 0
    battery_mv: int = 0
    heel_raw: int = 0
    imu_kind: int = 0

    @property
    def booted(self) -> bool:
        return bool(self.flags & STATUS_BOOT)

    @property
    def streaming(self) -> bool:
        return bool(self.flags & STATUS_STREAMING)

    @property
    def secure(self) -> bool:
        return bool(self.flags & STATUS_SECURE)


def encode_status(seq: int, status: NodeStatus, t_us: int = 0) -> bytes:
    payload = STATUS_STRUCT.pack(status.flags & 0xFF, status.rate_hz & 0xFFFF,
                                 status.battery_pct & 0xFF, status.battery_mv & 0xFFFF,
                                 status.heel_raw & 0xFF, status.imu_kind & 0xFF)
    return encode_message(T_STATUS, seq, t_us, payload)


@dataclass
class Message:
    """A non-DATA frame the decoder found: COMMAND, RESPONSE or STATUS."""

    mtype: int
    seq: int
    t_us: int
    payload: bytes

    @property
    def cmd(self) -> int | None:
        return self.payload[0] if self.mtype in (T_COMMAND, T_RESPONSE) and self.payload else None

    @property
    def status(self) -> int | None:
        """Response status code (ST_*) of a RESPONSE."""
        if self.mtype == T_RESPONSE and len(self.payload) >= 2:
            return self.payload[1]
        return None

    @property
    def data(self) -> bytes:
        return self.payload[2:] if self.mtype == T_RESPONSE else self.payload[1:]

    def node_status(self) -> NodeStatus | None:
        if self.mtype != T_STATUS or len(self.payload) < STATUS_STRUCT.size:
            return None
        return NodeStatus(*STATUS_STRUCT.unpack_from(self.payload))


# ---------------------------------------------------------------- vectorised CRC

def _crc_tables(max_len: int) -> np.ndarray:
    """Z[k, b]: CRC (init 0) of byte b followed by k zero bytes; CRC is linear in the bytes."""
    basis = np.array([binascii.crc_hqx(b"\0", 1 << i) for i in range(16)], dtype=np.uint16)
    z = np.empty((max_len, 256), dtype=np.uint16)
    z[0] = [binascii.crc_hqx(bytes([b]), 0) for b in range(256)]
    for k in range(1, max_len):
        prev = z[k - 1]
        acc = np.zeros(256, dtype=np.uint16)
        for i in range(16):
            acc ^= np.where((prev >> i) & 1, basis[i], 0).astype(np.uint16)
        z[k] = acc
    return z


_MAX_FRAME = data_frame_bytes(MAX_SAMPLES, ENC_I16Q)
_Z = _crc_tables(_MAX_FRAME)
_INIT_TERM: dict[int, int] = {}


def _crc_many(a: np.ndarray, starts: np.ndarray, m: int) -> np.ndarray:
    """CRC-16/CCITT-FALSE of a[s:s+m] for every s in ``starts``, without a Python byte loop."""
    if m not in _INIT_TERM:
        _INIT_TERM[m] = binascii.crc_hqx(bytes(m), 0xFFFF)
    out = np.full(len(starts), _INIT_TERM[m], dtype=np.uint16)
    for j in range(m):  # one vectorised gather per byte position, over all frames at once
        out ^= _Z[m - 1 - j][a[starts + j]]
    return out


# ---------------------------------------------------------------- decoder

@dataclass
class DecoderStats:
    """Counters a decoder keeps; all exact, all monotonic."""

    frames: int = 0  # valid frames of any type
    samples: int = 0  # samples delivered
    crc_errors: int = 0  # plausible frames whose CRC failed
    bytes_skipped: int = 0  # bytes that belonged to no valid frame
    resyncs: int = 0  # runs of skipped bytes
    lost: int = 0  # DATA frames never received (from sequence numbers)
    lost_samples: int = 0  # estimated samples in those frames
    duplicates: int = 0  # DATA frames received twice (dropped)
    reordered: int = 0  # DATA frames that arrived after a later one
    late_dropped: int = 0  # reordered frames that came too late to deliver in order
    restarts: int = 0  # node restarts (boot STATUS, or device time jumping back > 2 s)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


_RESTART_BACK_US = 2_000_000
_MAX_REORDER_FRAMES = 256  # a sequence number further back than this is a restart
_HISTORY = 4096


@dataclass
class EpochState:
    """The sequence and clock history of one life of the node (from boot to restart)."""

    last_raw_seq: int | None = None
    last_u: int = 0
    first_u: int = 0
    hi_u: int | None = None
    last_raw_t: int = 0
    last_tu: int = 0  # unwrapped µs of the last frame (arrival order)
    hi_tu: int = 0
    last_emitted_u: int | None = None
    seen: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    seen_t: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # raw T_US
    unique: int = 0
    frame_us: float = 10_000.0  # duration of one frame, for continuing time after a restart
    lost_base: int | None = None  # frames lost in earlier epochs
    lost_seen: int = 0  # frames lost in this epoch so far


@dataclass
class FrameDecoderState:
    """Everything a :class:`FrameDecoder` changes as bytes come in, declared in one place (as
    VQF's ``PyVQFState``): a decoder is its settings, this state and its counters."""

    buf: bytes = b""  # bytes kept for the next feed (a frame cut off at the end)
    in_garbage: bool = False  # the last feed ended inside skipped bytes
    epoch: EpochState = field(default_factory=EpochState)
    restart_from_us: int | None = None  # where device time goes on after a restart
    mark_restart: bool = False  # the next sample delivered is the first after a restart
    last_sample_us: int | None = None  # device time of the last sample delivered (unwrapped)
    sample_us: float = 10_000.0  # sample period seen in the delivered samples


class FrameDecoder:
    """Bytes in (any split, any garbage), ImuBatch out, in SI units with unwrapped device time.

    ``feed`` returns the samples completed by these bytes, normally as one batch (a new batch
    starts where the quaternion or heel channel appears or disappears). Non-DATA frames go to
    ``messages``. ``stats`` counts everything; ``feed`` never raises on any input. What it
    changes as it runs is ``state`` (:class:`FrameDecoderState`).

    A node restart (boot STATUS, its clock jumping back, or its sequence numbers starting
    again) is counted in ``stats.restarts``; time goes on one sample period after the last
    sample delivered, and the first batch of the new life carries ``restart=True`` so that the
    pipeline takes the orientation afresh.
    """

    def __init__(self, side: str | None = None) -> None:
        self.side = side
        self.stats = DecoderStats()
        self.messages: list[Message] = []
        self.state = FrameDecoderState()

    def pop_messages(self) -> list[Message]:
        out, self.messages = self.messages, []
        return out

    def reset_sequence(self) -> None:
        """Forget sequence and time history (a new device, or a known restart).

        After frames were seen, the next batch delivered carries ``restart=True``: what came
        before says nothing about the orientation of the device now."""
        st = self.state
        had = st.epoch.last_raw_seq is not None
        restart_from = (st.epoch.hi_tu + int(st.epoch.frame_us)) if had else None
        if had and st.last_sample_us is not None:  # one period after the last sample given
            restart_from = st.last_sample_us + int(round(st.sample_us))
        st.epoch = EpochState()
        st.restart_from_us = restart_from
        st.mark_restart |= had

    def _restart_index(self, seq: np.ndarray, t_raw: np.ndarray) -> int | None:
        """First frame repeating a sequence number seen before with another device time.

        A duplicate notification is byte-identical; the same number with a new time means the
        node restarted (after less than 2 s of uptime the time rule cannot tell). So does a
        sequence number far behind the last one (more than any reordering), which also catches
        a restart whose clock step looks forward through the uint32 wrap.
        """
        s = self.state.epoch
        last_seq = s.last_raw_seq
        first = last_seq is None
        prev = np.concatenate([[int(seq[0]) if last_seq is None else last_seq], seq[:-1]])
        d = ((seq - prev + 32768) % 65536) - 32768
        if first:
            d[0] = 1
        u = (int(seq[0]) - 1 if first else s.last_u) + np.cumsum(d)
        allu, allt = np.concatenate([s.seen, u]), np.concatenate([s.seen_t, t_raw])
        _, first_idx, inv = np.unique(allu, return_index=True, return_inverse=True)
        bad = np.flatnonzero(((allt[first_idx[inv]] != allt)[len(s.seen):])
                             | (d < -_MAX_REORDER_FRAMES))
        return int(bad[0]) if len(bad) else None

    # -- framing
    def feed(self, data: bytes) -> list[ImuBatch]:
        state = self.state
        buf = state.buf + bytes(data)
        a = np.frombuffer(buf, dtype=np.uint8)
        n_buf = len(a)
        if n_buf == 0:
            return []
        c = np.flatnonzero(a == SYNC)
        # header plausibility: VT byte (if present), encoding of DATA frames (if present)
        has_vt = c + 1 < n_buf
        vt = np.zeros(len(c), dtype=np.uint8)
        vt[has_vt] = a[c[has_vt] + 1]
        ok_vt = ~has_vt | _VALID_VT[vt]
        c, vt, has_vt = c[ok_vt], vt[ok_vt], has_vt[ok_vt]
        has_info = c + HEADER_BYTES <= n_buf
        info = np.zeros(len(c), dtype=np.int64)
        info[has_info] = a[c[has_info] + 8]
        is_data = vt == DATA_VT
        n_smp = (info & 0x0F) + 1
        enc = (info >> 4) & 0x03
        ok_enc = ~(is_data & has_info & (enc == 3))
        c, vt, has_info, info = c[ok_enc], vt[ok_enc], has_info[ok_enc], info[ok_enc]
        is_data, n_smp, enc = is_data[ok_enc], n_smp[ok_enc], enc[ok_enc]
        sb = np.array([12, 9, 20, 0])[enc]
        length = np.where(is_data, HEADER_BYTES + 2 * (n_smp > 1) + n_smp * sb + CRC_BYTES,
                          HEADER_BYTES + info + CRC_BYTES)
        complete = has_info & (c + length <= n_buf)
        # CRC, grouped by length
        valid = np.zeros(len(c), dtype=bool)
        ci = np.flatnonzero(complete)
        if len(ci):
            lens = length[ci]
            for m in np.unique(lens):
                sel = ci[lens == m]
                got = a[c[sel] + m - 2].astype(np.uint16) | (a[c[sel] + m - 1].astype(np.uint16)
                                                             << 8)
                valid[sel] = _crc_many(a, c[sel] + 1, int(m) - 3) == got
        vi = np.flatnonzero(valid)
        starts, ends = c[vi], c[vi] + length[vi]
        keep = greedy_chain(starts, ends)  # overlaps only when garbage passes a CRC
        if len(keep) < len(vi):
            vi, starts, ends = vi[keep], starts[keep], ends[keep]
        last_end = int(ends[-1]) if len(ends) else 0
        pending = np.flatnonzero(~complete & (c >= last_end))
        keep_from = int(c[pending[0]]) if len(pending) else n_buf
        # CRC failures that lie outside accepted frames and before the retained tail
        bad = np.flatnonzero(complete & ~valid & (c < keep_from))
        if len(bad) and len(starts):
            pos = np.searchsorted(starts, c[bad], side="right") - 1
            inside = (pos >= 0) & (c[bad] < ends[np.clip(pos, 0, None)])
            bad = bad[~inside]
        self.stats.crc_errors += int(len(bad))
        # skipped bytes and resyncs
        gap_starts = np.concatenate([[0], ends])
        gap_ends = np.concatenate([starts, [keep_from]])
        gaps = gap_ends - gap_starts
        self.stats.bytes_skipped += int(gaps.sum())
        runs = int(np.count_nonzero(gaps))
        if runs and gaps[0] > 0 and state.in_garbage:
            runs -= 1
        self.stats.resyncs += runs
        state.in_garbage = bool(gaps[-1] > 0)
        state.buf = buf[keep_from:]
        self.stats.frames += len(vi)
        if not len(vi):
            return []
        fvt = vt[vi]
        data_idx = np.flatnonzero(fvt == DATA_VT)
        other = np.flatnonzero(fvt != DATA_VT)
        batches: list[ImuBatch] = []
        # messages in arrival order, interleaved with data so boot STATUS splits epochs
        cut = 0
        for j in other:
            s, e = int(starts[j]), int(ends[j])
            msg = Message(int(fvt[j]) & 0x0F, int.from_bytes(buf[s + 2:s + 4], "little"),
                          int.from_bytes(buf[s + 4:s + 8], "little"), buf[s + 9:e - 2])
            self.messages.append(msg)
            st = msg.node_status()
            if st is not None and st.booted:
                before = data_idx[(data_idx >= cut) & (data_idx < j)]
                batches += self._data(a, starts[before], info[vi[before]])
                cut = j + 1
                if state.epoch.last_raw_seq is not None:
                    self.stats.restarts += 1
                self.reset_sequence()
        rest = data_idx[data_idx >= cut]
        batches += self._data(a, starts[rest], info[vi[rest]])
        return batches

    # -- DATA frames
    def _data(self, a: np.ndarray, starts: np.ndarray, info: np.ndarray) -> list[ImuBatch]:
        if not len(starts):
            return []
        seq = (a[starts + 2].astype(np.int64) | (a[starts + 3].astype(np.int64) << 8))
        t_raw = np.zeros(len(starts), dtype=np.int64)
        for k in range(4):
            t_raw |= a[starts + 4 + k].astype(np.int64) << (8 * k)
        # a node restart: device time jumps back by more than 2 s against the previous frame
        epoch = self.state.epoch
        prev_t = np.concatenate([[epoch.last_raw_t], t_raw[:-1]])
        dt_signed = ((t_raw - prev_t + (1 << 31)) % (1 << 32)) - (1 << 31)
        restart = np.flatnonzero(dt_signed < -_RESTART_BACK_US)
        if epoch.last_raw_seq is None and len(restart) and restart[0] == 0:
            restart = restart[1:]
        out: list[ImuBatch] = []
        bounds = [0, *restart.tolist(), len(starts)]
        for k, (i0, i1) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            if k > 0:
                self.stats.restarts += 1
                self.reset_sequence()
            if i1 > i0:
                out += self._epoch(a, starts[i0:i1], info[i0:i1], seq[i0:i1], t_raw[i0:i1])
        return out

    def _epoch(self, a, starts, info, seq, t_raw) -> list[ImuBatch]:
        cut = self._restart_index(seq, t_raw)
        if cut is not None:
            out = self._epoch(a, starts[:cut], info[:cut], seq[:cut], t_raw[:cut]) if cut else []
            self.stats.restarts += 1
            self.reset_sequence()
            return out + self._epoch(a, starts[cut:], info[cut:], seq[cut:], t_raw[cut:])
        s = self.state.epoch
        st = self.stats
        first = s.last_raw_seq is None
        if first:
            s.last_raw_seq, s.last_raw_t = int(seq[0]), int(t_raw[0])
            s.last_u = int(seq[0]) - 1
            s.first_u = int(seq[0])
            restart_from = self.state.restart_from_us
            s.last_tu = int(t_raw[0]) if restart_from is None else restart_from
            s.hi_tu = s.last_tu
            self.state.restart_from_us = None
        last_seq = s.last_raw_seq
        assert last_seq is not None  # set above for the first frame of an epoch
        prev_seq = np.concatenate([[last_seq], seq[:-1]])
        dseq = ((seq - prev_seq + 32768) % 65536) - 32768
        if first:
            dseq[0] = 1
        u = s.last_u + np.cumsum(dseq)
        prev_t = np.concatenate([[s.last_raw_t], t_raw[:-1]])
        dt = ((t_raw - prev_t + (1 << 31)) % (1 << 32)) - (1 << 31)
        if first:
            dt[0] = 0
        tu = s.last_tu + np.cumsum(dt)
        s.last_raw_seq, s.last_u = int(seq[-1]), int(u[-1])
        s.last_raw_t, s.last_tu = int(t_raw[-1]), int(tu[-1])
        s.hi_tu = max(s.hi_tu, int(tu.max()))
        # duplicates: u seen before (history or earlier in this feed)
        allu = np.concatenate([s.seen, u])
        _, first_idx = np.unique(allu, return_index=True)
        is_first = np.zeros(len(allu), dtype=bool)
        is_first[first_idx] = True
        dup = ~is_first[len(s.seen):]
        prev_hi = s.hi_u if s.hi_u is not None else int(u[0]) - 1
        run_hi = np.maximum.accumulate(np.concatenate([[prev_hi], u]))[:-1]
        late = ~dup & (u < run_hi)
        st.duplicates += int(dup.sum())
        st.reordered += int(late.sum())
        new_u = u[~dup]
        s.unique += len(new_u)
        s.hi_u = max(prev_hi, int(u.max()))
        s.seen = np.concatenate([s.seen, new_u])[-_HISTORY:]
        s.seen_t = np.concatenate([s.seen_t, t_raw[~dup]])[-_HISTORY:]
        n_smp = (info & 0x0F) + 1
        # deliver in sequence order, once, never behind what was already delivered
        order = np.argsort(u, kind="stable")
        order = order[~dup[order]]
        if s.last_emitted_u is not None:
            too_late = u[order] <= s.last_emitted_u
            st.late_dropped += int(too_late.sum())
            order = order[~too_late]
        # loss from the sequence span
        span = s.hi_u - s.first_u + 1
        self._account_loss(max(0, span - s.unique), float(np.mean(n_smp)))
        if len(order) > 1:
            du = np.diff(u[order])
            dtu = np.diff(tu[order])
            ok = du > 0
            if np.any(ok):
                s.frame_us = float(np.median(dtu[ok] / du[ok]))
        if not len(order):
            return []
        s.last_emitted_u = int(u[order[-1]])
        return self._samples(a, starts[order], info[order], u[order], tu[order])

    def _account_loss(self, lost_epoch: int, mean_n: float) -> None:
        """Keep ``stats.lost`` = frames lost in past epochs + frames lost in this one."""
        s = self.state.epoch
        if s.lost_base is None:
            s.lost_base = self.stats.lost
        extra = lost_epoch - s.lost_seen
        s.lost_seen = lost_epoch
        self.stats.lost = s.lost_base + lost_epoch
        self.stats.lost_samples += int(round(extra * mean_n))

    def _samples(self, a, starts, info, u, tu) -> list[ImuBatch]:
        n_smp = (info & 0x0F) + 1
        enc = (info >> 4) & 0x03
        nf = len(starts)
        dt_us = np.zeros(nf, dtype=np.int64)
        multi = np.flatnonzero(n_smp > 1)
        if len(multi):
            dt_us[multi] = (a[starts[multi] + 9].astype(np.int64)
                            | (a[starts[multi] + 10].astype(np.int64) << 8))
        total = int(n_smp.sum())
        # sample k of frame f goes to out[offset[f] + k]
        if len(multi):
            frame = np.repeat(np.arange(nf), n_smp)
            offset = np.concatenate([[0], np.cumsum(n_smp)[:-1]])
            k = np.arange(total) - offset[frame]
            t_us = tu[frame] + k * dt_us[frame]
        else:  # one sample per frame (the MTU-23 stream)
            frame = np.arange(nf)
            offset = frame
            t_us = tu.copy()
        seq_out = u[frame]
        heel_has = ((info & INFO_HEEL_PRESENT) != 0)[frame]
        heel_out = ((info & INFO_HEEL_CONTACT) != 0)[frame].astype(float)
        acc = np.empty((total, 3))
        gyr = np.empty((total, 3))
        quat = np.full((total, 4), np.nan) if np.any(enc == ENC_I16Q) else None
        group = enc * 32 + n_smp
        for g in np.unique(group):
            e, n = int(g) // 32, int(g) % 32
            sel = np.flatnonzero(group == g) if len(group) > 1 else np.zeros(1, dtype=np.int64)
            sb = SAMPLE_BYTES[e]
            body0 = starts[sel] + HEADER_BYTES + (2 if n > 1 else 0)
            rows = a[body0[:, None] + np.arange(n * sb)].reshape(-1, sb)
            dst = (offset[sel][:, None] + np.arange(n)).reshape(-1) if n > 1 else offset[sel]
            if e == ENC_P12:
                vals = _unpack12(rows)
            else:
                vals = rows.view("<i2").astype(np.float64)
            acc[dst] = vals[:, 0:3] * ACC_LSB_M_S2[e]
            gyr[dst] = vals[:, 3:6] * GYR_LSB_RAD_S[e]
            if e == ENC_I16Q:
                q = vals[:, 6:10] * QUAT_LSB
                norm = np.linalg.norm(q, axis=1, keepdims=True)
                q = np.where(norm > 0, q / np.where(norm > 0, norm, 1.0), [1.0, 0, 0, 0])
                assert quat is not None  # allocated above when any frame is ENC_I16Q
                quat[dst] = q
        has_q = ~np.isnan(quat[:, 0]) if quat is not None else np.zeros(total, dtype=bool)
        self.stats.samples += total
        state = self.state
        if total:  # where time continues after a restart
            prev = [] if state.last_sample_us is None else [state.last_sample_us]
            step = np.diff(np.concatenate([prev, t_us]))
            step = step[step > 0]
            if len(step):
                state.sample_us = float(np.median(step))
            state.last_sample_us = int(t_us.max())
        # split where the optional channels change
        key = has_q.astype(np.int8) * 2 + heel_has
        cuts = np.flatnonzero(np.diff(key)) + 1
        out = []
        for i0, i1 in zip([0, *cuts.tolist()], [*cuts.tolist(), total], strict=True):
            out.append(ImuBatch(
                t_us[i0:i1] * 1e-6, acc[i0:i1], gyr[i0:i1],
                quat=quat[i0:i1] if quat is not None and has_q[i0] else None,
                heel_contact=heel_out[i0:i1] if heel_has[i0] else None,
                seq=seq_out[i0:i1], side=self.side))
        if out and state.mark_restart:
            out[0].restart, state.mark_restart = True, False
        return out


def _unpack12(rows: np.ndarray) -> np.ndarray:
    """(m, 9) bytes of six packed 12-bit two's complement fields -> (m, 6) floats."""
    r = rows.astype(np.int32)
    # three 24-bit little-endian words, two fields each
    w = r[:, 0::3] | (r[:, 1::3] << 8) | (r[:, 2::3] << 16)
    v = np.empty((len(rows), 6), dtype=np.int32)
    v[:, 0::2] = w & 0xFFF
    v[:, 1::2] = w >> 12
    return (v - ((v & 0x800) << 1)).astype(np.float64)
