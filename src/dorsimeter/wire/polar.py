"""Polar Verity Sense: Polar Measurement Data (PMD) frames and control-point commands.

From polarofficial/polar-ble-sdk ``technical_documentation/``: "Polar Measurement Data
Specification for 3rd Party" and "Polar Measurement Data" (online measurement, v1.0 2024), and
``SdkModeExplained.md``:

- PMD service ``FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8``: control point ``…5C81`` (read: the
  features, ``0F`` then a bit field; write + indicate: commands and their responses) and data
  ``…5C82`` (notify: one frame per notification).
- Commands: ``op type [settings]``; op 1 get settings, 2 start, 3 stop; type 2 ACC, 5 gyro, 9
  SDK mode. A setting is ``type count value…`` (0 sample rate u16, 1 resolution u16, 2 range u16,
  4 channels u8, 5 conversion factor float32). Responses: ``F0 op type status more params``;
  status 0 is success, 1-13 the errors of the specification's table (``ERRORS``).
- SDK mode (Verity Sense firmware 1.1.5 and later) offers ACC and gyro at 26, 52, 104, 208 and
  416 Hz (ACC ±2/4/8/16 g, gyro ±250/500/1000/2000 °/s, 16 bits); without it only ACC at 52 Hz.
- A frame: measurement type, timestamp (uint64 LE, ns since 2000-01-01, of the frame's *last*
  sample), frame type (bit 7: delta compressed), content. Uncompressed ACC: int8/16/24 × 3 (type
  0/1/2, mG; type 0 in G on the Verity). Compressed: a reference sample (channels × resolution
  bytes, LE signed), then blocks of ``bit width``, ``count`` and count × channels deltas of that
  width, bit-packed LSB first, each sample the previous plus its delta. The Verity's compressed
  type 0 values times the conversion factor are G (ACC) or °/s (gyro).

The frame carries no sequence number and no length: one notification is one frame, and one that
does not parse whole is skipped (``bytes_skipped``). The timestamps make gaps countable. ACC and
gyro arrive as separate frames; samples are paired by their place on the sample clock, and a
sample only one stream has (its partner's frame lost) is counted in ``lost``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from dorsimeter.types import GRAVITY_M_S2, ImuBatch

SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
CONTROL_POINT_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
#: Bluetooth SIG company identifier of Polar Electro Oy
COMPANY_ID = 0x006B

OP_GET_SETTINGS, OP_START, OP_STOP, OP_GET_SDK_SETTINGS = 1, 2, 3, 4
ACC, GYRO, SDK_MODE = 2, 5, 9
#: the specification's other data measurements (ECG, PPG, PPI, magnetometer, skin temperature,
#: location, pressure, temperature, offline HR): whole frames of these are ignored, not garbage
OTHER_MEASUREMENTS = frozenset({0, 1, 3, 6, 7, 10, 11, 12, 14})
SET_RATE, SET_RESOLUTION, SET_RANGE, SET_RANGE_MILLI, SET_CHANNELS, SET_FACTOR = 0, 1, 2, 3, 4, 5
_SETTING_BYTES = {SET_RATE: 2, SET_RESOLUTION: 2, SET_RANGE: 2, SET_RANGE_MILLI: 4,
                  SET_CHANNELS: 1, SET_FACTOR: 4}
RESPONSE = 0xF0
FEATURES = 0x0F  # the first byte of the control point's value
SUCCESS, ALREADY_IN_STATE = 0, 6
ERRORS = {1: "invalid op code", 2: "invalid measurement type", 3: "not supported",
          4: "invalid length", 5: "invalid parameter", 6: "already in state",
          7: "invalid resolution", 8: "invalid sample rate", 9: "invalid range",
          10: "invalid MTU", 11: "invalid number of channels", 12: "invalid state",
          13: "device in charger"}
DELTA = 0x80

#: SDK mode's rates (ACC and gyro alike); normal mode streams ACC at 52 Hz only
SDK_RATES_HZ = (26, 52, 104, 208, 416)
ACC_RANGE_G = 8        # ±8 g: a shin's drives and taps stay inside it, 0.24 mg per LSB
GYR_RANGE_DPS = 1000   # ±1000 °/s: above a shank's swing peaks, 0.031 °/s per LSB
RESOLUTION_BITS = 16
#: the conversion factors a Verity reports for those settings (range / 2^15)
ACC_FACTOR_G = ACC_RANGE_G / 2 ** 15
GYR_FACTOR_DPS = GYR_RANGE_DPS / 2 ** 15
NS_PER_S = 1_000_000_000
#: a frame ending this long before the stream's last sample is a restart, not a late frame
RESTART_BACK_NS = NS_PER_S


# --------------------------------------------------------------------------- commands
def encode_settings(settings: dict[int, int]) -> bytes:
    """Settings as a start command carries them: ``type 01 value`` each, in type order."""
    out = b""
    for kind in sorted(settings):
        size = _SETTING_BYTES[kind]
        out += bytes([kind, 1]) + int(settings[kind]).to_bytes(size, "little")
    return out


def start_command(measurement: int, rate_hz: int | None = None, range_: int | None = None,
                  resolution: int = RESOLUTION_BITS, channels: int = 3) -> bytes:
    """``02 type settings``: start an online measurement (SDK mode: no settings)."""
    if measurement == SDK_MODE:
        return bytes([OP_START, SDK_MODE])
    settings = {SET_RATE: int(rate_hz or 0), SET_RESOLUTION: resolution, SET_CHANNELS: channels}
    if range_ is not None:
        settings[SET_RANGE] = range_
    return bytes([OP_START, measurement]) + encode_settings(settings)


def stop_command(measurement: int) -> bytes:
    return bytes([OP_STOP, measurement])


def imu_start_commands(rate_hz: int) -> list[bytes]:
    """SDK mode, then ACC and gyro at ``rate_hz`` (16 bits, 3 channels, the ranges above)."""
    if rate_hz not in SDK_RATES_HZ:
        raise ValueError(f"the Polar Verity Sense streams ACC and gyro at "
                         f"{', '.join(map(str, SDK_RATES_HZ))} Hz, not {rate_hz:g}")
    return [start_command(SDK_MODE), start_command(ACC, rate_hz, ACC_RANGE_G),
            start_command(GYRO, rate_hz, GYR_RANGE_DPS)]


@dataclass(frozen=True)
class Response:
    """A control-point response: ``F0 op type status more params``."""

    op: int
    measurement: int
    status: int
    more: bool
    params: bytes

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS

    def error(self) -> str:
        return ERRORS.get(self.status, f"error {self.status}")


def parse_response(value: bytes) -> Response | None:
    """The response a control-point indication holds, None for anything else."""
    if len(value) < 4 or value[0] != RESPONSE:
        return None
    return Response(value[1], value[2], value[3], len(value) > 4 and value[3] == SUCCESS
                    and value[4] != 0, bytes(value[5:]) if value[3] == SUCCESS else b"")


def parse_settings(params: bytes) -> dict[int, list[float]] | None:
    """``type count values…`` settings (a settings or start response's parameters), the factor
    as a float; None if they do not parse whole."""
    out: dict[int, list[float]] = {}
    pos = 0
    while pos < len(params):
        if pos + 2 > len(params) or params[pos] not in _SETTING_BYTES:
            return None
        kind, count = params[pos], params[pos + 1]
        size = _SETTING_BYTES[kind]
        pos += 2
        if pos + count * size > len(params):
            return None
        raw = params[pos:pos + count * size]
        if kind == SET_FACTOR:
            out[kind] = [float(x) for x in struct.unpack(f"<{count}f", raw)]
        else:
            out[kind] = [float(int.from_bytes(raw[i * size:(i + 1) * size], "little"))
                         for i in range(count)]
        pos += count * size
    return out


def features(value: bytes) -> set[int]:
    """The measurement types a control point's read value (``0F`` + bit field) offers."""
    if len(value) < 2 or value[0] != FEATURES:
        return set()
    bits = int.from_bytes(value[1:3].ljust(2, b"\0"), "little")
    return {t for t in range(16) if bits >> t & 1}


# --------------------------------------------------------------------------- frames
def parse_delta(content: bytes, channels: int = 3, resolution: int = RESOLUTION_BITS
                ) -> np.ndarray | None:
    """A compressed frame's content -> (n, channels) int64 samples, None unless it parses whole
    (the reference sample, then whole delta blocks to the last byte)."""
    ref_bytes = -(-resolution // 8)
    head = channels * ref_bytes
    if len(content) < head:
        return None
    ref = np.frombuffer(content[:head], dtype=np.uint8).reshape(channels, ref_bytes)
    ref = (ref.astype(np.int64) << (8 * np.arange(ref_bytes))).sum(axis=1)
    ref = np.where(ref >= 1 << (resolution - 1), ref - (1 << resolution), ref)
    blocks = [ref[None, :]]
    pos = head
    while pos < len(content):
        if pos + 2 > len(content):
            return None
        width, count = content[pos], content[pos + 1]
        pos += 2
        n_bytes = -(-width * count * channels // 8)
        if width == 0 or width > 32 or count == 0 or pos + n_bytes > len(content):
            return None
        bits = np.unpackbits(np.frombuffer(content[pos:pos + n_bytes], dtype=np.uint8),
                             bitorder="little")[:width * count * channels]
        vals = (bits.reshape(-1, width).astype(np.int64) << np.arange(width)).sum(axis=1)
        vals = np.where(vals >= 1 << (width - 1), vals - (1 << width), vals)
        blocks.append(vals.reshape(count, channels))
        pos += n_bytes
    return np.cumsum(np.concatenate(blocks), axis=0)


def parse_raw(content: bytes, size: int, channels: int = 3) -> np.ndarray | None:
    """An uncompressed frame's signed little-endian samples of ``size`` bytes, None unless the
    content is whole samples."""
    step = size * channels
    if not content or len(content) % step:
        return None
    a = np.frombuffer(content, dtype=np.uint8).reshape(-1, size).astype(np.int64)
    v = (a << (8 * np.arange(size))).sum(axis=1)
    v = np.where(v >= 1 << (8 * size - 1), v - (1 << (8 * size)), v)
    return v.reshape(-1, channels)


def frame_values(measurement: int, frame_type: int, content: bytes) -> np.ndarray | None:
    """(n, 3) ACC in m/s² or gyro in rad/s from one frame's content, None if the frame is not
    one of the Verity's ACC or gyro formats or does not parse whole."""
    if measurement == ACC:
        if frame_type == DELTA:  # the Verity's SDK-mode ACC: G × factor
            v = parse_delta(content)
            return None if v is None else v * (ACC_FACTOR_G * GRAVITY_M_S2)
        size = {0: 1, 1: 2, 2: 3}.get(frame_type)
        v = None if size is None else parse_raw(content, size)
        if v is None:
            return None
        scale = GRAVITY_M_S2 if size == 1 else GRAVITY_M_S2 / 1000  # type 0: G; 1, 2: mG
        return v * scale
    if measurement == GYRO and frame_type == DELTA:
        v = parse_delta(content)
        return None if v is None else np.radians(v * GYR_FACTOR_DPS)
    return None


def encode_frame(measurement: int, t_last_ns: int, frame_type: int, content: bytes) -> bytes:
    """A PMD data frame: type, timestamp of the last sample (ns), frame type, content."""
    return bytes([measurement]) + struct.pack("<QB", t_last_ns, frame_type) + content


# --------------------------------------------------------------------------- the decoder
@dataclass
class PolarStats:
    """Counters of a PMD decoder."""

    frames: int = 0          # ACC and gyro frames decoded
    samples: int = 0         # acc + gyro pairs delivered
    bytes_skipped: int = 0   # notifications that are no whole ACC or gyro frame
    ignored: int = 0         # whole frames of other measurements (PPG, magnetometer, ...)
    lost: int = 0            # samples missing on the sample clock (a frame of either lost)
    late: int = 0            # frames whose first sample is not after the last one (dropped)
    restarts: int = 0        # the device clock went back by more than a second: a restart

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Stream:
    """One measurement's samples waiting for their partner, on the sample clock ``k``."""

    k_next: int | None = None      # the clock index after its last frame
    t_last_ns: int | None = None   # device time of its last sample
    offset_ns: int = 0             # added to its times since a restart set its clock back
    k: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    t_ns: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    v: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))


@dataclass
class PolarState:
    """What a PMD decoder changes as frames come in."""

    t0_ns: int | None = None       # device time of the first sample (t_s = 0, k = 0 there)
    acc: _Stream = field(default_factory=_Stream)
    gyr: _Stream = field(default_factory=_Stream)
    k_out: int | None = None       # the clock index of the last pair delivered
    restart: bool = False          # a restart seen and not yet marked on a batch


class PolarDecoder:
    """PMD notifications (one frame each) -> ImuBatch of paired ACC (m/s²) and gyro (rad/s),
    ``t_s`` from the device timestamps (0 at the first sample). Never raises."""

    def __init__(self, rate_hz: float = 52.0, side: str | None = None) -> None:
        self.rate_hz = float(rate_hz)
        self.side = side
        self.stats = PolarStats()
        self.state = PolarState()

    def feed(self, data: bytes) -> list[ImuBatch]:
        data = bytes(data)
        if len(data) < 10:
            self.stats.bytes_skipped += len(data)
            return []
        measurement = data[0] & 0x3F
        t_last_ns = int.from_bytes(data[1:9], "little")
        values = frame_values(measurement, data[9], data[10:])
        if values is None:
            if measurement in OTHER_MEASUREMENTS:
                self.stats.ignored += 1
            else:
                self.stats.bytes_skipped += len(data)
            return []
        self.stats.frames += 1
        self._add(self.state.acc if measurement == ACC else self.state.gyr, t_last_ns, values)
        return self._pairs()

    def _add(self, s: _Stream, t_last_ns: int, values: np.ndarray) -> None:
        """Place a frame's samples on the clock: back from its last sample's time at the
        nominal period, after the stream's last frame by the whole periods between them."""
        st = self.state
        n = len(values)
        period_ns = NS_PER_S / self.rate_hz
        t_ns = t_last_ns + s.offset_ns - np.rint((n - 1 - np.arange(n)) * period_ns).astype(
            np.int64)
        if st.t0_ns is None:
            st.t0_ns = int(t_ns[0])
        if s.t_last_ns is not None and s.k_next is not None:
            steps = round((int(t_ns[0]) - s.t_last_ns) / period_ns)
            if steps < 1 and s.t_last_ns - int(t_ns[-1]) > RESTART_BACK_NS:
                # its clock went back: the sensor restarted (its time reset to the default);
                # the sample clock goes on from here, the fusion starts afresh
                self.stats.restarts += 1
                st.restart = True
                shift = s.t_last_ns + round(period_ns) - int(t_ns[0])
                s.offset_ns += shift  # device time stays unbroken: on from the last sample
                t_ns = t_ns + shift
                steps = 1
            elif steps < 1:
                self.stats.late += 1
                return
            k0 = s.k_next - 1 + steps
        else:  # its first frame: on the clock of the first sample of either stream
            k0 = round((int(t_ns[0]) - st.t0_ns) / period_ns)
        k = k0 + np.arange(n)
        s.k_next, s.t_last_ns = int(k[-1]) + 1, int(t_ns[-1])
        keep = k > (st.k_out if st.k_out is not None else -1)
        s.k = np.concatenate([s.k, k[keep]])
        s.t_ns = np.concatenate([s.t_ns, t_ns[keep]])
        s.v = np.concatenate([s.v, values[keep]])

    def _pairs(self) -> list[ImuBatch]:
        st = self.state
        a, g = st.acc, st.gyr
        if not len(a.k) or not len(g.k) or st.t0_ns is None:
            return []
        both, ia, ig = np.intersect1d(a.k, g.k, assume_unique=True, return_indices=True)
        t_s = (a.t_ns[ia] - st.t0_ns) / NS_PER_S  # the ACC sample's time stamps the pair
        acc, gyr = a.v[ia], g.v[ig]
        # a stream's samples up to the other's last one are final: unpaired ones are lost
        done_to = min(int(a.k[-1]), int(g.k[-1]))
        for s in (a, g):
            rest = s.k > done_to
            s.k, s.t_ns, s.v = s.k[rest], s.t_ns[rest], s.v[rest]
        if not len(both):
            return []
        if st.k_out is not None:
            self.stats.lost += int(both[0]) - st.k_out - 1
        self.stats.lost += int(both[-1] - both[0]) + 1 - len(both)
        st.k_out = int(both[-1])
        self.stats.samples += len(both)
        restart, st.restart = st.restart, False
        return [ImuBatch(t_s, acc, gyr, side=self.side, restart=restart)]
