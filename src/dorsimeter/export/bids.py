"""Stored sessions as a BIDS-Motion dataset (BIDS 1.10, the motion extension: Jeung et al. 2024,
Sci Data 11:716), for labs that archive and share motion data and check it with the official
BIDS validator.

Layout, one tracking system per leg's IMU (each has its own clock, duration and sample count)::

    DIR/dataset_description.json  README  participants.tsv/.json
    DIR/sub-<id>/sub-<id>_sessions.tsv
    DIR/sub-<id>/ses-<n>/sub-<id>_ses-<n>_scans.tsv            acq_time of each motion file
    DIR/sub-<id>/ses-<n>/motion/sub-<id>_ses-<n>_task-<task>_tracksys-<sensor><Side>_
        motion.tsv (no header) / motion.json / channels.tsv / channels.json / events.tsv/.json

``<id>`` is the athlete's pseudonymous id where the athlete was stored as one, else ``athlete<N>``
(the store's number: a real name never enters the dataset); ``<n>`` is the session's number.
Floats are written with Python's shortest round-trip repr (reading gives the stored value bit for
bit) except the LATENCY channel, seconds with six decimals as BIDS asks.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import dorsimeter
from dorsimeter.errors import DorsimeterError
from dorsimeter.exercises.protocol import get_protocol
from dorsimeter.export.tables import SessionTables, SideSamples, session_tables
from dorsimeter.paths import atomic_private, private_dir
from dorsimeter.store.db import Store

BIDS_VERSION = "1.10.0"
MISSING = "n/a"
TASKS = {"wall_test": "wbltest"}  # our exercise name -> BIDS task label
TASK_DESCRIPTION = {
    "wbltest": ("Weight-bearing lunge (knee-to-wall) test: the knee is driven toward a wall with "
                "the heel down, held at end range; the tibia angle at the hold is the result.")}
INSTRUCTIONS = ("Foot flat, heel down, drive the knee toward the wall and hold still at the "
                "furthest point; keep the heel on the ground.")
TRACKED_POINT = {"left": "LeftShank", "right": "RightShank"}

#: (name, component, type, units, reference_frame, description)
CHANNELS = (
    ("latency", "n/a", "LATENCY", "s", "n/a", "device time since this file's first sample"),
    ("acc_x", "x", "ACCEL", "m/s^2", "sensor", "raw accelerometer"),
    ("acc_y", "y", "ACCEL", "m/s^2", "sensor", "raw accelerometer"),
    ("acc_z", "z", "ACCEL", "m/s^2", "sensor", "raw accelerometer"),
    ("gyr_x", "x", "GYRO", "rad/s", "sensor", "raw gyroscope"),
    ("gyr_y", "y", "GYRO", "rad/s", "sensor", "raw gyroscope"),
    ("gyr_z", "z", "GYRO", "rad/s", "sensor", "raw gyroscope"),
    ("tibia_quat_w", "quat_w", "ORNT", "n/a", "global", "tibia orientation (heading-free)"),
    ("tibia_quat_x", "quat_x", "ORNT", "n/a", "global", "tibia orientation (heading-free)"),
    ("tibia_quat_y", "quat_y", "ORNT", "n/a", "global", "tibia orientation (heading-free)"),
    ("tibia_quat_z", "quat_z", "ORNT", "n/a", "global", "tibia orientation (heading-free)"),
    ("tibia_angle", "n/a", "MISC", "deg", "global",
     "tibia inclination from vertical in the sagittal plane, knee forward positive (a segment "
     "inclination, not a joint angle)"),
    ("knee_track", "n/a", "MISC", "deg", "global",
     "frontal-plane tibia inclination, toward the midline (valgus) positive"),
    ("heel_lift", "n/a", "MISC", "n/a", "n/a", "1 heel up, 0 heel down, n/a not checked"),
)

CHANNELS_JSON = {
    "reference_frame": {
        "Description": "The frame each channel's values are expressed in.",
        "Levels": {
            "sensor": {"Description": "The IMU's own axes, as the sensor reports them (the clip "
                                      "is strapped to the shin; its mounting on the tibia is in "
                                      "the session's calibration)."},
            "global": {"SpatialAxes": "ALS", "RotationRule": "right-hand",
                       "RotationOrder": "ZYX",
                       "Description": "Gravity-aligned, heading-free: X the way the athlete "
                                      "faces, Y to the athlete's left, Z up. No magnetometer, "
                                      "so the heading is not measured: the orientation is the "
                                      "shortest rotation tilting the tibia (x anterior, y left, "
                                      "z ankle to knee) from vertical to the measured angles."},
        }},
    "tracked_point": {"Description": "The segment the IMU is strapped to.",
                      "Levels": {"LeftShank": "left shin", "RightShank": "right shin"}},
}

EVENT_COLUMNS = ("onset", "duration", "trial_type", "side", "exercise", "set_number",
                 "rep_number", "angle_deg", "peak_deg", "heel_down", "scored", "heel_source")
EVENTS_JSON = {
    "onset": {"Description": "Seconds from the first sample of the motion file of the same "
                             "tracking system (device time).", "Units": "s"},
    "duration": {"Description": "Length of the event.", "Units": "s"},
    "trial_type": {"Description": "What the row is.", "Levels": {
        "trial": "one knee-to-wall attempt (from the start of the drive to the return)",
        "rep": "one rep of a guided exercise",
        "hold": "the still hold at end range whose median angle is the trial's result",
        "heel_lift": "the heel was off the ground (from the heel-lift detector)"}},
    "side": {"Description": "The leg.", "Levels": {"left": "left leg", "right": "right leg"}},
    "exercise": {"Description": "The exercise, as dorsimeter names it (wall_test: the "
                                "knee-to-wall test)."},
    "set_number": {"Description": "Set of a guided exercise; n/a for the wall test."},
    "rep_number": {"Description": "Trial or rep number within the side."},
    "angle_deg": {"Description": "The trial's result: the held (end-range) tibia angle, else "
                                 "the rep's peak.", "Units": "deg"},
    "peak_deg": {"Description": "Highest tibia angle in the trial.", "Units": "deg"},
    "heel_down": {"Description": "1 the heel stayed down, 0 it lifted (the trial is kept but "
                                 "not scored), n/a not checked."},
    "scored": {"Description": "1 the trial counts toward the side's results (held, heel "
                              "down), 0 it does not."},
    "heel_source": {"Description": "What detected heel lift: switch, foot_imu or shank; n/a "
                                   "none."},
}


def label(text: str | None, fallback: str) -> str:
    """A BIDS label: letters and digits only (an empty result becomes ``fallback``)."""
    s = re.sub(r"[^A-Za-z0-9]", "", text or "")
    return s or fallback


def subject_label(store: Store, athlete: str | None) -> str:
    """The athlete's pseudonymous id where stored as one; else ``athlete<N>`` (no real name)."""
    if athlete is None:
        return "unassigned"
    a = store.find_athlete(athlete)
    if a is not None and a.pseudonymous:
        return label(a.name, f"athlete{a.id}")
    return f"athlete{a.id}" if a is not None else "unassigned"


