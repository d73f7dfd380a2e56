"""The clinic's PostgreSQL schema and its migrations, like the SQLite store's: ``MIGRATIONS[i]``
takes the database from version ``i`` to ``i + 1``, each in one transaction with the version
bump. They run as the schema's owner (``clinic_owner``); the services get only what they need:
``ingest`` SELECT/INSERT/UPDATE on the tables it writes (no DELETE, no DDL), ``team`` SELECT."""

from __future__ import annotations

import psycopg

from dorsimeter.errors import DorsimeterError

_V1 = """
CREATE TABLE schema_version (version integer NOT NULL);
INSERT INTO schema_version VALUES (0);
CREATE TABLE rigs (
    clinic text NOT NULL,
    rig text NOT NULL,
    online boolean NOT NULL,
    seen_utc timestamptz NOT NULL,
    PRIMARY KEY (clinic, rig)
);
CREATE TABLE athletes (
    uuid uuid PRIMARY KEY,
    clinic text NOT NULL,
    rig text NOT NULL,                      -- the rig that first sent it
    name text,                              -- NULL: pseudonymous (never sent)
    pseudonymous boolean NOT NULL,
    updated_utc timestamptz NOT NULL
);
CREATE TABLE sessions (
    uuid uuid PRIMARY KEY,
    athlete_uuid uuid REFERENCES athletes(uuid),
    clinic text NOT NULL,
    rig text NOT NULL,
    kind text NOT NULL,
    start_utc timestamptz NOT NULL,
    end_utc timestamptz,
    placement_cm double precision,
    left_best_deg double precision,         -- the rig's own summary (store.summary)
    left_mean_best3_deg double precision,
    right_best_deg double precision,
    right_mean_best3_deg double precision,
    asym_diff_deg double precision,
    asym_percent double precision,
    asym_band text,
    asym_beyond_mdc boolean,
    received_utc timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_athlete ON sessions(athlete_uuid, start_utc);
CREATE TABLE trials (
    uuid uuid PRIMARY KEY,
    session_uuid uuid NOT NULL REFERENCES sessions(uuid),
    side text NOT NULL CHECK (side IN ('left', 'right')),
    exercise text NOT NULL,
    set_no integer,
    rep integer,
    angle_deg double precision NOT NULL,
    peak_deg double precision,
    valid boolean,
    scored boolean,
    counts boolean NOT NULL,
    hold_s double precision,
    superseded boolean NOT NULL DEFAULT false  -- a later message of its session left it out
);
CREATE INDEX trials_session ON trials(session_uuid);
GRANT SELECT ON schema_version TO ingest, team;
GRANT SELECT, INSERT, UPDATE ON rigs, athletes, sessions, trials TO ingest;
GRANT SELECT ON rigs, athletes, sessions, trials TO team
"""

# the athlete's group (a squad, a clinic's team), as the rig that last sent it said
# (``publish --group``); the page filters by it
_V2 = """
ALTER TABLE athletes ADD COLUMN athlete_group text;
CREATE INDEX athletes_group ON athletes(athlete_group)
"""

# the rigs' raw CSVs (``publish --raw``), each checked against the SHA-256 its rig recorded;
# the team page does not read them (no grant)
_V3 = """
CREATE TABLE raw_files (
    session_uuid uuid NOT NULL,
    name text NOT NULL,
    sha256 text NOT NULL,
    size_bytes bigint NOT NULL,
    data bytea NOT NULL,
    received_utc timestamptz NOT NULL,
    PRIMARY KEY (session_uuid, name)
);
GRANT SELECT, INSERT, UPDATE ON raw_files TO ingest
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3]
LATEST = len(MIGRATIONS)


def version(conn: psycopg.Connection) -> int:
    """The schema's version; 0 before the first migration."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(got[0]) if got else 0


def migrate(conn: psycopg.Connection) -> int:
    """Bring the database to ``LATEST`` (as its owner); returns the version it was at."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(16016)")  # one migrator at a time
        start = version(conn)
        if start > LATEST:
            raise DorsimeterError(f"clinic database: schema version {start} is newer than this "
                                  f"dorsimeter understands ({LATEST}); upgrade dorsimeter")
        for v in range(start, LATEST):
            for stmt in MIGRATIONS[v].split(";"):
                if stmt.strip():
                    conn.execute(stmt)  # type: ignore[arg-type]
            conn.execute("UPDATE schema_version SET version = %s", (v + 1,))
    return start


def check(conn: psycopg.Connection) -> None:
    """A service refuses a database not at ``LATEST`` (one line: what to run)."""
    v = version(conn)
    if v != LATEST:
        raise DorsimeterError(f"clinic database: schema version {v}, this dorsimeter needs "
                              f"{LATEST}: run `dorsimeter ingest --migrate` with the owner's "
                              "connection (docs/clinic.md)")
