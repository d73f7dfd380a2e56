"""The history database: athletes, sessions, sensors, calibrations, trials/reps and samples.

Plain data in, plain data out: the store knows nothing of sources, the pipeline or the session
logic, so it takes today's per-side maxima and tomorrow's reps alike. SQLite in WAL mode, so a
reader (``history``, ``export``, the UI) never blocks the recorder and sees whole transactions
only; every write commits before it returns, so a crash loses nothing already handed over.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from dorsimeter.errors import DorsimeterError
from dorsimeter.paths import DB_NAME, FILE_MODE, data_dir, db_path, touch_private
from dorsimeter.store import schema
from dorsimeter.store.locks import SessionLock, hold_session_lock, is_running
from dorsimeter.types import SIDES, Readings

BUSY_TIMEOUT_MS = 10_000
# Human limb lengths we store (metres): tibia (ankle to knee joint line) from a small child's
# ~15 cm to beyond the tallest adults' ~55 cm; toe to ankle from ~5 cm to ~40 cm.
TIBIA_RANGE_M = (0.15, 0.70)
FOOT_RANGE_M = (0.05, 0.40)
SAMPLE_FIELDS = ("side", "t_s", "tibia_angle_deg", "knee_track_deg", "heel_lift", "heel_source",
                 "rep", "rep_valid", "phase")


def utc_iso(dt: datetime | None = None) -> str:
    """ISO-8601 UTC with microseconds and a ``Z``: ``2026-11-23T19:48:41.123456Z``."""
    dt = datetime.now(UTC) if dt is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Athlete:
    id: int
    name: str
    pseudonymous: bool
    tibia_length_m: float | None
    foot_length_m: float | None


def encode_raw_paths(raw_path: str | os.PathLike | list | tuple | None) -> str | None:
    """One resolved path as it is; several as a JSON list (a resolved path never starts "[")."""
    if raw_path is None:
        return None
    if isinstance(raw_path, list | tuple):
        paths = [str(Path(p).resolve()) for p in raw_path]
        return None if not paths else paths[0] if len(paths) == 1 else json.dumps(paths)
    return str(Path(raw_path).resolve())


def decode_raw_paths(raw: str | None) -> list[str]:
    if not raw:
        return []
    if raw.startswith("["):
        try:
            return [str(p) for p in json.loads(raw)]
        except (ValueError, TypeError):
            return [raw]
    return [raw]


@dataclass(frozen=True)
class SessionInfo:
    id: int
    kind: str
    start_utc: str
    end_utc: str | None
    ended: bool
    raw_path: str | None  # one path, or a JSON list of them (a raw CSV per sensor)
    notes: str | None
    athlete: str | None
    sensor: str | None
    t0_s: float | None
    t0_utc: str | None
    placement_cm: float | None = None  # clip centre below the tibial tuberosity (mounting.md)

    @property
    def raw_paths(self) -> list[str]:
        """The raw CSVs recorded alongside: one per sensor (two sensors: one per leg)."""
        return decode_raw_paths(self.raw_path)


@dataclass(frozen=True)
class SessionLeg:
    """One leg of a session: the sensor it was measured with, its raw CSV, its clock anchor."""

    side: str
    sensor: str | None
    raw_path: str | None
    t0_s: float | None
    t0_utc: str | None
    own_clock: bool = False  # its times have their own anchor (another sensor, or later)


@dataclass(frozen=True)
class Trial:
    """One trial (wall-test attempt) or exercise rep, as stored."""

    side: str
    angle_deg: float
    valid: bool | None  # None: heel not checked
    heel_source: str | None
    t_start_s: float | None
    t_end_s: float | None
    rep: int | None = None
    exercise: str = "wall_test"
    set_no: int | None = None
    hold_s: float | None = None
    scored: bool | None = None  # None: not decided by the session logic (``valid`` decides)
    peak_deg: float | None = None
    hold_start_s: float | None = None  # the hold that gave ``angle_deg`` (device time)
    hold_end_s: float | None = None
    id: int | None = None
    peak_valgus_deg: float | None = None  # largest knee track toward the midline (squat screen)

    @property
    def counts(self) -> bool:
        """Counts toward the side's results."""
        return self.scored if self.scored is not None else self.valid is not False


