"""A stored session as numeric columns per side, shared by the BIDS, OpenSim, Parquet and XLSX
exports (the CSV export streams strings instead).

Each side gets its samples in recording order with the raw IMU values matched from the session's
raw recordings (NaN where there are none), each sample's rep phase (as the CSV has it) and the
tibia's orientation as a quaternion built from the stored angles (see :func:`tibia_quaternion`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dorsimeter.errors import DorsimeterError
from dorsimeter.export.csvfiles import (
    SAMPLE_COLUMNS,
    TRIAL_COLUMNS,
    PhaseMarker,
    RepOfSample,
    UtcClock,
)
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.store.db import SessionInfo, Store, Trial
from dorsimeter.store.summary import summarize
from dorsimeter.types import SIDES


@dataclass
class SideSamples:
    """One side's stored samples as columns (``None`` in the object lists: not known)."""

    side: str
    t_s: np.ndarray
    tibia_angle_deg: np.ndarray
    knee_track_deg: np.ndarray
    heel_lift: list[int | None]
    heel_source: list[str | None]
    rep: list[int | None]
    rep_valid: list[int | None]
    phase: list[str]
    acc_m_s2: np.ndarray  # (N,3), NaN where the raw recording has no such sample
    gyr_rad_s: np.ndarray
    restart: np.ndarray  # bool; False where unknown
    has_raw: np.ndarray  # bool: the raw values were found

    def __len__(self) -> int:
        return len(self.t_s)

    @property
    def quat_wxyz(self) -> np.ndarray:
        return tibia_quaternion(self.tibia_angle_deg, self.knee_track_deg, self.side)

    @property
    def interval_s(self) -> float:
        """Median sample interval (0 with fewer than two samples)."""
        return float(np.median(np.diff(self.t_s))) if len(self.t_s) > 1 else 0.0

    @property
    def nominal_rate_hz(self) -> float:
        """The rate the sensor runs at: 1 / the median interval, to 0.01 Hz."""
        dt = self.interval_s
        return round(1.0 / dt, 2) if dt > 0 else 0.0

    @property
    def effective_rate_hz(self) -> float:
        """Samples per second over the recording (gaps lower it)."""
        span = float(self.t_s[-1] - self.t_s[0]) if len(self.t_s) > 1 else 0.0
        return (len(self.t_s) - 1) / span if span > 0 else 0.0


@dataclass
class SessionTables:
    info: SessionInfo
    trials: list[Trial]
    sides: dict[str, SideSamples]  # only the sides with samples
    clock: UtcClock
    raw_problem: str | None


def _raw(store: Store, info: SessionInfo
         ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], str]:
    """Per side: (sorted t_s, (N,6) acc+gyr, restart) from the session's raw recordings, only
    those still the files it recorded (``Store.verified_raw_paths``: never another session's
    IMU data joined to these angles)."""
    per_side: dict[str, list] = {}
    paths, problems = store.verified_raw_paths(info)
    for path in paths:
        try:
            rec = read_raw_csv(path)
        except DorsimeterError as e:
            problems.append(str(e))
            continue
        restart = (np.zeros(len(rec.t_s), bool) if rec.restart is None
                   else np.asarray(rec.restart, bool))
        vals = np.hstack([rec.acc_m_s2, rec.gyr_rad_s])
        for s in SIDES:
            m = np.asarray(rec.side == s)
            if m.any():
                per_side.setdefault(s, []).append((rec.t_s[m], vals[m], restart[m]))
    out = {}
    for s, parts in per_side.items():
        t = np.concatenate([p[0] for p in parts])
        order = np.argsort(t, kind="stable")
        out[s] = (t[order], np.concatenate([p[1] for p in parts])[order],
                  np.concatenate([p[2] for p in parts])[order])
    return out, "; ".join(problems)


