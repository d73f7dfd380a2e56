"""Sensor calibration: gyro bias at rest, accelerometer offset and scale from a few still poses.

The athlete (or the coach) lays the clip still in several orientations — ideally the six faces of
a box, 2–3 s each. In every still pose the accelerometer reads gravity, so the corrected
reading ``C (a − o)`` must have norm g in all of them: a least-squares fit gives the offset ``o``
and the per-axis scales (with nine or more well-spread poses also the cross-axis terms, a
symmetric ``C``). The gyro's mean over the still samples is its bias. VQF keeps tracking the
gyro bias while running; this gives it the right start.

Results are stored per sensor (``sensors/<sensor_id>.json`` in the data directory) and applied
before fusion with element-wise arithmetic, so readings stay identical for any batch split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from dorsimeter.errors import CalibrationError
from dorsimeter.types import GRAVITY_M_S2

FORMAT = "dorsimeter-sensor-calibration"
STILL_GYR_RAD_S = 0.05
STILL_ACC_STD_M_S2 = 0.05
MIN_POSE_S = 1.0
MIN_POSE_SEPARATION_DEG = 20.0


@dataclass(frozen=True)
class SensorCalibration:
    """Corrections for one sensor unit: ``acc = C (raw − offset)``, ``gyr = raw − bias``."""

    sensor_id: str
    gyr_bias_rad_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    acc_offset_m_s2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    acc_matrix: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0),
                                                          (0.0, 0.0, 1.0))
    n_poses: int = 0
    residual_m_s2: float = 0.0  # RMS of |corrected acc| − g over the poses after the fit

    @staticmethod
    def identity(sensor_id: str = "uncalibrated") -> SensorCalibration:
        return SensorCalibration(sensor_id)

    def apply(self, acc_m_s2: np.ndarray, gyr_rad_s: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """Corrected (acc, gyr); element-wise, so bit-identical for any batch split."""
        acc = np.asarray(acc_m_s2, dtype=float)
        gyr = np.asarray(gyr_rad_s, dtype=float)
        if any(self.gyr_bias_rad_s):
            gyr = gyr - np.asarray(self.gyr_bias_rad_s)
        if any(self.acc_offset_m_s2):
            acc = acc - np.asarray(self.acc_offset_m_s2)
        c = self.acc_matrix
        if c != ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)):
            a0, a1, a2 = acc[:, 0], acc[:, 1], acc[:, 2]
            out = np.empty_like(acc)
            for i in range(3):
                out[:, i] = a0 * c[i][0] + a1 * c[i][1] + a2 * c[i][2]
            acc = out
        return acc, gyr

    def summary(self) -> str:
        scale = np.diag(np.asarray(self.acc_matrix))
        return (f"sensor {self.sensor_id}: {self.n_poses} poses, gyro bias "
                f"{np.degrees(np.linalg.norm(self.gyr_bias_rad_s)):.2f} °/s, accel offset "
                f"{1000 * np.linalg.norm(self.acc_offset_m_s2) / GRAVITY_M_S2:.1f} mg, scale "
                f"{', '.join(f'{100 * (s - 1):+.2f} %' for s in scale)}, "
                f"residual {1000 * self.residual_m_s2 / GRAVITY_M_S2:.2f} mg")


def still_poses(acc_m_s2: np.ndarray, gyr_rad_s: np.ndarray, rate_hz: float,
                min_s: float = MIN_POSE_S) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mean acc, mean gyro) of every still stretch of at least ``min_s`` seconds.

    Still: gyro below ``STILL_GYR_RAD_S`` (after removing the median of the quietest samples,
    a rough bias) and the accelerometer steady over a 0.25 s window."""
    acc, gyr = np.asarray(acc_m_s2, float), np.asarray(gyr_rad_s, float)
    n = len(acc)
    win = max(3, int(round(0.25 * rate_hz)))
    if n < win:
        return []
    rate = np.linalg.norm(gyr, axis=1)
    rough_bias = np.median(gyr[rate <= np.quantile(rate, 0.3)], axis=0)
    quiet = np.linalg.norm(gyr - rough_bias, axis=1) < STILL_GYR_RAD_S
    kernel = np.ones(win) / win
    steady = np.ones(n, dtype=bool)
    for k in range(3):
        m = np.convolve(acc[:, k], kernel, mode="same")
        m2 = np.convolve(acc[:, k] ** 2, kernel, mode="same")
        steady &= np.sqrt(np.maximum(m2 - m * m, 0.0)) < STILL_ACC_STD_M_S2
    still = quiet & steady
    edges = np.flatnonzero(np.diff(np.concatenate([[0], still.astype(int), [0]])))
    out = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        a, b = a + win // 2, b - win // 2  # keep away from the edges of the movement
        if b - a >= min_s * rate_hz:
            out.append((acc[a:b].mean(axis=0), gyr[a:b].mean(axis=0)))
    return out


