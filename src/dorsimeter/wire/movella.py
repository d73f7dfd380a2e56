"""Movella (Xsens) DOT: the measurement service's custom mode 5 over BLE, and its set-up writes.

From the Movella DOT BLE Services Specification (XD0506P; Movella rev. C, July 2023). Every UUID is
on the base ``1517xxxx-4947-11e9-8646-d663bd873d93``:

- Configuration service ``1000``: Device Control ``1002`` (read/write, 32 bytes: visit index,
  identifying, power options, power-saving timeouts, device tag, **output rate** uint16 LE at
  bytes 24-25, filter profile at 26). The visit index says which fields a write changes (bit 4:
  the output rate); real-time streaming runs at 1, 4, 10, 12, 15, 20, 30 or 60 Hz (120 Hz is
  for recording only).
- Measurement service ``2000``: Control ``2001`` (read/write, 3 bytes: type 1 = measurement,
  action 1 = start / 0 = stop, payload mode) and the long payload ``2002`` (notify, 63 bytes).
- Battery service ``3000``: Battery ``3001`` (read/notify: level %, charging 0/1).

Payload mode 26, **custom mode 5**: timestamp (uint32 LE, µs, wraps at 2³²), orientation
quaternion w, x, y, z (float32, sensor to the local earth frame ENU: z up), acceleration
(float32, m/s², sensor frame, gravity included) and angular velocity (float32, °/s): 44 bytes at
the start of the 63-byte long payload (the rest zero). It is the one real-time mode that carries
the raw acceleration *and* the angular velocity *and* the DOT's own orientation (its strapdown
integration runs at 800 Hz inside, so the 60 Hz output loses no rotation between samples): the
orientation passes through as the batch's quaternion, the raw channels go to the recording.

No sequence numbers; the timestamps make gaps countable: samples missing between two packets
are ``round(Δt · rate) − 1``. Notifications carry no sync byte, so a packet is recognised by its
content (finite values, a unit quaternion, values within the sensor's ±16 g / ±2000 °/s).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from dorsimeter.types import ImuBatch
from dorsimeter.wire.chain import greedy_chain

BASE_UUID = "1517{:04x}-4947-11e9-8646-d663bd873d93"
CONFIG_SERVICE_UUID = BASE_UUID.format(0x1000)
DEVICE_INFO_UUID = BASE_UUID.format(0x1001)
DEVICE_CONTROL_UUID = BASE_UUID.format(0x1002)
MEASUREMENT_SERVICE_UUID = BASE_UUID.format(0x2000)
CONTROL_UUID = BASE_UUID.format(0x2001)
LONG_PAYLOAD_UUID = BASE_UUID.format(0x2002)
MEDIUM_PAYLOAD_UUID = BASE_UUID.format(0x2003)
SHORT_PAYLOAD_UUID = BASE_UUID.format(0x2004)
BATTERY_SERVICE_UUID = BASE_UUID.format(0x3000)
BATTERY_UUID = BASE_UUID.format(0x3001)
#: Bluetooth SIG company identifier of Xsens Technologies B.V. (manufacturer data)
COMPANY_ID = 0x0886

MEASUREMENT_TYPE = 0x01
START, STOP = 0x01, 0x00
CUSTOM_MODE_5 = 26
PACKET_BYTES = 44  # custom mode 5
LONG_PAYLOAD_BYTES = 63
DEVICE_CONTROL_BYTES = 32
VISIT_OUTPUT_RATE = 0x10  # visit index bit 4
OUTPUT_RATE_OFFSET = 24
#: output rates of real-time streaming (Device Control, "output rate"; 120 Hz records only)
STREAM_RATES_HZ = (1, 4, 10, 12, 15, 20, 30, 60)
DEFAULT_RATE_HZ = 60

#: a packet's quaternion is a unit one (normalised in float32 by the sensor: |1 - norm| ~ 1e-7)
QUAT_NORM_TOL = 1e-4
ACC_LIMIT_M_S2 = 16 * 9.81 * 1.05  # ±16 g range, a margin for calibration
GYR_LIMIT_DPS = 2000 * 1.05
_WRAP = 1 << 32


def control_command(payload_mode: int = CUSTOM_MODE_5, start: bool = True) -> bytes:
    """The 3-byte write to the measurement Control characteristic: type, action, payload mode."""
    return bytes([MEASUREMENT_TYPE, START if start else STOP, payload_mode])


def set_output_rate(device_control: bytes, rate_hz: int) -> bytes:
    """The Device Control value that sets the output rate: the value read, with the visit index
    set to "output rate" and the rate in bytes 24-25 (ValueError for a rate not streamed)."""
    if rate_hz not in STREAM_RATES_HZ:
        raise ValueError(f"the Movella DOT streams at {', '.join(map(str, STREAM_RATES_HZ))} Hz, "
                         f"not {rate_hz:g}")
    value = bytearray(device_control[:DEVICE_CONTROL_BYTES].ljust(DEVICE_CONTROL_BYTES, b"\0"))
    value[0] = VISIT_OUTPUT_RATE
    value[OUTPUT_RATE_OFFSET:OUTPUT_RATE_OFFSET + 2] = struct.pack("<H", rate_hz)
    return bytes(value)


def output_rate(device_control: bytes) -> int | None:
    """The output rate a Device Control value holds, None if too short."""
    if len(device_control) < OUTPUT_RATE_OFFSET + 2:
        return None
    return struct.unpack_from("<H", device_control, OUTPUT_RATE_OFFSET)[0]


def battery_percent(value: bytes) -> int | None:
    """The level % of a Battery characteristic value (level, charging), None if empty."""
    return int(value[0]) if value else None


def encode_packets(t_us, quat_wxyz, acc_m_s2, gyr_dps, pad: bool = True) -> bytes:
    """Custom mode 5 packets, one per row, each padded to the 63-byte long payload (``pad``)."""
    t = np.asarray(t_us, dtype=np.int64).reshape(-1) % _WRAP
    n = len(t)
    rec = np.zeros(n, dtype=[("t", "<u4"), ("v", "<f4", (10,)),
                             ("pad", "u1", (LONG_PAYLOAD_BYTES - PACKET_BYTES if pad else 0,))])
    rec["t"] = t
    rec["v"] = np.concatenate([np.reshape(quat_wxyz, (n, 4)), np.reshape(acc_m_s2, (n, 3)),
                               np.reshape(gyr_dps, (n, 3))], axis=1)
    return rec.tobytes()


@dataclass
class DotStats:
    """Counters of a DOT decoder."""

    packets: int = 0
    samples: int = 0
    bytes_skipped: int = 0  # bytes in no packet (the long payload's zero padding not counted)
    padding: int = 0        # zero bytes after a packet, up to the 63-byte payload
    lost: int = 0           # samples missing by the device timestamps
    duplicates: int = 0     # packets with the timestamp of the one before (dropped)
    restarts: int = 0       # the sensor's clock went back: it restarted

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class DotState:
    """What a DOT decoder changes as bytes come in."""

    buf: bytes = b""
    last_raw_us: int | None = None  # the last packet's timestamp as sent (wrapping)
    unwrapped_us: int = 0           # the same, unwrapped, from 0 at the first packet


class DotDecoder:
    """Custom mode 5 bytes -> ImuBatch (acc m/s², gyro rad/s, the DOT's quaternion; ``t_s`` from
    its µs timestamps, from 0 at the first packet). Any split, garbage around; never raises."""

    def __init__(self, rate_hz: float = DEFAULT_RATE_HZ, side: str | None = None) -> None:
        self.rate_hz = float(rate_hz)
        self.side = side
        self.stats = DotStats()
        self.state = DotState()

    def feed(self, data: bytes) -> list[ImuBatch]:
        st = self.state
        buf = st.buf + bytes(data)
        n = len(buf) - PACKET_BYTES + 1
        if n <= 0:
            st.buf = buf
            return []
        a = np.frombuffer(buf, dtype=np.uint8)
        # the float32 at every byte offset (four strided views), then each offset's checks as
        # sums of shifted slices: memory in proportion to the bytes, not 40 times them
        fa = np.empty(len(buf) - 3)
        with np.errstate(invalid="ignore", over="ignore"):
            for r in range(4):
                vals = a[r:r + 4 * ((len(buf) - r) // 4)].view("<f4")
                fa[r::4] = vals[:len(fa[r::4])]
            fin = np.isfinite(fa)
            fz = np.where(fin, fa, 0.0)

            def at(j: int) -> slice:  # float j (0-9) of the packet starting at each offset
                return slice(4 + 4 * j, 4 + 4 * j + n)

            ok = np.ones(n, dtype=bool)
            for j in range(10):
                ok &= fin[at(j)]
            qn = np.sqrt(sum(fz[at(j)] ** 2 for j in range(4)))
            ok &= np.abs(qn - 1.0) < QUAT_NORM_TOL
            for j in range(4, 10):
                ok &= np.abs(fz[at(j)]) < (ACC_LIMIT_M_S2 if j < 7 else GYR_LIMIT_DPS)
        cand = self._best(np.flatnonzero(ok), np.abs(qn - 1.0))
        starts = cand[greedy_chain(cand, cand + PACKET_BYTES)] if len(cand) else cand
        # a packet is decided once every window overlapping it is in the buffer, or when the
        # long payload's zero padding follows it (its notification ends there); the rest waits
        nz = np.concatenate([[0], np.cumsum(a != 0)])
        padded = starts + LONG_PAYLOAD_BYTES <= len(buf)
        pad_end = np.where(padded, starts + LONG_PAYLOAD_BYTES, 0)
        pad_from = np.where(padded, starts + PACKET_BYTES, 0)
        decided = (starts + 2 * PACKET_BYTES - 1 <= len(buf)) | (
            padded & (nz[pad_end] == nz[pad_from]))
        undecided = np.flatnonzero(~decided)
        if len(undecided):
            starts = starts[:undecided[0]]
        last_end = int(starts[-1]) + PACKET_BYTES if len(starts) else 0
        keep_from = max(last_end, len(buf) - 2 * PACKET_BYTES + 1)
        self._count_skipped(a, starts, keep_from)
        st.buf = buf[keep_from:]
        if not len(starts):
            return []
        self.stats.packets += len(starts)
        rows = fa[starts[:, None] + 4 + 4 * np.arange(10)]
        t_raw = np.frombuffer(buf, dtype=np.uint8)[starts[:, None] + np.arange(4)]
        t_raw = np.ascontiguousarray(t_raw).view("<u4").reshape(-1).astype(np.int64)
        return self._batch(t_raw, rows)

    @staticmethod
    def _best(cand: np.ndarray, err: np.ndarray) -> np.ndarray:
        """Of candidates that overlap, the one whose quaternion is the closest to unit norm: a
        window shifted into a real packet can pass the checks (its "quaternion" then holds three
        of the real one's components and a float near zero), but not as closely."""
        e = err[cand]
        worse = np.zeros(len(cand), dtype=bool)
        for k in range(1, min(len(cand), PACKET_BYTES)):
            overlap = cand[k:] - cand[:-k] < PACKET_BYTES
            later_better = e[k:] < e[:-k]
            worse[:-k] |= overlap & later_better
            worse[k:] |= overlap & ~later_better
        return cand[~worse]

    def _count_skipped(self, a: np.ndarray, starts: np.ndarray, keep_from: int) -> None:
        """Bytes between packets: zero padding up to the long payload is ``padding``, the rest
        ``bytes_skipped``."""
        ends = starts + PACKET_BYTES
        gap_from = np.concatenate([[0], ends])
        gap_to = np.concatenate([starts, [keep_from]])
        nz = np.concatenate([[0], np.cumsum(a != 0)])
        sizes = gap_to - gap_from
        nonzero = nz[gap_to] - nz[gap_from]
        pad_max = np.full(len(sizes), LONG_PAYLOAD_BYTES - PACKET_BYTES)
        pad_max[0] = 0 if self.state.last_raw_us is None else pad_max[0]
        is_pad = (nonzero == 0) & (sizes <= pad_max)
        self.stats.padding += int(sizes[is_pad].sum())
        self.stats.bytes_skipped += int(sizes[~is_pad].sum())

    def _batch(self, t_raw: np.ndarray, rows: np.ndarray) -> list[ImuBatch]:
        st = self.state
        first = st.last_raw_us is None
        prev = int(t_raw[0]) if st.last_raw_us is None else st.last_raw_us
        step = np.diff(np.concatenate([[prev], t_raw])) % _WRAP  # µs since the packet before
        period_us = int(round(1e6 / self.rate_hz))
        # a timestamp equal to the one before is a repeat: dropped; a jump back (by more than
        # half the wrap) is a restart of the sensor's clock: time goes on a period later
        keep = step > 0
        keep[0] |= first
        restart = keep & (step >= _WRAP // 2)
        if first:
            restart[0] = False
        self.stats.duplicates += int(np.count_nonzero(~keep))
        self.stats.restarts += int(np.count_nonzero(restart))
        step = np.where(keep, np.where(restart, period_us, step), 0)
        t_us = st.unwrapped_us + np.cumsum(step)
        st.unwrapped_us = int(t_us[-1])
        st.last_raw_us = int(t_raw[-1])
        t_us, rows, step, restart = t_us[keep], rows[keep], step[keep], restart[keep]
        if not len(t_us):
            return []
        missed = np.maximum(0, np.rint(step * self.rate_hz / 1e6).astype(np.int64) - 1)
        if first:
            missed[0] = 0
        self.stats.lost += int(missed.sum())
        self.stats.samples += len(t_us)
        q = rows[:, 0:4] / np.linalg.norm(rows[:, 0:4], axis=1, keepdims=True)
        batch = ImuBatch(t_us / 1e6, rows[:, 4:7], np.radians(rows[:, 7:10]), quat=q,
                         side=self.side)
        cuts = [0, *np.flatnonzero(restart).tolist(), len(t_us)]  # a restart opens a batch
        out = []
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            if b > a:
                part = batch.slice(a, b)
                part.restart = bool(restart[a])
                out.append(part)
        return out
