"""Orientation from gyroscope and accelerometer with VQF (6D, no magnetometer).

Only inclination matters for the tibia angle, so what the rest of the core uses is the direction
of "up" in the sensor frame, which does not depend on the (arbitrary) heading.
"""

from __future__ import annotations

import numpy as np
from vqf import VQF, offlineVQF


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def estimate_orientation(
    gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, rate_hz: float, offline: bool = False
) -> np.ndarray:
    """(N,4) quaternions [w,x,y,z], sensor to an earth frame with z up (heading arbitrary)."""
    gyr, acc = _c(gyr_rad_s), _c(acc_m_s2)
    if offline:
        return offlineVQF(gyr, acc, None, 1.0 / rate_hz)["quat6D"]
    return VQF(1.0 / rate_hz).updateBatch(gyr, acc)["quat6D"]


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