def session_tables(store: Store, ref: int | str,
                   progress: Callable[[int, int], None] | None = None) -> SessionTables:
    """Read session ``ref`` whole: its samples per side, trials and raw values."""
    info = store.session(ref)
    trials = store.trials(info.id)
    cols: dict[str, dict[str, list]] = {}
    total, done = store.count_samples(info.id), 0
    for chunk in store.iter_samples(info.id):
        side = np.asarray(chunk.side, dtype=object)
        for s in SIDES:
            m = side == s
            if not m.any():
                continue
            idx = np.flatnonzero(m)
            c = cols.setdefault(s, {k: [] for k in ("t", "a", "k", "hl", "hs", "rep", "rv", "ph")})
            c["t"].append(chunk.t_s[m])
            c["a"].append(chunk.tibia_angle_deg[m])
            c["k"].append(chunk.knee_track_deg[m])
            for key, values in (("hl", chunk.heel_lift), ("hs", chunk.heel_source),
                                ("rep", chunk.rep), ("rv", chunk.rep_valid),
                                ("ph", chunk.phase)):
                c[key].extend(values[i] for i in idx)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    raw, problem = _raw(store, info)
    if problem:  # as the CSV export says it: the user learns why the IMU columns are empty
        print(f"dorsimeter: note: raw columns left empty: {problem}", file=sys.stderr)
    sides = {}
    for s, c in cols.items():
        t = np.concatenate(c["t"])
        angle = np.concatenate(c["a"])
        acc = np.full((len(t), 3), np.nan)
        gyr = np.full((len(t), 3), np.nan)
        restart = np.zeros(len(t), bool)
        found = np.zeros(len(t), bool)
        if s in raw:  # exact device-time match (17 significant digits in the raw CSV)
            rt, vals, rr = raw[s]
            j = np.clip(np.searchsorted(rt, t), 0, max(len(rt) - 1, 0))
            found = (rt[j] == t) if len(rt) else found
            acc[found], gyr[found] = vals[j[found], :3], vals[j[found], 3:]
            restart[found] = rr[j[found]]
        phase = PhaseMarker(trials, float(np.median(np.diff(t))) if len(t) > 1 else 0.0)
        sides[s] = SideSamples(
            s, t, angle, np.concatenate(c["k"]), c["hl"], c["hs"], c["rep"], c["rv"],
            [phase(s, r, ti, a, p) for r, ti, a, p in zip(c["rep"], t.tolist(), angle.tolist(),
                                                            c["ph"], strict=True)],
            acc, gyr, restart, found)
    return SessionTables(info, trials, sides, UtcClock(info), problem or None)


def tibia_quaternion(tibia_angle_deg, knee_track_deg, side: str) -> np.ndarray:
    """(N,4) [w,x,y,z]: the tibia's orientation from its two stored inclinations.

    Frames: the tibia's x anterior, y to the athlete's left, z ankle to knee (as in
    ``core.tibia``); the world's X the way the athlete faces, Y to their left, Z up (BIDS
    ``SpatialAxes`` "ALS"). The heading is not measured (no magnetometer), so the rotation is the
    shortest one that tilts the tibia from vertical to the stored angles: no twist about the
    vertical. :func:`tibia_angles_from_quaternion` inverts it to rounding."""
    a = np.radians(np.asarray(tibia_angle_deg, dtype=float))
    lat = np.radians(np.asarray(knee_track_deg, dtype=float)) * (1.0 if side == "right" else -1.0)
    up = np.column_stack([-np.tan(a), -np.tan(lat), np.ones(len(a))])  # world up, tibia frame
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    # the rotation taking up (tibia frame) to Z: axis up × Z, half-angle form
    q = np.column_stack([1.0 + up[:, 2], up[:, 1], -up[:, 0], np.zeros(len(a))])
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def tibia_angles_from_quaternion(quat_wxyz, side: str) -> tuple[np.ndarray, np.ndarray]:
    """(tibia_angle_deg, knee_track_deg) of (N,4) [w,x,y,z] tibia orientations."""
    from scipy.spatial.transform import Rotation

    q = np.asarray(quat_wxyz, dtype=float)
    up = Rotation.from_quat(q[:, [1, 2, 3, 0]]).inv().apply([0.0, 0.0, 1.0])
    up = np.atleast_2d(up)
    angle = np.degrees(np.arctan2(-up[:, 0], up[:, 2]))
    lateral = np.degrees(np.arctan2(-up[:, 1], up[:, 2]))
    return angle, (lateral if side == "right" else -lateral)


