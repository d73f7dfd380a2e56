"""Calibration files where they enter: JSON read safely, and the values checked for physics.

A calibration file is a hand-editable JSON document; whatever it holds must end as one line
naming the file and the field (exit 2), never a traceback, and never as a number that silently
measures something else. Read: UTF-8 with or without a byte-order mark, nesting and integer
sizes bounded (a 400-digit integer or 100,000 nested brackets are damage, not data). Checked:
a mounting calibration is a proper rotation (orthonormal, det +1: a left-handed frame cannot
come from a real clip), its lever arm is shorter than a shin; a sensor calibration lies within
the datasheet tolerances of the parts we support; and a mounting calibration used on a
recording must fit that recording's mount (its stance "up" against the gravity the recording
starts with), else a warning says so.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from dorsimeter.core.mounting import MAX_LEVER_ARM_M  # one bound for fits and files
from dorsimeter.errors import InputError
from dorsimeter.types import GRAVITY_M_S2

MAX_JSON_BYTES = 1_000_000  # a calibration file is ~2 kB; a megabyte is not one
MAX_JSON_DEPTH = 20  # ours nest 4 deep
MAX_INT_DIGITS = 20  # beyond any count or id we write
# Datasheet tolerances of the parts we support (MPU-6500 / BMI270 / WitMotion's MPU-6050):
# sensitivity ±3 %, cross-axis ±2 %, zero-g offset ±60 mg (1σ, MPU-6500), gyro zero-rate offset
# ±5 °/s (1σ). A fit beyond five times these describes no real unit: refuse it.
MAX_SCALE_ERROR = 0.15
MAX_CROSS_AXIS = 0.10
MAX_SENSOR_ACC_OFFSET_M_S2 = 0.3 * GRAVITY_M_S2
MAX_SENSOR_GYR_BIAS_RAD_S = math.radians(25.0)
MAX_SENSOR_RESIDUAL_M_S2 = 1.0
# Mount check: during a knee-to-wall test the tibia is never further than ~50° of
# dorsiflexion plus ~20° of knee track from vertical, so gravity in the tibia frame lies within
# 70° of the calibration's "up" at every moment, the first second included. Beyond that the
# calibration was made for another mount.
MAX_MOUNT_MISMATCH_DEG = 70.0


def _depth(text: str) -> int:
    """Deepest bracket nesting outside strings (checked before parsing: json recursion)."""
    depth = deepest = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def read_json(path: str | os.PathLike, what: str) -> object:
    """The JSON document in ``path``; InputError (one line, exit 2) for anything else.

    ``what`` names the expected kind of file in the message."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise InputError(str(p), None, None, f"no such file (expected {what})") from None
    except OSError as e:
        raise InputError(str(p), None, None, f"cannot read it ({e.strerror or e})") from None
    if len(data) > MAX_JSON_BYTES:
        raise InputError(str(p), None, None, f"over {MAX_JSON_BYTES // 1000} kB: not {what}")
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Windows editors) is fine
    except UnicodeDecodeError as e:
        raise InputError(str(p), None, None, f"not UTF-8 text (byte {e.start}): not {what}"
                         ) from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise InputError(str(p), None, None, f"nested over {MAX_JSON_DEPTH} levels: not {what}")

    def parse_int(s: str) -> int:
        if len(s.lstrip("-")) > MAX_INT_DIGITS:
            raise ValueError(f"an integer of {len(s)} digits")
        return int(s)

    def no_constant(s: str):
        raise ValueError(f"{s} is not a number JSON allows")

    try:
        return json.loads(text, parse_int=parse_int, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise InputError(str(p), e.lineno, None, f"not {what} (not valid JSON: {e.msg})"
                         ) from None
    except (ValueError, RecursionError) as e:
        raise InputError(str(p), None, None, f"{e}: not {what}") from None


def check_mounting_physics(path: str, where: str, matrix: np.ndarray,
                           lever_arm_m: np.ndarray) -> None:
    """A mounting calibration's frame is a right-handed rotation and its lever arm a shin's."""
    det = float(np.linalg.det(matrix))
    if det < 0:
        raise InputError(path, None, f"{where}.z_axis", "the tibia axes are left-handed "
                         "(determinant -1): no clip on a shin gives that; recalibrate")
    if float(np.linalg.norm(lever_arm_m)) > MAX_LEVER_ARM_M:
        raise InputError(path, None, f"{where}.lever_arm_m",
                         f"sensor {np.linalg.norm(lever_arm_m):.2f} m from the ankle: expected "
                         f"under {MAX_LEVER_ARM_M} m (the sensor is on the shin)")


def check_sensor_physics(path: str, offset_m_s2, matrix, gyr_bias_rad_s,
                         residual_m_s2: float) -> None:
    """A sensor calibration within the datasheet tolerances of a real unit (see above)."""
    c = np.asarray(matrix, dtype=float)
    diag = np.abs(np.diag(c) - 1.0)
    if np.max(diag) > MAX_SCALE_ERROR:
        raise InputError(path, None, "acc_matrix", f"a scale factor {np.max(diag):.0%} from 1: "
                         f"expected within {MAX_SCALE_ERROR:.0%} (no real accelerometer is "
                         "that far off; record the box poses again)")
    off = np.abs(c - np.diag(np.diag(c)))
    if np.max(off) > MAX_CROSS_AXIS:
        raise InputError(path, None, "acc_matrix", f"cross-axis term {np.max(off):.2f}: "
                         f"expected at most {MAX_CROSS_AXIS}")
    o = float(np.linalg.norm(offset_m_s2))
    if o > MAX_SENSOR_ACC_OFFSET_M_S2:
        raise InputError(path, None, "acc_offset_m_s2", f"{1000 * o / GRAVITY_M_S2:.0f} mg of "
                         f"offset: expected at most "
                         f"{1000 * MAX_SENSOR_ACC_OFFSET_M_S2 / GRAVITY_M_S2:.0f} mg")
    b = float(np.max(np.abs(gyr_bias_rad_s)))
    if b > MAX_SENSOR_GYR_BIAS_RAD_S:
        limit = math.degrees(MAX_SENSOR_GYR_BIAS_RAD_S)
        raise InputError(path, None, "gyr_bias_rad_s", f"{math.degrees(b):.0f} °/s of gyro "
                         f"bias: expected at most {limit:.0f} °/s")
    if not 0.0 <= residual_m_s2 <= MAX_SENSOR_RESIDUAL_M_S2:
        raise InputError(path, None, "residual_m_s2", f"{residual_m_s2:g}: expected 0 to "
                         f"{MAX_SENSOR_RESIDUAL_M_S2} m/s²")


def mount_mismatch(z_axis, acc_m_s2: np.ndarray, rate_hz: float) -> float | None:
    """Angle (°) between the calibration's tibia "up" (sensor frame) and the gravity the
    recording starts with (mean accelerometer over its first second), or None if it starts
    moving too much to tell (|mean acc| off g by over 20 %)."""
    n = max(1, int(round(rate_hz)))
    acc = np.asarray(acc_m_s2, dtype=float)[:n]
    acc = acc[np.all(np.isfinite(acc), axis=1)]
    if len(acc) == 0:
        return None
    g = acc.mean(axis=0)
    norm = float(np.linalg.norm(g))
    if abs(norm - GRAVITY_M_S2) > 0.2 * GRAVITY_M_S2:
        return None
    z = np.asarray(z_axis, dtype=float)
    return float(np.degrees(np.arccos(np.clip(np.dot(g / norm, z / np.linalg.norm(z)), -1, 1))))


def mount_warning(cals: dict, side_acc: dict[str, np.ndarray], rate_hz: float,
                  source: str) -> list[str]:
    """One warning line per side whose calibration does not fit the recording's mount."""
    out = []
    for side, acc in side_acc.items():
        cal = cals.get(side)
        if cal is None:
            continue
        angle = mount_mismatch(cal.z_axis, acc, rate_hz)
        if angle is not None and angle > MAX_MOUNT_MISMATCH_DEG:
            out.append(f"dorsimeter: warning: {source} ({side}): the recording starts with the "
                       f"shin {angle:.0f}° from the calibration's upright (a knee-to-wall test "
                       f"stays within {MAX_MOUNT_MISMATCH_DEG:.0f}°): this calibration was made "
                       "for another mount; its angles will be wrong. Recalibrate (dorsimeter "
                       "calibrate) or leave --calibration out")
    return out
