"""WitMotion sensors: BWT901BLE notifications (0x55 0x61) and the UART protocol (0x55 0x5X).

Units on the wire: acc × 16 g / 32768, gyro × 2000 °/s / 32768, angles × 180° / 32768, all
int16 little-endian. We convert to m/s² (× ``GRAVITY_M_S2``), rad/s and a quaternion.

Angle convention (WitMotion's, checked against gravity in the tests): the angles are roll (about
x), pitch (about y) and yaw (about z) of the sensor, applied as intrinsic Z-Y'-X'' (yaw, then
pitch, then roll): sensor-to-world ``R = Rz(yaw) · Ry(pitch) · Rx(roll)``, world z up. At rest,
roll = atan2(ay, az) and pitch = atan2(-ax, √(ay² + az²)).

WitMotion has no sequence numbers and no timestamps: ``t_s`` is a sample counter divided by the
configured output rate, and ``seq`` is that counter.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from dorsimeter.types import GRAVITY_M_S2, ImuBatch
from dorsimeter.wire.chain import greedy_chain

HEADER = 0x55
BLE_DATA = 0x61  # 20-byte notification: acc, gyro, angle
BLE_REG = 0x71  # 20-byte register read reply
BLE_PACKET_BYTES = 20
UART_PACKET_BYTES = 11
UART_TIME, UART_ACC, UART_GYR, UART_ANGLE, UART_MAG = 0x50, 0x51, 0x52, 0x53, 0x54
UART_QUAT = 0x59

ACC_G_PER_LSB = 16.0 / 32768.0
GYR_DPS_PER_LSB = 2000.0 / 32768.0
ANGLE_DEG_PER_LSB = 180.0 / 32768.0

# commands (written to the BLE write characteristic or the UART), one at a time
UNLOCK = bytes.fromhex("ffaa6988b5")
SAVE = bytes.fromhex("ffaa000000")
RATE_CODES = {0.2: 0x01, 0.5: 0x02, 1: 0x03, 2: 0x04, 5: 0x05, 10: 0x06, 20: 0x07, 50: 0x08,
              100: 0x09, 125: 0x0A, 200: 0x0B}
#: the vendor SDK's pause between unlock, register write and save (WITMOTION/
#: WitBluetooth_BWT901BLE5_0, Python ``device_model.writeReg``: ``time.sleep(0.1)`` twice)
COMMAND_GAP_S = 0.1

# register reads: ``FF AA 27 rr 00`` asks for register rr; a BLE unit answers with a 20-byte
# ``55 71`` notification: the register (uint16 LE) then 8 int16 LE values, the register's first
# and those after it (the SDK's ``Bwt901bleResolver`` matches the register and reads 4 values;
# ``DeviceModel.OnReceiveBle`` reads the battery from bytes 4-5)
READ_REGISTER = 0x27
REG_RATE, REG_BATTERY = 0x03, 0x64  # RRATE (output rate code), battery: volts × 100

#: fastest output rate per radio: the Bluetooth 4.0 units (WT901BLECL: "0.1-50Hz") and the
#: Bluetooth 5.0 ones (WT9011DCL-BT5.0 / BWT901BLECL5.0 datasheets: 0.2-200 Hz)
MAX_RATE_HZ = {"ble4": 50.0, "ble5": 200.0}
#: the vendor SDK's single-cell curve (volts -> %, linear between): ``getEqPercent``
BATTERY_CURVE_V = (3.4, 3.5, 3.68, 3.7, 3.73, 3.77, 3.79, 3.82, 3.87, 3.93, 3.96, 3.99)
BATTERY_CURVE_PCT = (0, 5, 10, 15, 20, 30, 40, 50, 60, 75, 90, 100)


def read_register_command(reg: int) -> bytes:
    """``FF AA 27 rr 00``: ask the unit for register ``reg`` (no unlock needed)."""
    if not 0 <= reg <= 0xFF:
        raise ValueError(f"WitMotion registers are 0x00-0xFF, not {reg}")
    return bytes([0xFF, 0xAA, READ_REGISTER, reg, 0x00])


#: ``FF AA 27 64 00``: the battery request; the reply's first value is the cell in volts × 100
BATTERY_COMMAND = read_register_command(REG_BATTERY)


@dataclass(frozen=True)
class RegisterReply:
    """A ``55 71`` reply: ``reg`` and the 8 values that follow it (register reg first)."""

    reg: int
    values: tuple[int, ...]


def battery_volts(reply: RegisterReply) -> float | None:
    """The cell voltage a battery reply carries (register 0x64, volts × 100), else None."""
    return reply.values[0] / 100.0 if reply.reg == REG_BATTERY else None


def battery_percent(volts: float) -> int:
    """The vendor's state of charge for a single-cell unit, 0-100 %."""
    return int(round(float(np.interp(volts, BATTERY_CURVE_V, BATTERY_CURVE_PCT))))


