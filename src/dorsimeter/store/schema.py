"""The history schema and its migrations.

The schema version is SQLite's ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a database from
version ``i`` to ``i + 1``; each runs in one transaction together with the version bump, so a
failed upgrade leaves the file as it was. Add a migration at the end, never edit a released one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from dorsimeter.errors import DorsimeterError


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run statements one by one: ``executescript`` would COMMIT the migration's transaction."""
    for stmt in sql.split(";"):
        if stmt.strip():
            db.execute(stmt)


def _v1_base(db: sqlite3.Connection) -> None:
    """Athletes, sensors, calibrations, sessions and their trials/reps."""
    _script(db, """
        CREATE TABLE athletes (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,          -- a name or a pseudonymous id
            pseudonymous INTEGER NOT NULL DEFAULT 0,
            tibia_length_m REAL,                -- ankle to knee joint line
            foot_length_m REAL,                 -- toe to ankle
            created_utc TEXT NOT NULL
        );
        CREATE TABLE sensors (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,          -- the source's name, e.g. 'ble:AA:BB…'
            kind TEXT                           -- sim | replay | serial | ble
        );
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            athlete_id INTEGER REFERENCES athletes(id),
            sensor_id INTEGER REFERENCES sensors(id),
            kind TEXT NOT NULL,                 -- the command: record | monitor | …
            start_utc TEXT NOT NULL,            -- ISO-8601 UTC, when the session row was written
            end_utc TEXT,
            ended INTEGER NOT NULL DEFAULT 0,   -- 0 until finished: a crash leaves it 0
            raw_path TEXT,                      -- the raw CSV recorded alongside, if any
            notes TEXT
        );
        CREATE TABLE calibrations (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            sensor_id INTEGER REFERENCES sensors(id),
            side TEXT NOT NULL CHECK (side IN ('left', 'right')),
            origin TEXT NOT NULL,               -- live | file
            created_utc TEXT NOT NULL,
            json TEXT NOT NULL                  -- the calibration's fields as JSON
        );
        CREATE TABLE trials (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            side TEXT NOT NULL CHECK (side IN ('left', 'right')),
            exercise TEXT NOT NULL DEFAULT 'wall_test',
            set_no INTEGER,
            rep INTEGER,                        -- rep/trial number within side (and set)
            angle_deg REAL NOT NULL,            -- end-range (held) tibia angle, else its peak
            peak_deg REAL,                      -- highest tibia angle in the rep
            valid INTEGER,                      -- 1 heel down, 0 heel lifted, NULL not checked
            scored INTEGER,                     -- 1 counts toward results (held, heel down),
                                                -- 0 does not, NULL: rule unknown (valid decides)
            heel_source TEXT,                   -- switch | foot_imu | shank | NULL (none)
            t_start_s REAL,                     -- device time
            t_end_s REAL,
            hold_s REAL
        );
        CREATE INDEX sessions_athlete ON sessions(athlete_id, start_utc);
        CREATE INDEX trials_session ON trials(session_id, side);
    """)


def _v2_samples(db: sqlite3.Connection) -> None:
    """Per-sample readings in the database, so export reproduces a session without its files."""
    _script(db, """
        ALTER TABLE sessions ADD COLUMN t0_s REAL;       -- device time of the first sample
        ALTER TABLE sessions ADD COLUMN t0_utc TEXT;     -- host UTC when it arrived
        CREATE TABLE samples (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            side TEXT NOT NULL,
            t_s REAL NOT NULL,
            tibia_angle_deg REAL NOT NULL,
            knee_track_deg REAL NOT NULL,
            heel_lift INTEGER,                  -- 1 lifted, 0 down, NULL unknown
            heel_source TEXT,
            rep INTEGER,
            rep_valid INTEGER,
            phase TEXT
        );
        CREATE INDEX samples_session ON samples(session_id);
    """)


def _v3_hold_interval(db: sqlite3.Connection) -> None:
    """The scored hold's interval per trial, so exports can mark each sample's rep phase."""
    _script(db, """
        ALTER TABLE trials ADD COLUMN hold_start_s REAL;  -- device time, the scored hold
        ALTER TABLE trials ADD COLUMN hold_end_s REAL
    """)