#: the samples' columns in the Parquet and XLSX exports: the CSV's, then the tibia orientation
QUAT_COLUMNS = ("tibia_quat_w", "tibia_quat_x", "tibia_quat_y", "tibia_quat_z")
UNITS = {
    "time_utc_iso8601": "UTC", "t_s": "s", "tibia_angle_deg": "deg", "knee_track_deg": "deg",
    "acc_x_m_s2": "m/s^2", "acc_y_m_s2": "m/s^2", "acc_z_m_s2": "m/s^2",
    "gyr_x_rad_s": "rad/s", "gyr_y_rad_s": "rad/s", "gyr_z_rad_s": "rad/s",
    **dict.fromkeys(QUAT_COLUMNS, "1"),
    # trials
    "angle_deg": "deg", "peak_deg": "deg", "t_start_s": "s", "t_end_s": "s", "hold_s": "s",
    "hold_start_s": "s", "hold_end_s": "s", "time_start_utc_iso8601": "UTC",
    "time_end_utc_iso8601": "UTC", "peak_valgus_deg": "deg", "placement_cm": "cm",
}


def _nan_to_none(a: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in a.tolist()]


def _bool(v) -> bool | None:
    return None if v is None else bool(v)


def sample_columns(t: SessionTables) -> dict[str, list]:
    """Every sample, side by side (left, then right), as typed Python columns: floats, ints,
    bools, str and None for unknown; ``time_utc_iso8601`` as the CSV's ISO text."""
    cols: dict[str, list] = {c: [] for c in (*SAMPLE_COLUMNS, *QUAT_COLUMNS)}
    rep_of = RepOfSample(t.trials)  # the counted rep (stored trial) each sample lies in
    for side, s in t.sides.items():
        n = len(s)
        cols["time_utc_iso8601"] += [t.clock(v) or None for v in s.t_s.tolist()]
        cols["t_s"] += s.t_s.tolist()
        cols["side"] += [side] * n
        cols["sensor"] += [t.info.sensor] * n
        cols["tibia_angle_deg"] += s.tibia_angle_deg.tolist()
        cols["knee_track_deg"] += s.knee_track_deg.tolist()
        cols["heel_lift_bool"] += [_bool(v) for v in s.heel_lift]
        cols["heel_source"] += list(s.heel_source)
        trials = [rep_of(side, r, ti) for r, ti in zip(s.rep, s.t_s.tolist(), strict=True)]
        cols["exercise"] += [None if x is None else x.exercise for x in trials]
        cols["set_number"] += [None if x is None else x.set_no for x in trials]
        cols["rep_number"] += [None if x is None else x.rep for x in trials]  # as the CSV
        cols["rep_valid_bool"] += [_bool(v) for v in s.rep_valid]
        cols["phase"] += [p or None for p in s.phase]
        for j, axis in enumerate("xyz"):
            cols[f"acc_{axis}_m_s2"] += _nan_to_none(s.acc_m_s2[:, j])
            cols[f"gyr_{axis}_rad_s"] += _nan_to_none(s.gyr_rad_s[:, j])
        cols["sensor_restart_bool"] += [bool(r) if h else None
                                        for r, h in zip(s.restart.tolist(), s.has_raw.tolist(),
                                                        strict=True)]
        q = s.quat_wxyz
        for j, c in enumerate(QUAT_COLUMNS):
            cols[c] += q[:, j].tolist()
    return cols


def trial_columns(t: SessionTables) -> dict[str, list]:
    """One row per trial, the CSV's columns typed (see :data:`csvfiles.TRIAL_COLUMNS`)."""
    best = {id(s.best_trial) for s in summarize(t.trials).values() if s.best_trial is not None}
    rows = [(t.info.id, t.info.athlete, x.exercise, x.side, x.set_no, x.rep, x.angle_deg,
             x.peak_deg, x.valid, x.counts, x.heel_source, x.t_start_s, x.t_end_s,
             t.clock(x.t_start_s) or None, t.clock(x.t_end_s) or None, x.hold_s,
             x.hold_start_s, x.hold_end_s, id(x) in best, x.peak_valgus_deg,
             t.info.placement_cm) for x in t.trials]
    return {c: [r[i] for r in rows] for i, c in enumerate(TRIAL_COLUMNS)}