def supported_rates(radio: str = "ble5") -> tuple[float, ...]:
    """The output rates (Hz) a unit offers: every rate code up to its radio's maximum
    (``ble4``: 50 Hz; ``ble5``: 200 Hz; a UART unit: ``ble5``'s, all codes)."""
    top = MAX_RATE_HZ[radio]
    return tuple(float(hz) for hz in sorted(RATE_CODES) if hz <= top)


def set_rate_command(rate_hz: float, radio: str = "ble5") -> bytes:
    """``FF AA 03 rr 00``: output rate register (send UNLOCK first, SAVE after); only the rates
    the unit's radio carries (``supported_rates``)."""
    rates = supported_rates(radio)
    for hz in rates:
        if abs(hz - rate_hz) < 1e-9:
            return bytes([0xFF, 0xAA, REG_RATE, RATE_CODES[hz], 0x00])
    raise ValueError(f"this WitMotion unit streams at {', '.join(f'{r:g}' for r in rates)} Hz, "
                     f"not {rate_hz:g}")


def rate_commands(rate_hz: float, radio: str = "ble5") -> list[bytes]:
    """The writes that set the output rate, each ``COMMAND_GAP_S`` after the one before (as the
    vendor SDK paces them): unlock, rate, save."""
    return [UNLOCK, set_rate_command(rate_hz, radio), SAVE]


def angles_to_quat(angle_deg: np.ndarray) -> np.ndarray:
    """(n, 3) roll, pitch, yaw in degrees -> (n, 4) quaternions [w, x, y, z], sensor to world.

    Equal to ``Rotation.from_euler("ZYX", [yaw, pitch, roll]).as_quat(scalar_first=True)``
    (the tests hold it to that); written out in closed form because scipy's per-sample loop
    would cap the decoder at ~300,000 samples/s.
    """
    half = np.radians(np.asarray(angle_deg, dtype=float).reshape(-1, 3)) / 2
    cr, cp, cy = np.cos(half).T
    sr, sp, sy = np.sin(half).T
    q = np.column_stack([cr * cp * cy + sr * sp * sy, sr * cp * cy - cr * sp * sy,
                         cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy])
    return q * np.where(q[:, :1] < 0, -1.0, 1.0)  # w >= 0 (q and -q are the same rotation)


def _i16(values, lsb: float) -> np.ndarray:
    q = np.rint(np.nan_to_num(np.asarray(values, dtype=float)) / lsb)
    return np.clip(q, -32768, 32767).astype("<i2")


def encode_ble_packet(acc_g, gyr_dps, angle_deg) -> bytes:
    """BWT901BLE notification(s): ``55 61`` + acc, gyro, angle as 9 × int16 (20 bytes each).

    Accepts one sample (3-vectors) or (n, 3) arrays, giving n concatenated packets.
    """
    acc = np.asarray(acc_g, dtype=float).reshape(-1, 3)
    body = np.concatenate([_i16(acc, ACC_G_PER_LSB),
                           _i16(np.reshape(gyr_dps, (-1, 3)), GYR_DPS_PER_LSB),
                           _i16(np.reshape(angle_deg, (-1, 3)), ANGLE_DEG_PER_LSB)], axis=1)
    head = np.tile(np.array([HEADER, BLE_DATA], dtype=np.uint8), (len(acc), 1))
    return np.concatenate([head, body.view(np.uint8).reshape(len(acc), 18)], axis=1).tobytes()


def encode_register_reply(reg: int, values) -> bytes:
    """A BLE unit's 20-byte ``55 71`` reply to ``read_register_command(reg)``: the register and
    up to 8 register values (int16), zero-filled."""
    vals = [int(v) for v in values] + [0] * (8 - len(values))
    return bytes([HEADER, BLE_REG]) + struct.pack("<H8h", reg, *vals)


def encode_uart_packet(kind: int, values) -> bytes:
    """One 11-byte UART packet: ``55 kind`` + 4 × int16 raw values + sum checksum."""
    vals = [int(v) for v in values] + [0] * (4 - len(values))
    body = bytes([HEADER, kind]) + struct.pack("<4h", *vals)
    return body + bytes([sum(body) & 0xFF])


def encode_uart_sample(acc_g, gyr_dps, angle_deg, temp_c: float = 25.0,
                       battery_v: float = 3.9) -> bytes:
    """The 0x51 (acc + temperature), 0x52 (gyro + voltage), 0x53 (angle + version) packets of one
    sample (33 bytes); the device repeats them at its output rate."""
    acc = _i16(np.reshape(acc_g, 3), ACC_G_PER_LSB)
    gyr = _i16(np.reshape(gyr_dps, 3), GYR_DPS_PER_LSB)
    ang = _i16(np.reshape(angle_deg, 3), ANGLE_DEG_PER_LSB)
    return (encode_uart_packet(UART_ACC, [*acc, round(temp_c * 100)])
            + encode_uart_packet(UART_GYR, [*gyr, round(battery_v * 100)])
            + encode_uart_packet(UART_ANGLE, [*ang, 0]))


