"""Calibration files: the mounting calibration (``dorsimeter calibrate -o``) and the per-sensor
box calibration (``sensors/<sensor_id>.json`` in the data directory), saved owner-only and
atomically, and loaded with every field checked (a damaged or hand-edited file is a one-line
error naming the file and field, never nonsense later in the pipeline)."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from dorsimeter.core.mounting import MAX_ACC_OFFSET_M_S2, MAX_GAIN_ERROR, MountingCalibration
from dorsimeter.core.sensor_cal import FORMAT, SensorCalibration, as_vec3
from dorsimeter.errors import InputError
from dorsimeter.io.caljson import check_mounting_physics, check_sensor_physics, read_json
from dorsimeter.paths import atomic_private_text, data_dir, private_dir
from dorsimeter.types import SIDES
from dorsimeter.wire.sensorspec import SensorSpec


def save_calibrations(cals: dict[str, MountingCalibration], path: str | Path) -> None:
    doc = {"format": "dorsimeter-mounting-calibration", "version": 1,
           "sides": {s: asdict(c) for s, c in cals.items()}}
    with atomic_private_text(path) as f:  # owner-only, never half a file
        f.write(json.dumps(doc, indent=2) + "\n")


def load_calibrations(path: str | Path) -> dict[str, MountingCalibration]:
    doc = read_json(path, "a calibration file (JSON written by `dorsimeter calibrate`)")
    if not isinstance(doc, dict) or doc.get("format") != "dorsimeter-mounting-calibration":
        raise InputError(str(path), None, "format",
                         "expected 'dorsimeter-mounting-calibration'")
    sides = doc.get("sides", {})
    if not isinstance(sides, dict):
        raise InputError(str(path), None, "sides", "expected an object of sides")
    return {side: _checked_calibration(str(path), side, entry) for side, entry in sides.items()}


_VECTOR_FIELDS = ("x_axis", "y_axis", "z_axis", "gyr_bias_rad_s", "lever_arm_m",
                  "acc_offset_m_s2")


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


def _checked_calibration(path: str, side: str, entry) -> MountingCalibration:
    """One side of a calibration file, every field checked (a hand-edited or damaged file is
    a one-line error here, not a crash or nonsense later in the pipeline)."""
    where = f"sides.{side}"
    if side not in SIDES:
        raise InputError(path, None, "sides", f"'{side}' is not 'left' or 'right'")
    if not isinstance(entry, dict):
        raise InputError(path, None, where, "expected an object of calibration fields")
    known = {f.name for f in fields(MountingCalibration)}
    values: dict = {}
    for k, v in entry.items():
        if k not in known:
            raise InputError(path, None, f"{where}.{k}", "unknown calibration field")
        if k == "side":
            if v != side:
                raise InputError(path, None, f"{where}.side", f"{v!r} under side '{side}'")
            values[k] = v
        elif k in _VECTOR_FIELDS:
            if not (isinstance(v, list) and len(v) == 3 and all(_number(x) for x in v)):
                raise InputError(path, None, f"{where}.{k}", "expected 3 finite numbers")
            values[k] = tuple(float(x) for x in v)
        elif _number(v):
            values[k] = float(v)
        else:
            raise InputError(path, None, f"{where}.{k}", f"expected a finite number, not {v!r}")
    try:
        cal = MountingCalibration(**values)
    except TypeError as e:
        raise InputError(path, None, where, f"bad calibration entry ({e})") from None
    m = cal.matrix
    if not np.allclose(m @ m.T, np.eye(3), atol=1e-3):
        raise InputError(path, None, f"{where}.x_axis", "the tibia axes are not orthonormal")
    # the values the fusion uses must be physically possible (a gyro bias beyond 20 °/s, a
    # sensor a metre from the ankle or a gain far from 1 is a damaged file, not a calibration)
    if np.max(np.abs(cal.gyr_bias_rad_s)) > np.radians(20.0):
        raise InputError(path, None, f"{where}.gyr_bias_rad_s", "more than 20 °/s of gyro bias")
    check_mounting_physics(path, where, m, cal.lever_arm)  # det +1, lever arm < 0.5 m
    if np.linalg.norm(cal.acc_offset_m_s2) > MAX_ACC_OFFSET_M_S2:
        raise InputError(path, None, f"{where}.acc_offset_m_s2",
                         f"expected at most {MAX_ACC_OFFSET_M_S2:.2f} m/s² of accelerometer offset")
    if abs(cal.flexion_gyr_gain - 1.0) > MAX_GAIN_ERROR:
        raise InputError(path, None, f"{where}.flexion_gyr_gain",
                         f"expected 1 ± {MAX_GAIN_ERROR:.2f}")
    return cal


def sensor_dir(home: str | os.PathLike | None = None) -> Path:
    """``sensors/`` in the data directory (``home`` > ``$DORSIMETER_HOME`` > platformdirs)."""
    return data_dir(home or None, create=False) / "sensors"


def _safe_id(sensor_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", sensor_id).strip("._") or "sensor"


def save_sensor_calibration(cal: SensorCalibration, home: str | os.PathLike | None = None,
                            path: str | os.PathLike | None = None) -> Path:
    """Write ``cal`` as JSON (to ``path``, else ``sensors/<sensor_id>.json`` in the data dir)."""
    if path is None:
        data_dir(home or None)  # created (or tightened) 0700 before sensors/ in it
        d = private_dir(sensor_dir(home))
        path = d / f"{_safe_id(cal.sensor_id)}.json"
    doc = {"format": FORMAT, "version": 1, **asdict(cal)}
    with atomic_private_text(path) as f:  # owner-only, as all the user's data
        f.write(json.dumps(doc, indent=2) + "\n")
    return Path(path)


def stored_sensor_calibration(sensor_id: str, home: str | os.PathLike | None = None
                              ) -> SensorCalibration | None:
    """The calibration stored for ``sensor_id`` in the data directory, or None if there is none
    (a damaged file is still an error)."""
    if not (sensor_dir(home) / f"{_safe_id(sensor_id)}.json").is_file():
        return None
    return load_sensor_calibration(sensor_id, home=home)


def load_sensor_calibration(sensor_id: str | None = None, home: str | os.PathLike | None = None,
                            path: str | os.PathLike | None = None) -> SensorCalibration:
    """Read a stored calibration by sensor id (data dir) or from ``path``."""
    if path is None:
        if sensor_id is None:
            raise ValueError("give a sensor_id or a path")
        path = sensor_dir(home) / f"{_safe_id(sensor_id)}.json"
    doc = read_json(path, f"a sensor calibration ({FORMAT} JSON)")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(str(path), None, "format", f"expected {FORMAT!r}")
    try:
        stored_id, gyr_bias, acc_offset, acc_matrix, n_poses, residual = (
            str(doc["sensor_id"]), tuple(map(float, doc["gyr_bias_rad_s"])),
            tuple(map(float, doc["acc_offset_m_s2"])),
            tuple(tuple(map(float, r)) for r in doc["acc_matrix"]), int(doc["n_poses"]),
            float(doc["residual_m_s2"]))
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise InputError(str(path), None, str(e).strip("'"), "missing or malformed field"
                         ) from None
    for name, value, shape in (("gyr_bias_rad_s", gyr_bias, (3,)),
                               ("acc_offset_m_s2", acc_offset, (3,)),
                               ("acc_matrix", acc_matrix, (3, 3))):
        try:
            a = np.array(value, dtype=float)
        except ValueError:
            a = np.empty(0)
        if a.shape != shape or not np.all(np.isfinite(a)):
            raise InputError(str(path), None, name, f"expected {' × '.join(map(str, shape))} "
                             "finite numbers")
    cal = SensorCalibration(stored_id, as_vec3(gyr_bias), as_vec3(acc_offset),
                            tuple(as_vec3(r) for r in acc_matrix), n_poses, residual)
    check_sensor_physics(str(path), cal.acc_offset_m_s2, cal.acc_matrix, cal.gyr_bias_rad_s,
                         cal.residual_m_s2)  # a real unit's tolerances, not the athlete's fault
    return cal


def sensor_calibration_from(spec: str | None, home: str | None = None) -> SensorCalibration | None:
    """``--sensor-cal``: a calibration file path, else a sensor id in the data directory."""
    if not spec:
        return None
    if Path(spec).is_file():
        return load_sensor_calibration(path=spec)
    return load_sensor_calibration(spec, home=home)


def sensor_cal_for(sensor: SensorSpec | None, explicit: str | None, home: str | None):
    """The box calibration for a live sensor: ``--sensor-cal`` when given, else the one stored
    under the BLE sensor's address or name (``dorsimeter sensor-cal --id``; an address also as
    AA:BB:…, however it was typed), else None.

    Sim, replay and serial sources have no stable id; give them ``--sensor-cal``."""
    if explicit:
        return sensor_calibration_from(explicit, home)
    for key in sensor.ble_keys if sensor is not None else ():
        cal = stored_sensor_calibration(key, home)
        if cal is not None:
            return cal
    return None
