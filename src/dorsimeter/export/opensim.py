"""OpenSim / OpenSense export: the tibiae's orientations as an OpenSense orientations file.

Two files per session (OpenSense's IMU workflow, OpenSim 4.x; see the OpenSense documentation,
"OpenSense - Workflow" / "Collecting and Preparing IMU Data", and ``TimeSeriesTableQuaternion``)::

    dorsimeter-session-<id>-orientations.sto   every sample
    dorsimeter-session-<id>-calibration.sto    one row: the calibration pose, for the IMUPlacer

Format (tab-separated, as OpenSim writes it)::

    DataRate=100.000000
    DataType=Quaternion
    version=3
    OpenSimVersion=4.5
    endheader
    time<TAB>tibia_l_imu<TAB>tibia_r_imu
    0.0<TAB>w,x,y,z<TAB>w,x,y,z

Each cell is the unit quaternion (w first) of the tibia segment frame (OpenSim's body
convention: X anterior, Y ankle to knee, Z to the right) in a ground frame with X the way the
athlete faces, Y up and Z to the athlete's right (OpenSim's ground, so the IMUPlacer's
``sensor_to_opensim_rotations`` is 0 0 0). It comes from the stored tibia angle and knee track
(:func:`dorsimeter.export.tables.tibia_quaternion`; heading not measured, no twist about the
vertical), so the sensor-to-tibia mounting found by our calibration is already removed.

Time is device time in seconds; the rows are the union of both legs' sample times. A leg's cell
at one of its own samples is exact; at the other leg's times inside its own recording it is
slerp-interpolated between its neighbouring samples; outside its recording it is
``nan,nan,nan,nan`` (OpenSim's reader takes NaN). Floats use Python's shortest round-trip repr.
The calibration pose is each tibia's orientation in the still stance that calibrated it (of the
samples before the calibration's ``t_defined_s``, the one with the tibia nearest vertical; the
whole session when none is stored), the pose OpenSense's IMUPlacer aligns with the model's
default (standing) pose; its time is the earlier leg's.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dorsimeter.export.tables import SideSamples, session_tables
from dorsimeter.paths import atomic_private, private_dir
from dorsimeter.store.db import Store

IMU_COLUMN = {"left": "tibia_l_imu", "right": "tibia_r_imu"}
OPENSIM_VERSION = "4.5"
NAN_CELL = "nan,nan,nan,nan"


def to_opensim(quat_wxyz: np.ndarray) -> np.ndarray:
    """Our frames (X anterior, Y left, Z up) → OpenSim's (X anterior, Y up, Z right): the
    quaternion's vector part turns with the axes, (w, x, y, z) → (w, x, z, −y)."""
    q = np.asarray(quat_wxyz, dtype=float)
    return np.column_stack([q[:, 0], q[:, 1], q[:, 3], -q[:, 2]])


def from_opensim(quat_wxyz: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_opensim`."""
    q = np.asarray(quat_wxyz, dtype=float)
    return np.column_stack([q[:, 0], q[:, 1], -q[:, 3], q[:, 2]])


def _on_grid(s: SideSamples, grid_t_s: np.ndarray) -> np.ndarray:
    """(len(grid), 4) OpenSim quaternions of side ``s`` at ``grid_t_s`` (see the module doc)."""
    from scipy.spatial.transform import Rotation, Slerp

    q = to_opensim(s.quat_wxyz)
    out = np.full((len(grid_t_s), 4), np.nan)
    inside = (grid_t_s >= s.t_s[0]) & (grid_t_s <= s.t_s[-1])
    idx = np.searchsorted(s.t_s, grid_t_s)
    exact = inside & (s.t_s[np.clip(idx, 0, len(s.t_s) - 1)] == grid_t_s)
    out[exact] = q[idx[exact]]
    between = inside & ~exact
    if between.any() and len(s.t_s) > 1:
        slerp = Slerp(s.t_s, Rotation.from_quat(q[:, [1, 2, 3, 0]]))
        xyzw = slerp(grid_t_s[between]).as_quat()
        w = xyzw[:, 3:4]
        xyzw = np.where(w < 0, -xyzw, xyzw)  # w ≥ 0, as ours are
        out[between] = xyzw[:, [3, 0, 1, 2]]
    return out


def _cell(q: np.ndarray) -> str:
    if np.isnan(q).any():
        return NAN_CELL
    return ",".join(repr(float(v)) for v in q)


def sto_text(times_s: np.ndarray, columns: dict[str, np.ndarray], rate_hz: float) -> str:
    """An OpenSense quaternion .sto file's text."""
    lines = [f"DataRate={rate_hz:.6f}", "DataType=Quaternion", "version=3",
             f"OpenSimVersion={OPENSIM_VERSION}", "endheader",
             "\t".join(["time", *columns])]
    cols = list(columns.values())
    for i, t in enumerate(times_s.tolist()):
        lines.append("\t".join([repr(t), *(_cell(c[i]) for c in cols)]))
    return "\n".join(lines) + "\n"


def _pose_index(s: SideSamples, t_defined_s: float | None) -> int:
    """The calibration pose: of the samples before the calibration completed (all of them when
    none is stored), the one with the tibia nearest vertical, i.e. the still stance whose "up"
    defined the tibia's long axis."""
    n = len(s.t_s) if t_defined_s is None else max(1, int(np.searchsorted(s.t_s, t_defined_s)))
    tilt = s.tibia_angle_deg[:n] ** 2 + s.knee_track_deg[:n] ** 2
    return int(np.argmin(tilt))


def export_opensim(store: Store, ref: int | str, out_dir: str | os.PathLike) -> list[Path]:
    """Write the orientations and calibration-pose .sto files of session ``ref`` (0600)."""
    tables = session_tables(store, ref)
    sides = {k: s for k, s in tables.sides.items() if len(s)}
    out = private_dir(Path(out_dir))
    stem = out / f"dorsimeter-session-{tables.info.id}"
    if not sides:
        return []
    grid = np.unique(np.concatenate([s.t_s for s in sides.values()]))
    rate = max(s.nominal_rate_hz for s in sides.values())
    columns = {IMU_COLUMN[k]: _on_grid(s, grid) for k, s in sides.items()}
    paths = [Path(f"{stem}-orientations.sto"), Path(f"{stem}-calibration.sto")]
    with atomic_private(paths[0], "w") as f:
        f.write(sto_text(grid, columns, rate))
    defined = {side: cal.get("t_defined_s") for side, _, cal in store.calibrations(tables.info.id)}
    pose_idx = {k: _pose_index(s, defined.get(k)) for k, s in sides.items()}
    pose_t = min(float(sides[k].t_s[i]) for k, i in pose_idx.items())
    pose = {IMU_COLUMN[k]: to_opensim(s.quat_wxyz[[pose_idx[k]]]) for k, s in sides.items()}
    with atomic_private(paths[1], "w") as f:
        f.write(sto_text(np.array([pose_t]), pose, rate))
    return paths