@dataclass
class Samples:
    """A session's per-sample readings, column by column, in recording order."""

    side: list[str]
    t_s: np.ndarray
    tibia_angle_deg: np.ndarray
    knee_track_deg: np.ndarray
    heel_lift: list[int | None]
    heel_source: list[str | None]
    rep: list[int | None]
    rep_valid: list[int | None]
    phase: list[str | None]

    def __len__(self) -> int:
        return len(self.t_s)

    @staticmethod
    def from_rows(rows: Sequence[tuple]) -> Samples:
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(SAMPLE_FIELDS)
        d = dict(zip(SAMPLE_FIELDS, cols, strict=True))
        return Samples(
            side=list(d["side"]), t_s=np.array(d["t_s"], dtype=float),
            tibia_angle_deg=np.array(d["tibia_angle_deg"], dtype=float),
            knee_track_deg=np.array(d["knee_track_deg"], dtype=float),
            heel_lift=list(d["heel_lift"]), heel_source=list(d["heel_source"]),
            rep=list(d["rep"]), rep_valid=list(d["rep_valid"]), phase=list(d["phase"]))


def _tri(v) -> int | None:
    """True/False/None (or 1/0/NaN) as SQLite 1/0/NULL."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return 1 if bool(v) else 0


def _column(r: Readings, name: str, n: int, kind: type) -> list:
    """An optional per-sample field of ``r`` (added by later stages) as a list of SQL values."""
    v = getattr(r, name, None)
    if v is None:
        return [None] * n
    if isinstance(v, str):
        return [v] * n
    out = []
    for x in np.asarray(v).reshape(-1).tolist():
        if x is None or (isinstance(x, float) and math.isnan(x)):
            out.append(None)
        elif kind is str:
            out.append(str(x) if x != "" else None)
        elif kind is bool:
            out.append(_tri(x))
        else:
            out.append(int(x))
    if len(out) != n:
        raise ValueError(f"readings field {name} has {len(out)} values for {n} samples")
    return out


def file_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 of a file's bytes (hex), or None if it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _side(side: str) -> str:
    if side not in SIDES:
        raise DorsimeterError(f"side '{side}': expected 'left' or 'right'")
    return side


def _rowid(cur: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just wrote (sqlite3 types it optional: None before one)."""
    assert cur.lastrowid is not None
    return cur.lastrowid


def _trial(row) -> Trial:
    """A ``trials`` row (its columns in Trial's order) with SQLite's 0/1/NULL flags as bools."""
    values = list(row)
    for i in (2, 10):  # valid, scored
        values[i] = None if values[i] is None else bool(values[i])
    return Trial(*values)


