"""Orientation from gyroscope and accelerometer with VQF (6D, no magnetometer).

Only inclination matters for the tibia angle, so what the rest of the core uses is the direction
of "up" in the sensor frame, which does not depend on the (arbitrary) heading.

Live (causal) fusion is VQF with its published defaults: they were chosen by its authors on the
whole BROAD benchmark, and we found no principled change that is better everywhere. Offline
re-analysis combines three estimates of "up": offline VQF (non-causal, global bias estimate)
and a causal VQF run forward and one run backward in time. A causal filter's accelerometer
correction lags the motion, and the two directions lag in opposite senses, so averaging the
three unit vectors cancels part of each one's error; the heading comes from offline VQF.
No parameter is tuned: all three passes use VQF's defaults.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
from vqf import VQF, offlineVQF


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def estimate_orientation(
    gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, rate_hz: float, offline: bool = False
) -> np.ndarray:
    """(N,4) quaternions [w,x,y,z], sensor to an earth frame with z up (heading arbitrary)."""
    gyr, acc = _c(gyr_rad_s), _c(acc_m_s2)
    if offline:
        return smoothed_orientation(gyr, acc, rate_hz)
    return VQF(1.0 / rate_hz).updateBatch(gyr, acc)["quat6D"]


def time_reversed(gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stream played backwards: sample k's gyro covers the interval ending at k, so the
    reversed step from k+1 to k uses −ω_{k+1}."""
    gyr = -np.concatenate([gyr_rad_s[-1:], gyr_rad_s[::-1][:-1]])
    return _c(gyr), _c(acc_m_s2[::-1])


def with_up(quat_wxyz: np.ndarray, up_sensor: np.ndarray) -> np.ndarray:
    """``quat_wxyz`` turned (in the sensor frame, by the shortest arc) so that up reads
    ``up_sensor``; heading is kept as far as that allows."""
    q = Rotation.from_quat(quat_wxyz, scalar_first=True)
    u_old = up_in_sensor(quat_wxyz)
    axis = np.cross(up_sensor, u_old)
    s = np.linalg.norm(axis, axis=1)
    ang = np.arctan2(s, np.sum(up_sensor * u_old, axis=1))
    rv = axis / np.maximum(s, 1e-300)[:, None] * ang[:, None]
    return (q * Rotation.from_rotvec(rv)).as_quat(scalar_first=True)


def smoothed_orientation(gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, rate_hz: float
                         ) -> np.ndarray:
    """Offline (non-causal) orientation: offline VQF, with up averaged over it and a forward
    and a backward causal VQF pass (see the module docstring)."""
    gyr, acc = _c(gyr_rad_s), _c(acc_m_s2)
    dt = 1.0 / rate_hz
    if len(gyr) < 2:
        return VQF(dt).updateBatch(gyr, acc)["quat6D"]
    q_off = offlineVQF(gyr, acc, None, dt)["quat6D"]
    q_fwd = VQF(dt).updateBatch(gyr, acc)["quat6D"]
    q_bwd = VQF(dt).updateBatch(*time_reversed(gyr, acc))["quat6D"][::-1]
    up = up_in_sensor(q_off) + 0.5 * (up_in_sensor(q_fwd) + up_in_sensor(q_bwd))
    up /= np.linalg.norm(up, axis=1)[:, None]
    return with_up(q_off, up)


def up_in_sensor(quat_wxyz: np.ndarray) -> np.ndarray:
    """World "up" (z) expressed in the sensor frame, for unit sensor-to-world quaternions.

    This is the third row of the rotation matrix, written out element-wise: unlike a batched
    ``Rotation.apply`` it gives bit-identical values whatever the batch size, which is what
    makes live and re-analysed readings equal. ``test_fusion`` checks it against scipy.
    """
    w, x, y, z = np.asarray(quat_wxyz, dtype=float).T
    return np.column_stack([2.0 * (x * z - w * y), 2.0 * (y * z + w * x),
                            1.0 - 2.0 * (x * x + y * y)])


class StreamingFusion:
    """VQF fed batch by batch; any split of the same stream gives identical quaternions."""

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self._vqf = VQF(1.0 / rate_hz)

    def update(self, gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray) -> np.ndarray:
        """(n,4) quaternions [w,x,y,z] for the next n samples."""
        if len(gyr_rad_s) == 0:
            return np.empty((0, 4))
        return self._vqf.updateBatch(_c(gyr_rad_s), _c(acc_m_s2))["quat6D"]