def _session_legs(db: sqlite3.Connection) -> None:
    """What each leg of a session was measured with: one session holds both legs, tested at once
    (a sensor per shin) or one after the other (``record --session N``, the monitor's leg
    switch), each leg with its own sensor, raw CSV and clock anchor (device clocks differ)."""
    _script(db, """
        CREATE TABLE session_legs (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            side TEXT NOT NULL CHECK (side IN ('left', 'right')),
            sensor_id INTEGER REFERENCES sensors(id),
            raw_path TEXT,                      -- this leg's raw CSV, if any
            t0_s REAL,                          -- device time of the leg's first sample
            t0_utc TEXT,                        -- host UTC when it arrived
            own_clock INTEGER NOT NULL DEFAULT 0,  -- 1: times from its own anchor (another
                                                   -- sensor, or recorded later), 0: the session's
            PRIMARY KEY (session_id, side)
        )
    """)


def _raw_identity(db: sqlite3.Connection) -> None:
    """The raw CSVs' identity (SHA-256 per path, JSON), stored when the session ends, so an
    export never joins another session's IMU data to this one's angles."""
    db.execute("ALTER TABLE sessions ADD COLUMN raw_sha256 TEXT")


def _placement(db: sqlite3.Connection) -> None:
    """Where the sensor sat (hardware_docs/mounting.md: the clip's centre this many cm below the
    tibial tuberosity), per session: the inclinometer-equivalent reading depends on it; and
    each trial's peak valgus (knee track toward the midline: the single-leg squat's figure)."""
    _script(db, """
        ALTER TABLE sessions ADD COLUMN placement_cm REAL;
        ALTER TABLE trials ADD COLUMN peak_valgus_deg REAL
    """)


#: a random (version 4) UUID, evaluated per row (no subquery: SQLite would cache it)
_UUID4_SQL = ("lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
              "substr(lower(hex(randomblob(2))), 2) || '-' || "
              "substr('89ab', 1 + (abs(random()) % 4), 1) || "
              "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))")


def _clinic_ids(db: sqlite3.Connection) -> None:
    """A stable UUID per athlete, session and trial (given on insert by a trigger, so every
    writer gets one), the identity of what a rig publishes to a clinic (docs/clinic.md): a
    message sent twice is the same row; and the outbox of messages waiting for the broker,
    in order, with what each session's last message held (a changed session is sent again)."""
    for table in ("athletes", "sessions", "trials"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN uuid TEXT")
        db.execute(f"UPDATE {table} SET uuid = {_UUID4_SQL} WHERE uuid IS NULL")
        db.execute(f"CREATE UNIQUE INDEX {table}_uuid ON {table}(uuid)")
        db.execute(f"CREATE TRIGGER {table}_uuid AFTER INSERT ON {table} "
                   f"WHEN NEW.uuid IS NULL BEGIN "
                   f"UPDATE {table} SET uuid = {_UUID4_SQL} WHERE id = NEW.id; END")
    _script(db, """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order messages are sent in
            topic TEXT NOT NULL,                -- below dorsimeter/<clinic>/<rig>/
            payload TEXT NOT NULL,              -- JSON
            created_utc TEXT NOT NULL,
            sent_utc TEXT                       -- when the broker acknowledged it (QoS 1)
        );
        CREATE INDEX outbox_unsent ON outbox(seq) WHERE sent_utc IS NULL;
        CREATE TABLE outbox_sessions (
            session_uuid TEXT PRIMARY KEY,
            payload_sha256 TEXT NOT NULL        -- of the session's last enqueued message
        )
    """)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1_base, _v2_samples,
                                                          _v3_hold_interval, _session_legs,
                                                          _raw_identity, _placement,
                                                          _clinic_ids]
LATEST = len(MIGRATIONS)


def version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, target: int = LATEST, name: str = "database") -> int:
    """Bring ``db`` (autocommit connection) to ``target``; returns the version it was at."""
    start = version(db)
    if start > LATEST:
        raise DorsimeterError(f"{name}: schema version {start} is newer than this dorsimeter "
                              f"understands ({LATEST}); upgrade dorsimeter")
    if start >= target:
        return start
    db.execute("BEGIN IMMEDIATE")  # one writer migrates; others wait, then see it done
    try:
        start = version(db)
        for v in range(start, target):
            MIGRATIONS[v](db)
            db.execute(f"PRAGMA user_version = {v + 1}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return start
