"""Mounting calibration: where the tibia axes lie in the frame of a clip put on at any rotation.

A still stance gives the tibial long axis (up, with the athlete standing tall); a few knee drives
give the flexion axis (principal axis of the gyroscope signal). The flexion axis sign is chosen so
that driving the knee forward reads positive. The calibrator is streaming and decides on sample
counts only, so live monitoring and re-analysis of the recorded file find the same calibration.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dorsimeter.errors import CalibrationError, InputError
from dorsimeter.types import GRAVITY_M_S2

STILL_GYR_RAD_S = 0.15
STILL_ACC_DEV_M_S2 = 0.6
MOVING_GYR_RAD_S = 0.2


@dataclass(frozen=True)
class MountingCalibration:
    """The tibia frame in sensor coordinates, with quality figures for the user."""

    side: str
    x_axis: tuple[float, float, float]
    y_axis: tuple[float, float, float]
    z_axis: tuple[float, float, float]
    gyr_bias_rad_s: tuple[float, float, float]
    still_s: float
    drive_rotation_deg: float
    planarity: float  # 1 - λ2/λ1 of the drive gyro signal: 1 = pure hinge motion
    axis_tilt_deg: float  # how far the drive axis was from perpendicular to the shin
    t_defined_s: float  # device time of the sample that completed the calibration

    @property
    def matrix(self) -> np.ndarray:
        """Rows: tibia x, y, z axes in the sensor frame."""
        return np.array([self.x_axis, self.y_axis, self.z_axis])

    def summary(self) -> str:
        return (
            f"{self.side}: still {self.still_s:.1f} s, drives {self.drive_rotation_deg:.0f}° of "
            f"rotation, hinge quality {100 * self.planarity:.1f} %, "
            f"axis tilt {self.axis_tilt_deg:.1f}°"
        )


def save_calibrations(cals: dict[str, MountingCalibration], path: str | Path) -> None:
    doc = {"format": "dorsimeter-mounting-calibration", "version": 1,
           "sides": {s: asdict(c) for s, c in cals.items()}}
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")


def load_calibrations(path: str | Path) -> dict[str, MountingCalibration]:
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(str(path), None, None, "no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(str(path), getattr(e, "lineno", None), None,
                         "not a calibration file (expected JSON written by `dorsimeter calibrate`)"
                         ) from None
    if not isinstance(doc, dict) or doc.get("format") != "dorsimeter-mounting-calibration":
        raise InputError(str(path), None, "format",
                         "expected 'dorsimeter-mounting-calibration'")
    out = {}
    for side, fields in doc.get("sides", {}).items():
        try:
            out[side] = MountingCalibration(**{k: tuple(v) if isinstance(v, list) else v
                                               for k, v in fields.items()})
        except TypeError as e:
            raise InputError(str(path), None, f"sides.{side}", f"bad calibration entry ({e})"
                             ) from None
    return out


class MountingCalibrator:
    """Streams samples of one side until the mounting is defined.

    Rule: the first run of ≥ ``still_s`` still samples is the stance (its mean "up" is the tibia
    axis, its mean gyro the bias); after it, moving samples are collected until they add up to
    ``drive_rotation_deg`` of rotation (about two drives forward and back).
    """

    def __init__(self, side: str, rate_hz: float, still_s: float = 1.5,
                 drive_rotation_deg: float = 90.0) -> None:
        self.side = side
        self.rate_hz = rate_hz
        self.still_n = int(round(still_s * rate_hz))
        self.need_rad = np.radians(drive_rotation_deg)
        self._run_up: list[np.ndarray] = []
        self._run_gyr: list[np.ndarray] = []
        self._run_n = 0
        self._stance: tuple[np.ndarray, np.ndarray, int] | None = None
        self._moving_gyr: list[np.ndarray] = []
        self._rot_rad = 0.0
        self._moving_up: list[np.ndarray] = []
        self.result: MountingCalibration | None = None

    @property
    def progress(self) -> str:
        """What the athlete should do next, for the UI."""
        if self.result is not None:
            return "calibrated"
        if self._stance is None:
            return (f"stand tall and still ({self._run_n / self.rate_hz:.1f} s of "
                    f"{self.still_n / self.rate_hz:.1f} s)")
        return (f"drive the knee forward slowly ({np.degrees(self._rot_rad):.0f}° of "
                f"{np.degrees(self.need_rad):.0f}° of movement)")

    def add(self, t_s: np.ndarray, gyr: np.ndarray, acc: np.ndarray, up: np.ndarray) -> int | None:
        """Feed samples; returns the index in this batch that completed calibration, if any."""
        i = 0
        n = len(t_s)
        while i < n and self.result is None:
            if self._stance is None:
                i = self._add_still(gyr, acc, up, i)
            else:
                j = self._add_drives(t_s, gyr, up, i)
                if self.result is not None:
                    return j
                i = n
        return None

    def _add_still(self, gyr, acc, up, i: int) -> int:
        still = (np.linalg.norm(gyr[i:], axis=1) < STILL_GYR_RAD_S) & (
            np.abs(np.linalg.norm(acc[i:], axis=1) - GRAVITY_M_S2) < STILL_ACC_DEV_M_S2)
        breaks = np.flatnonzero(~still)
        end = len(still) if len(breaks) == 0 else breaks[0]
        self._run_up.append(up[i:i + end])
        self._run_gyr.append(gyr[i:i + end])
        self._run_n += end
        if end == len(still):
            return len(gyr)
        if self._run_n >= self.still_n:  # the stance ended with the first movement
            self._stance = (np.concatenate(self._run_up).mean(axis=0),
                            np.concatenate(self._run_gyr).mean(axis=0), self._run_n)
        self._run_up, self._run_gyr, self._run_n = [], [], 0
        return i + end + 1 if self._stance is None else i + end

    def _add_drives(self, t_s, gyr, up, i: int) -> int:
        _, bias, _ = self._stance
        w = gyr[i:] - bias
        rate = np.linalg.norm(w, axis=1)
        moving = rate > MOVING_GYR_RAD_S
        # one sequential running sum from the carried total: the same floats for any batch split
        steps = np.where(moving, rate, 0.0) / self.rate_hz
        cum = np.cumsum(np.concatenate([[self._rot_rad], steps]))[1:]
        done = np.flatnonzero(cum >= self.need_rad)
        stop = len(w) if len(done) == 0 else done[0] + 1
        self._moving_gyr.append(w[:stop][moving[:stop]])
        self._moving_up.append(up[i:i + stop][moving[:stop]])
        self._rot_rad = float(cum[stop - 1])
        if len(done):
            self.result = self._solve(float(t_s[i + stop - 1]))
            return i + stop - 1
        return len(gyr)

    def _solve(self, t_defined_s: float) -> MountingCalibration:
        up_mean, bias, still_n = self._stance
        z = up_mean / np.linalg.norm(up_mean)
        wm = np.concatenate(self._moving_gyr)
        evals, evecs = np.linalg.eigh(wm.T @ wm)
        axis = evecs[:, -1]
        planarity = float(1.0 - evals[-2] / evals[-1])
        tilt = float(np.degrees(np.arcsin(min(1.0, abs(axis @ z)))))
        if tilt > 45.0:
            raise CalibrationError(
                f"{self.side}: the knee drives turned the shin about its own axis "
                f"({tilt:.0f}° from a forward hinge); drive the knee straight forward")
        y = axis - (axis @ z) * z
        y /= np.linalg.norm(y)
        x = np.cross(y, z)
        u = np.concatenate(self._moving_up)
        angle = np.arctan2(-(u @ x), u @ z)
        if angle[np.argmax(np.abs(angle))] < 0:  # drives go knee-forward: make that positive
            x, y = -x, -y
        return MountingCalibration(
            self.side, tuple(map(float, x)), tuple(map(float, y)), tuple(map(float, z)),
            tuple(map(float, bias)), still_n / self.rate_hz, float(np.degrees(self._rot_rad)),
            planarity, tilt, t_defined_s)

    def refusal(self) -> str:
        """Why the samples seen so far do not define a calibration."""
        if self._stance is None:
            return (f"{self.side}: no still stance of {self.still_n / self.rate_hz:.1f} s "
                    "(stand tall without moving before the knee drives)")
        return (f"{self.side}: not enough knee drives after the stance "
                f"({np.degrees(self._rot_rad):.0f}° of movement, need "
                f"{np.degrees(self.need_rad):.0f}°; drive the knee forward 2-3 times)")