@dataclass
class WitStats:
    """Counters of a WitMotion decoder."""

    packets: int = 0  # valid packets of any kind
    samples: int = 0
    checksum_errors: int = 0  # UART packets whose sum failed
    bytes_skipped: int = 0
    resyncs: int = 0
    incomplete: int = 0  # UART cycles without acc or gyro (dropped)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _keep_from(a: np.ndarray, c: np.ndarray, complete: np.ndarray, starts: np.ndarray,
               length: int) -> int:
    """Where the unconsumed tail begins: the first cut-off candidate after the last accepted
    packet, else a trailing lone header byte, else the end."""
    n = len(a)
    last_end = int(starts[-1]) + length if len(starts) else 0
    pend = c[~complete & (c >= last_end)]
    if len(pend):
        return int(pend[0])
    return n - 1 if a[-1] == HEADER and n - 1 >= last_end else n


def _greedy(starts: np.ndarray, length: int) -> np.ndarray:
    """Drop candidates that start inside an earlier accepted packet (scan order, vectorised)."""
    return starts[greedy_chain(starts, starts + length)]


@dataclass
class WitState:
    """Everything a WitMotion decoder changes as bytes come in, declared in one place (as VQF's
    ``PyVQFState``)."""

    buf: bytes = b""  # bytes kept for the next feed (a packet cut off at the end)
    n: int = 0  # samples counted so far: the sample clock (``t_s = n / rate_hz``)
    in_garbage: bool = False  # the last feed ended inside skipped bytes


class _WitBase:
    def __init__(self, rate_hz: float, side: str | None = None) -> None:
        self.rate_hz = float(rate_hz)
        self.side = side
        self.stats = WitStats()
        self.state = WitState()

    def _candidates(self, data: bytes, length: int, kind_ok
                    ) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
        """The buffered bytes with ``data`` appended, as (bytes, uint8 array, packet start
        candidates: ``0x55`` followed by a kind ``kind_ok`` accepts, whether each is whole)."""
        buf = self.state.buf + bytes(data)
        a = np.frombuffer(buf, dtype=np.uint8)
        c = np.flatnonzero(a[:-1] == HEADER)
        c = c[kind_ok(a[c + 1])]
        return buf, a, c, c + length <= len(a)

    def _skip(self, starts: np.ndarray, length: int, keep_from: int) -> None:
        ends = starts + length
        gaps = np.concatenate([starts, [keep_from]]) - np.concatenate([[0], ends])
        self.stats.bytes_skipped += int(gaps.sum())
        runs = int(np.count_nonzero(gaps))
        if runs and gaps[0] > 0 and self.state.in_garbage:
            runs -= 1
        self.stats.resyncs += runs
        self.state.in_garbage = bool(gaps[-1] > 0)

    def _batch(self, acc_raw, gyr_raw, quat) -> list[ImuBatch]:
        n = len(acc_raw)
        if n == 0:
            return []
        idx = self.state.n + np.arange(n)
        self.state.n += n
        self.stats.samples += n
        return [ImuBatch(idx / self.rate_hz, acc_raw * (ACC_G_PER_LSB * GRAVITY_M_S2),
                         np.radians(gyr_raw * GYR_DPS_PER_LSB), quat=quat, seq=idx,
                         side=self.side)]


class WitBleDecoder(_WitBase):
    """BWT901BLE notification bytes -> ImuBatch (acc m/s², gyro rad/s, quaternion from angles).

    Packets have no checksum: a packet is ``55 61`` and the 18 bytes after it. Register replies
    (``55 71``: the battery's, ``BATTERY_COMMAND``) are kept for ``pop_replies``. Never raises.
    """

    def __init__(self, rate_hz: float, side: str | None = None) -> None:
        super().__init__(rate_hz, side)
        self._replies: list[RegisterReply] = []

    def pop_replies(self) -> list[RegisterReply]:
        """Register replies decoded since the last call, oldest first."""
        out, self._replies = self._replies, []
        return out

    def feed(self, data: bytes) -> list[ImuBatch]:
        buf, a, c, complete = self._candidates(data, BLE_PACKET_BYTES,
                                               lambda k: (k == BLE_DATA) | (k == BLE_REG))
        if len(a) == 0:
            return []
        starts = _greedy(c[complete], BLE_PACKET_BYTES)
        keep_from = _keep_from(a, c, complete, starts, BLE_PACKET_BYTES)
        self._skip(starts, BLE_PACKET_BYTES, keep_from)
        self.state.buf = buf[keep_from:]
        self.stats.packets += len(starts)
        for r in starts[a[starts + 1] == BLE_REG]:
            reg, *values = struct.unpack_from("<H8h", buf, int(r) + 2)
            self._replies.append(RegisterReply(reg, tuple(values)))
        starts = starts[a[starts + 1] == BLE_DATA]
        if not len(starts):
            return []
        rows = a[starts[:, None] + 2 + np.arange(18)]
        v = np.ascontiguousarray(rows).view("<i2").astype(float)
        quat = angles_to_quat(v[:, 6:9] * ANGLE_DEG_PER_LSB)
        return self._batch(v[:, 0:3], v[:, 3:6], quat)