class Store:
    """One connection to the history database; open with ``Store.open(home)``."""

    def __init__(self, path: str | os.PathLike, read_only: bool = False) -> None:
        self.path = Path(path)
        self._running: dict[int, SessionLock] = {}   # session id -> liveness lock (store.recovery)
        self.read_only = read_only
        if read_only:
            self._open_read_only()
            return
        touch_private(self.path)
        if self.path.stat().st_uid == os.getuid():
            os.chmod(self.path, FILE_MODE)
        try:
            # check_same_thread off: a UI may store from a worker thread; calls are serialised
            self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                      isolation_level=None, check_same_thread=False)
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise DorsimeterError(f"{self.path}: cannot use WAL mode (got {mode})")
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            schema.migrate(self.db, name=str(self.path))
        except sqlite3.DatabaseError as e:
            raise DorsimeterError(f"{self.path}: not a dorsimeter history database ({e})"
                                  ) from None

    @classmethod
    def open(cls, home: str | os.PathLike | None = None) -> Store:
        """The store in the data directory (``--home`` > ``$DORSIMETER_HOME`` > platform)."""
        return cls(db_path(home))

    @classmethod
    def open_for_reading(cls, home: str | os.PathLike | None = None) -> Store:
        """The store for a command that only reads (history, export, report): as ``open``
        when the data directory is writable, else read-only (a read-only directory, a backup
        on a read-only mount can still be looked at)."""
        d = data_dir(home, create=False)
        path = d / DB_NAME
        if path.is_file() and not (os.access(d, os.W_OK) and os.access(path, os.W_OK)):
            return cls(path, read_only=True)
        return cls.open(home)

    def _open_read_only(self) -> None:
        """Connect without writing anything: ``mode=ro`` (a WAL reader needs its -shm file,
        which a read-only directory cannot get: then ``immutable``, safe there since no one
        can write the file either)."""
        uri = self.path.resolve().as_uri()
        last: Exception | None = None
        for query in ("mode=ro", "immutable=1"):
            try:
                self.db = sqlite3.connect(f"{uri}?{query}", uri=True, isolation_level=None,
                                          timeout=BUSY_TIMEOUT_MS / 1000,
                                          check_same_thread=False)
                v = schema.version(self.db)
            except sqlite3.DatabaseError as e:
                last = e
                continue
            if v != schema.LATEST:
                self.db.close()
                raise DorsimeterError(f"{self.path}: schema version {v}, this dorsimeter reads "
                                      f"{schema.LATEST}; it cannot be upgraded in a read-only "
                                      "directory (open it once where it is writable)")
            return
        raise DorsimeterError(f"{self.path}: cannot read the history read-only ({last})")

    def close(self) -> None:
        for lock in self._running.values():
            lock.release()
        self._running.clear()
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tx(self) -> _Tx:
        return _Tx(self.db, self.path)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one consistent state of the file, whatever a writer commits."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    # athletes ------------------------------------------------------------------------------

    def athlete(self, name: str, tibia_length_m: float | None = None,
                foot_length_m: float | None = None, pseudonymous: bool | None = None) -> Athlete:
        """The athlete called ``name``, created if new; lengths given here update the record."""
        name = name.strip()
        if not name:
            raise DorsimeterError("athlete name is empty")
        for what, val, (lo, hi) in (("tibia length", tibia_length_m, TIBIA_RANGE_M),
                                    ("toe-to-ankle length", foot_length_m, FOOT_RANGE_M)):
            if val is not None and not (math.isfinite(val) and lo <= val <= hi):
                raise DorsimeterError(f"{what} {100 * val:g} cm: expected {100 * lo:g} to "
                                      f"{100 * hi:g} cm (a human limb)")
        with self._tx():
            self.db.execute(
                "INSERT INTO athletes (name, pseudonymous, created_utc) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO NOTHING", (name, int(bool(pseudonymous)), utc_iso()))
            for col, val in (("tibia_length_m", tibia_length_m), ("foot_length_m", foot_length_m),
                             ("pseudonymous", None if pseudonymous is None else int(pseudonymous))):
                if val is not None:
                    self.db.execute(f"UPDATE athletes SET {col} = ? WHERE name = ?", (val, name))
        found = self.find_athlete(name)
        assert found is not None
        return found

    def find_athlete(self, name: str) -> Athlete | None:
        row = self.db.execute("SELECT id, name, pseudonymous, tibia_length_m, foot_length_m "
                              "FROM athletes WHERE name = ?", (name.strip(),)).fetchone()
        return None if row is None else Athlete(row[0], row[1], bool(row[2]), row[3], row[4])

    def athletes(self) -> list[Athlete]:
        rows = self.db.execute("SELECT id, name, pseudonymous, tibia_length_m, foot_length_m "
                               "FROM athletes ORDER BY name").fetchall()
        return [Athlete(r[0], r[1], bool(r[2]), r[3], r[4]) for r in rows]

    # sensors and calibrations --------------------------------------------------------------

    def sensor(self, name: str, kind: str | None = None) -> int:
        """The id of the sensor called ``name``, created if new."""
        with self._tx():
            self.db.execute("INSERT INTO sensors (name, kind) VALUES (?, ?) "
                            "ON CONFLICT(name) DO NOTHING", (name, kind))
        return int(self.db.execute("SELECT id FROM sensors WHERE name = ?", (name,)).fetchone()[0])

    def add_calibration(self, session_id: int, side: str, calibration, origin: str = "live",
                        sensor: str | None = None) -> int:
        """Store the calibration used for ``side`` (a dataclass, dict or JSON text) as JSON."""
        if is_dataclass(calibration) and not isinstance(calibration, type):
            text = json.dumps(asdict(calibration), sort_keys=True)
        elif isinstance(calibration, str):
            text = calibration
        else:
            text = json.dumps(calibration, sort_keys=True)
        sensor_id = None if sensor is None else self.sensor(sensor)
        with self._tx():
            cur = self.db.execute(
                "INSERT INTO calibrations (session_id, sensor_id, side, origin, created_utc, json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, sensor_id, _side(side), origin, utc_iso(), text))
        return _rowid(cur)

    def calibrations(self, session_id: int) -> list[tuple[str, str, dict]]:
        """``(side, origin, calibration dict)`` per calibration used in the session."""
        rows = self.db.execute("SELECT side, origin, json FROM calibrations WHERE session_id = ? "
                               "ORDER BY id", (session_id,)).fetchall()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    # sessions -------------------------------------------------------------------------------

    def start_session(self, kind: str, athlete: str | None = None, sensor: str | None = None,
                      sensor_kind: str | None = None,
                      raw_path: str | os.PathLike | list | tuple | None = None,
                      notes: str | None = None, start_utc: str | None = None) -> int:
        """Write the session row now, not ended: a crash leaves a visible unfinished session.

        ``raw_path``: the raw CSV recorded alongside, or a list of them (one per sensor)."""
        athlete_id = None if athlete is None else self.athlete(athlete).id
        sensor_id = None if sensor is None else self.sensor(sensor, sensor_kind)
        raw = encode_raw_paths(raw_path)
        with self._tx():
            cur = self.db.execute(
                "INSERT INTO sessions (athlete_id, sensor_id, kind, start_utc, ended, raw_path,"
                " notes) VALUES (?, ?, ?, ?, 0, ?, ?)",
                (athlete_id, sensor_id, kind, start_utc or utc_iso(), raw, notes))
        session_id = _rowid(cur)
        lock = hold_session_lock(self.path.parent, session_id)  # released by death too
        if lock is not None:
            self._running[session_id] = lock
        return session_id

    def add_samples(self, session_id: int, r: Readings, arrived_utc: str | None = None) -> int:
        """Append readings (with any heel/rep/phase fields they carry); committed on return."""
        n = len(r)
        if n == 0:
            return 0
        cols = [
            [str(s) for s in np.asarray(r.side).tolist()],
            np.asarray(r.t_s, dtype=float).tolist(),
            np.asarray(r.tibia_angle_deg, dtype=float).tolist(),
            np.asarray(r.knee_track_deg, dtype=float).tolist(),
            _column(r, "heel_lift", n, bool), _column(r, "heel_source", n, str),
            _column(r, "rep", n, int), _column(r, "rep_valid", n, bool),
            _column(r, "phase", n, str),
        ]
        # the pipeline's "no rep" (-1) and "no heel detector" ("none") are stored as NULL; its
        # 0-based rep index is stored 1-based, as trials and the UI number reps
        heel, source, rep, rep_valid = cols[4:8]
        for i in range(n):
            if source[i] == "none":
                source[i] = heel[i] = None
            if rep[i] is not None:
                if rep[i] < 0:
                    rep[i] = rep_valid[i] = None
                else:
                    rep[i] += 1
        rows = list(zip(*cols, strict=True))
        # the clock anchor: the last sample has just arrived, the first one came (t_last −
        # t_first) earlier (calibration hands over its readings in one go)
        arrived = datetime.now(UTC) if arrived_utc is None else parse_utc(arrived_utc)
        t0_utc = utc_iso(arrived - timedelta(seconds=max(0.0, max(cols[1]) - cols[1][0])))
        first: dict[str, float] = {}
        for side, t in zip(cols[0], cols[1], strict=True):
            first.setdefault(side, t)
        with self._tx():
            self.db.execute("UPDATE sessions SET t0_s = ?, t0_utc = ? "
                            "WHERE id = ? AND t0_s IS NULL", (cols[1][0], t0_utc, session_id))
            for side, t in first.items():  # each leg's own anchor (another sensor, later)
                leg_utc = utc_iso(arrived - timedelta(seconds=max(0.0, max(cols[1]) - t)))
                self.db.execute(
                    "INSERT INTO session_legs (session_id, side, t0_s, t0_utc) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT(session_id, side) DO UPDATE SET t0_s = excluded.t0_s,"
                    " t0_utc = excluded.t0_utc WHERE session_legs.t0_s IS NULL",
                    (session_id, _side(side), t, leg_utc))
            self.db.executemany(
                "INSERT INTO samples (session_id, side, t_s, tibia_angle_deg, knee_track_deg,"
                " heel_lift, heel_source, rep, rep_valid, phase)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(session_id, *row) for row in rows])
        return n

    def add_trial(self, session_id: int, side: str, angle_deg: float, valid: bool | None,
                  heel_source: str | None, t_start_s: float | None, t_end_s: float | None,
                  rep: int | None = None, exercise: str = "wall_test", set_no: int | None = None,
                  hold_s: float | None = None, scored: bool | None = None,
                  peak_deg: float | None = None, hold_start_s: float | None = None,
                  hold_end_s: float | None = None) -> int:
        """Store one trial or rep: its scored angle, heel validity and source, device times."""
        self.add_trials(session_id, [Trial(side, angle_deg, valid, heel_source, t_start_s,
                                           t_end_s, rep, exercise, set_no, hold_s, scored,
                                           peak_deg, hold_start_s, hold_end_s)])
        return int(self.db.execute("SELECT MAX(id) FROM trials WHERE session_id = ?",
                                   (session_id,)).fetchone()[0])

    def add_trials(self, session_id: int, trials: Sequence[Trial], replace: bool = False
                   ) -> None:
        """Store several trials in one transaction (``replace``: instead of the stored ones)."""
        for t in trials:
            _side(t.side)
            if not math.isfinite(float(t.angle_deg)):
                raise DorsimeterError(f"trial angle {t.angle_deg!r} is not a finite number")
        with self._tx():
            if replace:
                self.db.execute("DELETE FROM trials WHERE session_id = ?", (session_id,))
            self.db.executemany(
                "INSERT INTO trials (session_id, side, exercise, set_no, rep, angle_deg, valid,"
                " heel_source, t_start_s, t_end_s, hold_s, scored, peak_deg, hold_start_s,"
                " hold_end_s, peak_valgus_deg)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(session_id, t.side, t.exercise, t.set_no, t.rep, float(t.angle_deg),
                  _tri(t.valid), t.heel_source, t.t_start_s, t.t_end_s, t.hold_s, _tri(t.scored),
                  t.peak_deg, t.hold_start_s, t.hold_end_s, t.peak_valgus_deg)
                 for t in trials])

    def replace_trials(self, session_id: int, trials: Sequence[Trial]) -> None:
        self.add_trials(session_id, trials, replace=True)

    def set_placement(self, session_id: int, placement_cm: float | None) -> None:
        """Where the sensor sat in this session: the clip's centre, cm below the tibial
        tuberosity (None: not given, the standard 15 cm of mounting.md presumed)."""
        with self._tx():
            self.db.execute("UPDATE sessions SET placement_cm = ? WHERE id = ?",
                            (placement_cm, session_id))

    def set_session_athlete(self, session_id: int, athlete: str) -> None:
        """The session belongs to ``athlete`` (chosen after it started)."""
        athlete_id = self.athlete(athlete).id
        with self._tx():
            self.db.execute("UPDATE sessions SET athlete_id = ? WHERE id = ?",
                            (athlete_id, session_id))

    def add_leg(self, session_id: int, side: str, sensor: str | None = None,
                sensor_kind: str | None = None, raw_path: str | os.PathLike | None = None,
                own_clock: bool = False) -> None:
        """Say which sensor (and raw CSV) measures ``side`` in the session; ``own_clock``: its
        device times have an anchor of their own (a second sensor, a leg recorded later)."""
        sensor_id = None if sensor is None else self.sensor(sensor, sensor_kind)
        raw = None if raw_path is None else str(Path(raw_path).resolve())
        with self._tx():
            self.db.execute(
                "INSERT INTO session_legs (session_id, side, sensor_id, raw_path, own_clock)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(session_id, side) DO UPDATE SET"
                " sensor_id = coalesce(excluded.sensor_id, sensor_id),"
                " raw_path = coalesce(excluded.raw_path, raw_path),"
                " own_clock = max(own_clock, excluded.own_clock)",
                (session_id, _side(side), sensor_id, raw, int(own_clock)))

    def legs(self, session_id: int) -> dict[str, SessionLeg]:
        """The session's legs by side (sessions stored before legs were recorded: none)."""
        rows = self.db.execute(
            "SELECT l.side, n.name, l.raw_path, l.t0_s, l.t0_utc, l.own_clock FROM session_legs l"
            " LEFT JOIN sensors n ON n.id = l.sensor_id WHERE l.session_id = ? ORDER BY l.side",
            (session_id,)).fetchall()
        return {r[0]: SessionLeg(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}

    def reopen_session(self, session_id: int, raw_path: str | os.PathLike | None = None
                       ) -> SessionInfo:
        """Continue a stored session (another leg tested after the first): not ended again
        until this recording finishes; ``raw_path`` joins its raw CSVs."""
        info = self.session(session_id)
        if is_running(self.path.parent, session_id):
            raise DorsimeterError(f"session {session_id} is being recorded now; wait for it "
                                  "to finish")
        paths = info.raw_paths + ([] if raw_path is None else [str(Path(raw_path).resolve())])
        with self._tx():
            self.db.execute("UPDATE sessions SET ended = 0, end_utc = NULL, raw_path = ?"
                            " WHERE id = ?", (encode_raw_paths(paths), session_id))
        lock = hold_session_lock(self.path.parent, session_id)
        if lock is not None:
            self._running[session_id] = lock
        return self.session(session_id)

    def end_session(self, session_id: int, end_utc: str | None = None) -> None:
        """Mark the session finished, with the identity of its raw CSVs as they are now."""
        ident = json.dumps({p: h for p in self.session(session_id).raw_paths
                            if (h := file_sha256(p)) is not None}) or None
        with self._tx():
            self.db.execute("UPDATE sessions SET ended = 1, end_utc = ?, raw_sha256 = ? "
                            "WHERE id = ?", (end_utc or utc_iso(), ident, session_id))
        lock = self._running.pop(session_id, None)
        if lock is not None:
            lock.release()

    # reading ---------------------------------------------------------------------------------

    _SESSION_SQL = ("SELECT s.id, s.kind, s.start_utc, s.end_utc, s.ended, s.raw_path, s.notes,"
                    " a.name, n.name, s.t0_s, s.t0_utc, s.placement_cm FROM sessions s"
                    " LEFT JOIN athletes a ON a.id = s.athlete_id"
                    " LEFT JOIN sensors n ON n.id = s.sensor_id")

    @staticmethod
    def _session_row(r) -> SessionInfo:
        return SessionInfo(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], r[9],
                           r[10], r[11])

    def session(self, ref: int | str) -> SessionInfo:
        """Session by id, or ``latest`` (the most recently started)."""
        if isinstance(ref, str) and ref.strip().lower() == "latest":
            row = self.db.execute(self._SESSION_SQL + " ORDER BY s.id DESC LIMIT 1").fetchone()
            if row is None:
                raise DorsimeterError(f"{self.path}: no sessions stored yet")
            return self._session_row(row)
        try:
            sid = int(ref)
        except ValueError:
            raise DorsimeterError(f"session '{str(ref)[:40]}': expected a session id or "
                                  "'latest'") from None
        if not 0 < sid < 2**63:  # beyond SQLite's integers: no such session either
            raise DorsimeterError(f"{self.path}: no session {str(sid)[:40]}")
        row = self.db.execute(self._SESSION_SQL + " WHERE s.id = ?", (sid,)).fetchone()
        if row is None:
            raise DorsimeterError(f"{self.path}: no session {sid}")
        return self._session_row(row)

    def sessions(self, athlete: str | None = None) -> list[SessionInfo]:
        """Sessions in the order they were started, of one athlete or all."""
        if athlete is None:
            rows = self.db.execute(self._SESSION_SQL + " ORDER BY s.start_utc, s.id").fetchall()
        else:
            rows = self.db.execute(self._SESSION_SQL + " WHERE a.name = ? "
                                   "ORDER BY s.start_utc, s.id", (athlete.strip(),)).fetchall()
        return [self._session_row(r) for r in rows]

    def trials(self, session_id: int) -> list[Trial]:
        rows = self.db.execute(
            "SELECT side, angle_deg, valid, heel_source, t_start_s, t_end_s, rep, exercise,"
            " set_no, hold_s, scored, peak_deg, hold_start_s, hold_end_s, id, peak_valgus_deg"
            " FROM trials"
            " WHERE session_id = ? ORDER BY id", (session_id,)).fetchall()
        return [_trial(r) for r in rows]

    def raw_identity(self, session_id: int) -> dict[str, str]:
        """SHA-256 per raw CSV as the session ended ({} for a session not ended yet)."""
        row = self.db.execute("SELECT raw_sha256 FROM sessions WHERE id = ?",
                              (session_id,)).fetchone()
        try:
            ident = json.loads(row[0]) if row and row[0] else {}
        except ValueError:
            return {}
        return ident if isinstance(ident, dict) else {}

    def verified_raw_paths(self, info: SessionInfo) -> tuple[list[str], list[str]]:
        """The session's raw CSVs that are still the files it recorded, and a problem line for
        each one that is not (replaced since: its hash differs), so an export leaves those
        columns empty instead of joining another session's data."""
        ident = self.raw_identity(info.id)
        ok, problems = [], []
        for p in info.raw_paths:
            expected = ident.get(p)
            if expected is not None and file_sha256(p) not in (expected, None):
                problems.append(f"{p} is no longer the file session {info.id} recorded "
                                "(it was replaced since: its SHA-256 differs)")
            else:
                ok.append(p)
        return ok, problems

    def count_samples(self, session_id: int) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM samples WHERE session_id = ?",
                                   (session_id,)).fetchone()[0])

    def iter_samples(self, session_id: int, chunk: int = 20_000) -> Iterator[Samples]:
        """The session's samples in recording order, ``chunk`` rows at a time, from one snapshot."""
        with self.snapshot():  # one read snapshot even while the recorder appends
            cur = self.db.execute(
                f"SELECT {', '.join(SAMPLE_FIELDS)} FROM samples WHERE session_id = ? "
                "ORDER BY rowid", (session_id,))
            while rows := cur.fetchmany(chunk):
                yield Samples.from_rows(rows)

    def samples(self, session_id: int) -> Samples:
        rows = self.db.execute(
            f"SELECT {', '.join(SAMPLE_FIELDS)} FROM samples WHERE session_id = ? ORDER BY rowid",
            (session_id,)).fetchall()
        return Samples.from_rows(rows)


class StoreError(DorsimeterError):
    """The history could not be written (disk full, file locked too long). Exit code 1."""

    exit_code = 1


class _Tx:
    """``with store._tx():`` — BEGIN IMMEDIATE … COMMIT, ROLLBACK on error.

    SQLite failures (disk full, locked) become a one-line :class:`StoreError` naming the file.
    """

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db, self.path = db, path

    def __enter__(self) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StoreError(f"{self.path}: cannot write the history ({e})") from e

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        except sqlite3.Error as e:
            if exc_type is None:
                raise StoreError(f"{self.path}: cannot write the history ({e})") from e
        if exc_type is not None and issubclass(exc_type, sqlite3.Error):
            raise StoreError(f"{self.path}: cannot write the history ({exc})") from exc