def distinct_poses(poses: list[tuple[np.ndarray, np.ndarray]],
                   min_deg: float = MIN_POSE_SEPARATION_DEG
                   ) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Merge still stretches in the same orientation (within ``min_deg``); keeps the first."""
    out: list[tuple[np.ndarray, np.ndarray, int]] = []
    for acc, gyr in poses:
        d = acc / np.linalg.norm(acc)
        if all(np.degrees(np.arccos(np.clip(d @ (o[0] / np.linalg.norm(o[0])), -1, 1))) >= min_deg
               for o in out):
            out.append((acc, gyr, 1))
    return out


def fit_accelerometer(pose_acc_m_s2: np.ndarray, gravity_m_s2: float = GRAVITY_M_S2
                      ) -> tuple[np.ndarray, np.ndarray, float]:
    """(C, offset, residual) with ``|C (a_k − o)| = g`` in every pose, least squares.

    Six poses or more: offset and per-axis scale; nine or more: also the symmetric cross-axis
    terms. Needs the poses spread over the sphere (each axis seen both up and down)."""
    a = np.asarray(pose_acc_m_s2, dtype=float)
    k = len(a)
    if k < 6:
        raise CalibrationError(f"sensor calibration needs at least 6 distinct still poses, got {k}"
                               " (lay the clip still on each face of a box, 2-3 s each)")
    dirs = a / np.linalg.norm(a, axis=1)[:, None]
    for ax, name in enumerate("xyz"):
        if dirs[:, ax].max() < 0.5 or dirs[:, ax].min() > -0.5:
            raise CalibrationError(
                f"sensor calibration: the {name} axis was not seen both up and down in the "
                "poses (lay the clip on each face of a box)")
    full = k >= 9

    def unpack(p):
        o = p[:3]
        c = np.diag(p[3:6])
        if full:
            c[0, 1] = c[1, 0] = p[6]
            c[0, 2] = c[2, 0] = p[7]
            c[1, 2] = c[2, 1] = p[8]
        return c, o

    def resid(p):
        c, o = unpack(p)
        return np.linalg.norm((a - o) @ c.T, axis=1) - gravity_m_s2

    p0 = np.concatenate([np.zeros(3), np.ones(3), np.zeros(3 if full else 0)])
    sol = least_squares(resid, p0, method="lm", xtol=1e-14, ftol=1e-14)
    c, o = unpack(sol.x)
    return c, o, float(np.sqrt(np.mean(sol.fun**2)))


def calibrate_sensor(acc_m_s2: np.ndarray, gyr_rad_s: np.ndarray, rate_hz: float,
                     sensor_id: str) -> SensorCalibration:
    """A sensor calibration from a recording of still poses (six faces of a box, 2–3 s each)."""
    poses = distinct_poses(still_poses(acc_m_s2, gyr_rad_s, rate_hz))
    c, o, res = fit_accelerometer(np.array([p[0] for p in poses]))
    # every still stretch (not only the distinct poses) gives the gyro bias
    bias = np.mean([g for _, g in still_poses(acc_m_s2, gyr_rad_s, rate_hz)], axis=0)
    return SensorCalibration(sensor_id, as_vec3(bias), as_vec3(o), tuple(as_vec3(row) for row in c),
                             len(poses), res)


def as_vec3(v) -> tuple[float, float, float]:
    """A 3-vector as the plain floats a calibration holds (and its JSON file stores)."""
    x, y, z = (float(a) for a in v)
    return x, y, z