class WitUartDecoder(_WitBase):
    """WitMotion UART bytes (11-byte packets, sum checksum) -> ImuBatch.

    A sample is the cycle of packets from one 0x51 (acc) to the next: acc, gyro (0x52) and the
    orientation from 0x59 (quaternion) if sent, else from 0x53 (angles). A cycle is delivered as
    soon as its angle or quaternion packet arrives, else when the next cycle begins.
    """

    def feed(self, data: bytes) -> list[ImuBatch]:
        buf, a, c, complete = self._candidates(data, UART_PACKET_BYTES,
                                               lambda k: (k >= UART_TIME) & (k <= 0x5A))
        if len(a) == 0:
            return []
        cc = c[complete]
        rows = a[cc[:, None] + np.arange(UART_PACKET_BYTES)]
        good = (rows[:, :10].sum(axis=1, dtype=np.int64) & 0xFF) == rows[:, 10]
        starts = _greedy(cc[good], UART_PACKET_BYTES)
        bad = cc[~good]
        keep_from = _keep_from(a, c, complete, starts, UART_PACKET_BYTES)
        # the last cycle waits for its orientation packet (or the next 0x51) unless complete
        kinds = a[starts + 1] if len(starts) else np.empty(0, dtype=np.uint8)
        acc_pos = np.flatnonzero(kinds == UART_ACC)
        hold = 0
        if len(acc_pos):
            tail = kinds[acc_pos[-1]:]
            if not np.any((tail == UART_ANGLE) | (tail == UART_QUAT)):
                hold = len(kinds) - acc_pos[-1]
        if hold:
            keep_from = int(starts[len(starts) - hold])
            starts, kinds = starts[:-hold], kinds[:-hold]
        if len(bad) and len(starts):
            pos = np.searchsorted(starts, bad, side="right") - 1
            bad = bad[~((pos >= 0) & (bad < starts[np.clip(pos, 0, None)] + UART_PACKET_BYTES))]
        self.stats.checksum_errors += int(np.count_nonzero(bad < keep_from))
        self._skip(starts, UART_PACKET_BYTES, keep_from)
        self.state.buf = buf[keep_from:]
        self.stats.packets += len(starts)
        if not len(starts):
            return []
        vals = np.ascontiguousarray(a[starts[:, None] + 2 + np.arange(8)]).view("<i2")
        vals = vals.astype(float)
        cycle = np.cumsum(kinds == UART_ACC) - 1  # packets before the first 0x51: cycle -1
        n_cyc = int(cycle.max()) + 1 if len(cycle) else 0
        if n_cyc <= 0:
            return []
        ok = cycle >= 0
        acc = np.full((n_cyc, 3), np.nan)
        gyr = np.full((n_cyc, 3), np.nan)
        ang = np.full((n_cyc, 3), np.nan)
        quat = np.full((n_cyc, 4), np.nan)
        for kind_id, dst, width in ((UART_ACC, acc, 3), (UART_GYR, gyr, 3),
                                    (UART_ANGLE, ang, 3), (UART_QUAT, quat, 4)):
            sel = ok & (kinds == kind_id)
            dst[cycle[sel]] = vals[sel, :width]
        full = ~np.isnan(acc[:, 0]) & ~np.isnan(gyr[:, 0])
        self.stats.incomplete += int(np.count_nonzero(~full))
        acc, gyr, ang, quat = acc[full], gyr[full], ang[full], quat[full]
        has_q = ~np.isnan(quat[:, 0])
        has_a = ~np.isnan(ang[:, 0])
        q_out = None  # the pipeline fuses when any sample lacks an orientation
        if np.all(has_q | has_a):
            q_out = np.empty((len(acc), 4))
            q_out[has_a] = angles_to_quat(ang[has_a] * ANGLE_DEG_PER_LSB)
            qq = quat[has_q] / 32768.0
            norm = np.linalg.norm(qq, axis=1, keepdims=True)
            q_out[has_q] = np.where(norm > 0, qq / np.where(norm > 0, norm, 1), [1.0, 0, 0, 0])
        return self._batch(acc, gyr, q_out)