def session_exercise(trials) -> str:
    """The session's exercise: the one with most trials, the wall test by default."""
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.exercise] = counts.get(t.exercise, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else "wall_test"


def task_label(trials) -> str:
    """The BIDS task of a session: ``wbltest`` for the wall test, else the exercise's name."""
    ex = session_exercise(trials)
    return TASKS.get(ex, label(ex, "wbltest").lower())


def task_text(exercise: str) -> tuple[str, str]:
    """(TaskDescription, Instructions): the wall test's, or a shipped protocol's title and cues."""
    if exercise == "wall_test":
        return TASK_DESCRIPTION["wbltest"], INSTRUCTIONS
    try:
        p = get_protocol(exercise)
    except DorsimeterError:
        return f"dorsimeter exercise '{exercise}'", "n/a"
    cues = ". ".join(c for c in (p.cue("start"), p.cue("drive"), p.cue("hold")) if c)
    return f"{p.title} (a dorsimeter guided exercise)", cues or "n/a"


def _num(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return MISSING
    if isinstance(v, bool):
        return "1" if v else "0"
    return repr(v) if isinstance(v, float) else str(v)


def _floats(a: np.ndarray) -> list[str]:
    """Shortest round-trip text of each value; NaN and ±inf (``v - v`` not 0) as ``n/a``."""
    return [repr(v) if v - v == 0 else MISSING for v in a.tolist()]


def _tsv(rows: Iterable[Iterable[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE,
                   escapechar="\\")
    w.writerows(rows)
    return buf.getvalue()


def _text_cell(v: str | None) -> str:
    """Free text in a TSV cell: no tabs or line breaks (they would split the cell)."""
    return MISSING if v is None or v == "" else re.sub(r"[\t\r\n]+", " ", str(v))


def _write(path: Path, text: str) -> None:
    with atomic_private(path, "w") as f:
        f.write(text)


def _json(path: Path, obj) -> None:
    _write(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def motion_rows(s: SideSamples) -> list[list[str]]:
    """The ``_motion.tsv`` rows of one side, columns in ``CHANNELS`` order."""
    lat = s.t_s - s.t_s[0]
    q = s.quat_wxyz
    cols = [[f"{v:.6f}" for v in lat.tolist()]]
    for arr in (s.acc_m_s2, s.gyr_rad_s, q):
        for j in range(arr.shape[1]):
            cols.append(_floats(arr[:, j]))
    cols.append(_floats(s.tibia_angle_deg))
    cols.append(_floats(s.knee_track_deg))
    cols.append([_num(v) for v in s.heel_lift])
    return [list(r) for r in zip(*cols, strict=True)]


def _runs(flags: list[int | None]) -> list[tuple[int, int]]:
    """(first, last) index of each run of 1s."""
    out, start = [], None
    for i, f in enumerate([*flags, 0]):
        if f == 1 and start is None:
            start = i
        elif f != 1 and start is not None:
            out.append((start, i - 1))
            start = None
    return out


def event_rows(tables: SessionTables, s: SideSamples) -> list[list[str]]:
    """Trials (or reps), their holds and the heel lifts of one side, by onset."""
    t0 = float(s.t_s[0])
    dt = s.interval_s
    events: list[tuple[float, list[str]]] = []
    for t in tables.trials:
        if t.side != s.side or t.t_start_s is None or t.t_end_s is None:
            continue  # a trial without times cannot be placed (it stays in the other exports)
        kind = "trial" if t.exercise == "wall_test" else "rep"
        common = [s.side, _text_cell(t.exercise), _num(t.set_no), _num(t.rep),
                  _num(t.angle_deg), _num(t.peak_deg), _num(t.valid), _num(t.counts),
                  _text_cell(t.heel_source)]
        events.append((t.t_start_s - t0, [f"{t.t_start_s - t0:.6f}",
                                          f"{t.t_end_s - t.t_start_s:.6f}", kind, *common]))
        if t.hold_start_s is not None and t.hold_end_s is not None:
            events.append((t.hold_start_s - t0, [
                f"{t.hold_start_s - t0:.6f}", f"{t.hold_end_s - t.hold_start_s:.6f}", "hold",
                *common]))
    for a, b in _runs(s.heel_lift):
        onset = float(s.t_s[a]) - t0
        events.append((onset, [f"{onset:.6f}", f"{float(s.t_s[b] - s.t_s[a]) + dt:.6f}",
                               "heel_lift", s.side, *[MISSING] * 8]))
    events.sort(key=lambda e: e[0])
    return [e[1] for e in events]


def _sensor_kind(store: Store, name: str | None) -> str | None:
    if name is None:
        return None
    row = store.db.execute("SELECT kind FROM sensors WHERE name = ?", (name,)).fetchone()
    return None if row is None else row[0]


def motion_sidecar(tables: SessionTables, s: SideSamples, task: str, sensor_kind: str | None
                   ) -> dict:
    types = [c[2] for c in CHANNELS]
    sim = sensor_kind == "sim"
    return {
        "TaskName": task,
        "TaskDescription": task_text(session_exercise(tables.trials))[0],
        "Instructions": task_text(session_exercise(tables.trials))[1],
        "SamplingFrequency": s.nominal_rate_hz,
        "SamplingFrequencyEffective": s.effective_rate_hz,
        "RecordingDuration": float(s.t_s[-1] - s.t_s[0]),
        "TrackingSystemName": f"{tables.info.sensor or 'IMU'} ({s.side} shin)",
        "Manufacturer": "dorsimeter (simulated IMU)" if sim else "n/a",
        "ManufacturersModelName": ("ShankSim" if sim else (tables.info.sensor or "n/a")),
        "SoftwareVersions": f"dorsimeter {dorsimeter.__version__}",
        "MotionChannelCount": len(CHANNELS),
        "ACCELChannelCount": types.count("ACCEL"),
        "GYROChannelCount": types.count("GYRO"),
        "ORNTChannelCount": types.count("ORNT"),
        "LATENCYChannelCount": types.count("LATENCY"),
        "MiscChannelCount": types.count("MISC"),
        **{f"{k}ChannelCount": 0 for k in ("ANGACCEL", "JNTANG", "MAGN", "POS", "VEL")},
        "TrackedPointsCount": 1,
        "MissingValues": MISSING,
        "SubjectArtefactDescription": "n/a",
    }


@dataclass
class BidsResult:
    root: Path
    files: list[Path]
    subjects: list[str]
    skipped: list[int]  # sessions without samples, left out


def _merge_participants(path: Path, subjects: list[str]) -> list[str]:
    """Participant ids already in the dataset plus ``subjects`` (an export adds, never drops)."""
    have: list[str] = []
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        have = [ln.split("\t")[0] for ln in lines if ln.strip()]
    return sorted(set(have) | {f"sub-{s}" for s in subjects})


def export_bids(store: Store, refs: list[int | str], out_dir: str | os.PathLike) -> BidsResult:
    """Write sessions ``refs`` into the BIDS dataset at ``out_dir`` (created 0700; other
    subjects' and sessions' files already there are kept)."""
    root = private_dir(Path(out_dir))
    files: list[Path] = []
    subjects: list[str] = []
    sessions_of: dict[str, list[tuple[str, str]]] = {}
    skipped: list[int] = []
    for ref in refs:
        tables = session_tables(store, ref)
        info = tables.info
        if not any(len(s) for s in tables.sides.values()):
            skipped.append(info.id)  # no motion data: nothing a BIDS dataset could hold
            continue
        sub = subject_label(store, info.athlete)
        ses = str(info.id)
        subjects.append(sub)
        task = task_label(tables.trials)
        kind = _sensor_kind(store, info.sensor)
        base = f"sub-{sub}_ses-{ses}_task-{task}"
        mdir = root
        for part in (f"sub-{sub}", f"ses-{ses}", "motion"):  # each level owner-only
            mdir = private_dir(mdir / part)
        scans = []
        first_utc = None
        for side, s in tables.sides.items():
            if len(s) == 0:
                continue
            tracksys = label(info.sensor, "imu") + side.capitalize()
            stem = f"{base}_tracksys-{tracksys}"
            p = mdir / f"{stem}_motion.tsv"
            _write(p, _tsv(motion_rows(s)))
            files.append(p)
            _json(mdir / f"{stem}_motion.json", motion_sidecar(tables, s, task, kind))
            _write(mdir / f"{stem}_channels.tsv", _tsv(
                [("name", "component", "type", "tracked_point", "units", "reference_frame"),
                 *((n, c, t, TRACKED_POINT[side], u, r) for n, c, t, u, r, _ in CHANNELS)]))
            _json(mdir / f"{stem}_channels.json", CHANNELS_JSON)
            _write(mdir / f"{stem}_events.tsv",
                   _tsv([EVENT_COLUMNS, *event_rows(tables, s)]))
            _json(mdir / f"{stem}_events.json", EVENTS_JSON)
            acq = tables.clock(float(s.t_s[0]))
            first_utc = acq if first_utc is None or (acq and acq < first_utc) else first_utc
            scans.append((f"motion/{p.name}", _bids_time(acq)))
        if scans:
            _write(root / f"sub-{sub}" / f"ses-{ses}" / f"sub-{sub}_ses-{ses}_scans.tsv",
                   _tsv([("filename", "acq_time"), *scans]))
        sessions_of.setdefault(sub, []).append(
            (f"ses-{ses}", _bids_time(first_utc or info.t0_utc or info.start_utc)))
    for sub, rows in sessions_of.items():
        path = root / f"sub-{sub}" / f"sub-{sub}_sessions.tsv"
        old: dict[str, str] = {}
        if path.exists():
            for ln in path.read_text(encoding="utf-8").splitlines()[1:]:
                parts = ln.split("\t")
                if len(parts) >= 2:
                    old[parts[0]] = parts[1]
        old.update(dict(rows))
        dated = sorted(old.items(), key=lambda kv: int(kv[0][4:]) if kv[0][4:].isdigit() else 0)
        _write(path, _tsv([("session_id", "acq_time"), *dated]))
    _write_dataset_files(root, _merge_participants(root / "participants.tsv", subjects))
    return BidsResult(root, files, sorted(set(subjects)), skipped)


def _bids_time(utc: str | None) -> str:
    """BIDS datetime: ``YYYY-MM-DDThh:mm:ss[.000000]Z``; ``n/a`` when unknown."""
    return utc if utc else MISSING


def _write_dataset_files(root: Path, participants: list[str]) -> None:
    _json(root / "dataset_description.json", {
        "Name": "dorsimeter knee-to-wall sessions",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "raw",
        "License": "n/a",
        "Authors": ["dorsimeter user"],
        "GeneratedBy": [{"Name": "dorsimeter", "Version": dorsimeter.__version__,
                         "Description": "export --format bids"}],
    })
    _write(root / "README", (
        "Ankle dorsiflexion (knee-to-wall test) recorded with a shin-worn IMU by dorsimeter.\n\n"
        "One tracking system per leg's IMU. Channels: latency, raw accelerometer and gyroscope "
        "(sensor frame), the tibia's heading-free orientation, the tibia angle (sagittal "
        "inclination from vertical, knee forward positive), the knee track (frontal-plane "
        "inclination, toward the midline positive) and the heel-lift flag. Events: each trial "
        "(or rep), its scored hold and each heel lift, with the trial's result.\n\n"
        "Participants are pseudonymous ids or store numbers; no names are included.\n"))
    _write(root / "participants.tsv", _tsv([("participant_id",), *((p,) for p in participants)]))
    _json(root / "participants.json", {"participant_id": {
        "Description": "The athlete's pseudonymous id, or athlete<N>: the number of the athlete "
                       "in the dorsimeter store that made the export (names are not exported)."}})


def read_motion_tsv(path: str | os.PathLike) -> np.ndarray:
    """A ``_motion.tsv`` as a float array (``n/a`` → NaN): for tests and readers."""
    rows = Path(path).read_text(encoding="utf-8").splitlines()
    return np.array([[math.nan if v == MISSING else float(v) for v in r.split("\t")]
                     for r in rows], dtype=float)
