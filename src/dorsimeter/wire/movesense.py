"""Movesense sensors running the GATT SensorData Protocol firmware app (``gatt_sensordata_app``).

The protocol (movesense-device-lib ``samples/gatt_sensordata_app``, ``GATTSensorDataClient``):
service ``34802252-7185-4d5d-b431-630e7050e8f0``; the host writes commands to ``34800001-…``
and the sensor answers and streams on ``34800002-…`` (notify), both 128-bit UUIDs on the
service's base. A command is ``command, client reference (1..255), data``: HELLO (0), SUBSCRIBE
(1, the Whiteboard resource path as text, e.g. ``/Meas/IMU6/104``), UNSUBSCRIBE (2, the
reference given to SUBSCRIBE). Notifications are ``type, reference, payload``: a command result
(1; HELLO answers ``Hello``, a refused SUBSCRIBE a big-endian HTTP status such as 507) or data
(2) in Movesense's SBEM binary layout; data longer than one notification is split and its rest
follows at once as DATA_PART2 (3, same reference; the vendor's Python client joins the two).

IMU6 data (``/Meas/IMU6/{rate}``, the ``meas_imu`` API): uint32 LE timestamp of the first sample
in ms of the sensor's clock, then the acceleration array (m/s², float32 x, y, z per sample), then
the gyro array (°/s, float32). At rate r a notification carries r / 13 samples (8 at 104 Hz, as
the vendor's client reads them). We convert the gyro to rad/s; float32 keeps everything else.

Each ``feed()`` is one notification (BLE delivers them whole). Anything that is not a whole,
plausible IMU6 message of our reference is skipped and counted; the next one resynchronises.
The timestamps number the notifications: a missing one shows as a jump of one notification's
span, so loss is counted exactly (``stats.lost``, ``stats.lost_samples``); a timestamp that goes
back is a sensor restart (its clock starts at 0), marked on the batch.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from dorsimeter.types import ImuBatch

SERVICE_UUID = "34802252-7185-4d5d-b431-630e7050e8f0"
WRITE_UUID = "34800001-7185-4d5d-b431-630e7050e8f0"
NOTIFY_UUID = "34800002-7185-4d5d-b431-630e7050e8f0"

HELLO, SUBSCRIBE, UNSUBSCRIBE = 0, 1, 2  # commands
COMMAND_RESULT, DATA, DATA_PART2 = 1, 2, 3  # notification types
HELLO_REPLY = b"Hello"

#: the LSM6DS3's output rates behind /Meas/IMU6 (``meas_imu`` API)
IMU_RATES_HZ = (13.0, 26.0, 52.0, 104.0, 208.0, 416.0, 833.0, 1666.0)
#: the ones one DATA notification and its DATA_PART2 carry at Movesense's MTU (161: 158 bytes
#: each): 104 Hz is 8 samples, 196 bytes; 208 Hz would be 388
BLE_RATES_HZ = IMU_RATES_HZ[:4]
NOTIFICATIONS_HZ = 13.0  # a notification every 1/13 s whatever the rate
SAMPLE_BYTES = 24  # acc x, y, z and gyro x, y, z as float32
MAX_PAYLOAD = 158  # the app's MTU of 161 less the ATT header

#: our client references: the IMU subscription and the HELLO (any 1..255 the host picks)
IMU_REF = 99
HELLO_REF = 72

#: beyond the sensor's ranges (±16 g, ±2000 °/s), with room: a value past them is not data
ACC_LIMIT_M_S2 = 16 * 9.80665 * 1.5
GYR_LIMIT_DPS = 2000.0 * 1.5


def encode_hello(ref: int = HELLO_REF) -> bytes:
    return bytes([HELLO, _ref(ref)])


def encode_subscribe(path: str, ref: int = IMU_REF) -> bytes:
    """SUBSCRIBE ``path`` (a Whiteboard resource, e.g. ``/Meas/IMU6/104``) under ``ref``."""
    return bytes([SUBSCRIBE, _ref(ref)]) + path.encode("ascii")


def encode_unsubscribe(ref: int = IMU_REF) -> bytes:
    return bytes([UNSUBSCRIBE, _ref(ref)])


def _ref(ref: int) -> int:
    if not 1 <= ref <= 255:
        raise ValueError(f"a Movesense client reference is 1-255, not {ref}")
    return ref


def imu6_path(rate_hz: float) -> str:
    """``/Meas/IMU6/{rate}``: acc + gyro at an offered rate (ValueError for another)."""
    if rate_hz not in BLE_RATES_HZ:
        raise ValueError(f"Movesense streams IMU6 over BLE at "
                         f"{', '.join(f'{r:g}' for r in BLE_RATES_HZ)} Hz, not {rate_hz:g}")
    return f"/Meas/IMU6/{int(rate_hz)}"


def samples_per_notification(rate_hz: float) -> int:
    return max(1, int(round(rate_hz / NOTIFICATIONS_HZ)))


@dataclass(frozen=True)
class Reply:
    """A command result: the reference it answers and its payload (``Hello``, or a status)."""

    ref: int
    payload: bytes

    @property
    def status(self) -> int | None:
        """The HTTP status a refusal carries (big-endian uint16), else None."""
        return int.from_bytes(self.payload, "big") if len(self.payload) == 2 else None


def parse_reply(data: bytes) -> Reply | None:
    """The command result a notification holds, else None."""
    if len(data) >= 2 and data[0] == COMMAND_RESULT:
        return Reply(data[1], bytes(data[2:]))
    return None


@dataclass
class MovesenseStats:
    """Counters of a Movesense decoder."""

    packets: int = 0  # valid IMU6 messages (a DATA and its DATA_PART2 count once)
    samples: int = 0
    replies: int = 0  # command results seen
    bytes_skipped: int = 0  # in notifications that held no valid message
    resyncs: int = 0  # runs of such notifications
    lost: int = 0  # messages missing, from the timestamps
    lost_samples: int = 0
    restarts: int = 0  # the sensor's clock went back (it restarted)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class MovesenseState:
    """Everything the decoder changes as notifications come in."""

    held: bytes = b""  # a DATA message waiting for its DATA_PART2
    last_ms: int | None = None  # unwrapped timestamp of the last message
    last_n: int = 0  # samples in it
    wraps: int = 0  # uint32 ms wraps of the sensor's clock
    t_offset_s: float = 0.0  # added after a restart, so device time goes on forward
    in_garbage: bool = False
    replies: list[Reply] = field(default_factory=list)


class MovesenseDecoder:
    """IMU6 notifications of subscription ``ref`` at ``rate_hz`` -> ImuBatch (m/s², rad/s,
    device time from the sensor's timestamps). Never raises."""

    def __init__(self, rate_hz: float, side: str | None = None, ref: int = IMU_REF) -> None:
        self.rate_hz = float(rate_hz)
        self.side = side
        self.ref = ref
        self.n_expected = samples_per_notification(self.rate_hz)
        self.stats = MovesenseStats()
        self.state = MovesenseState()

    def pop_replies(self) -> list[Reply]:
        out, self.state.replies = self.state.replies, []
        return out

    def feed(self, data: bytes) -> list[ImuBatch]:
        data = bytes(data)
        st = self.state
        out: list[ImuBatch] = []
        if st.held:
            held, st.held = st.held, b""
            if len(data) >= 2 and data[0] == DATA_PART2 and data[1] == self.ref:
                return self._message(held + data[2:], len(held) + len(data))
            out += self._message(held, len(held))  # no second part came: whole or garbage
        if len(data) >= 2 and data[0] == COMMAND_RESULT:
            self.stats.replies += 1
            st.replies.append(Reply(data[1], data[2:]))
            st.in_garbage = False
            return out
        if len(data) >= 2 and data[0] == DATA and data[1] == self.ref:
            if len(data) - 6 < self.n_expected * SAMPLE_BYTES:
                st.held = data  # short of a whole message: its DATA_PART2 may follow
                return out
            return out + self._message(data, len(data))
        self._skip(len(data))
        return out

    def _skip(self, n_bytes: int) -> None:
        if n_bytes == 0:
            return
        self.stats.bytes_skipped += n_bytes
        if not self.state.in_garbage:
            self.stats.resyncs += 1
        self.state.in_garbage = True

    def _message(self, msg: bytes, wire_bytes: int) -> list[ImuBatch]:
        """A whole DATA message (header, timestamp, arrays) -> its batch, or skipped."""
        body = len(msg) - 6
        if body <= 0 or body % SAMPLE_BYTES:
            self._skip(wire_bytes)
            return []
        n = body // SAMPLE_BYTES
        vals = np.frombuffer(msg, dtype="<f4", offset=6).astype(float).reshape(2, n, 3)
        acc, gyr_dps = vals[0], vals[1]
        if not (np.all(np.isfinite(vals)) and np.all(np.abs(acc) <= ACC_LIMIT_M_S2)
                and np.all(np.abs(gyr_dps) <= GYR_LIMIT_DPS)):
            self._skip(wire_bytes)
            return []
        st, stats = self.state, self.stats
        st.in_garbage = False
        (ts,) = struct.unpack_from("<I", msg, 2)
        ms = ts + (st.wraps << 32)
        restart = False
        if st.last_ms is not None:
            if ms < st.last_ms - 2**31:  # the 32-bit ms clock wrapped (after 49.7 days)
                st.wraps += 1
                ms += 1 << 32
            elif ms < st.last_ms:  # went back: the sensor restarted, its clock from 0
                restart = True
                stats.restarts += 1
                st.t_offset_s += (st.last_ms + st.last_n * 1000.0 / self.rate_hz - ms) / 1000.0
            else:
                expected = st.last_n * 1000.0 / self.rate_hz
                missing = max(0, int(math.floor((ms - st.last_ms) / expected + 0.5)) - 1)
                stats.lost += missing
                stats.lost_samples += missing * st.last_n
        st.last_ms, st.last_n = ms, n
        stats.packets += 1
        stats.samples += n
        t_s = ms / 1000.0 + st.t_offset_s + np.arange(n) / self.rate_hz
        return [ImuBatch(t_s, acc, np.radians(gyr_dps), side=self.side, restart=restart)]
