"""Interrupted sessions: which are dead (not just still running), and recovering them.

Every session the store starts holds an exclusive ``flock`` on ``running/session-<id>.lock`` in
the data directory until it is ended or its process exits. The kernel drops the lock when the
process dies, even on SIGKILL or a power cut, so "not ended and not locked" means interrupted,
never "still recording in another terminal". Recovering keeps everything the session stored
(its samples were committed batch by batch; the raw CSV was flushed batch by batch and its
cut-off last line is dropped on reading), scores its trials from the stored samples if none were
stored, and marks it ended.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dorsimeter.errors import DorsimeterError, InputError

LOCK_DIR = "running"
RECOVERED_NOTE = "recovered after an interruption"


# ------------------------------------------------------------------ liveness locks
def _lock_path(data_dir: Path, session_id: int) -> Path:
    return Path(data_dir) / LOCK_DIR / f"session-{int(session_id)}.lock"


class SessionLock:
    """Held while a session records; ``release`` when it ends (the OS releases it on death)."""

    def __init__(self, data_dir: Path, session_id: int) -> None:
        self.path = _lock_path(data_dir, session_id)
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None


def hold_session_lock(data_dir: Path, session_id: int) -> SessionLock | None:
    """The lock for a session being recorded; None where locks can't be had (read-only dir)."""
    try:
        return SessionLock(data_dir, session_id)
    except OSError:
        return None


def is_running(data_dir: Path, session_id: int) -> bool:
    """True while some process holds the session's lock."""
    path = _lock_path(data_dir, session_id)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# ------------------------------------------------------------------ finding them
def interrupted_ids(db_file: Path) -> list[tuple[int, str, str]]:
    """``(id, kind, start_utc)`` of sessions never ended whose recorder is gone (read-only)."""
    if not db_file.is_file():
        return []
    db = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=2.0)
    try:
        rows = db.execute("SELECT id, kind, start_utc FROM sessions WHERE ended = 0 "
                          "ORDER BY id").fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()
    return [(int(r[0]), r[1], r[2]) for r in rows if not is_running(db_file.parent, r[0])]


def startup_notice(home=None) -> str | None:
    """One line for the next start after a crash, or None. Never raises, never creates files."""
    try:
        from dorsimeter.store.paths import DB_NAME, data_dir

        found = interrupted_ids(data_dir(home, create=False) / DB_NAME)
    except Exception:  # noqa: BLE001 - a notice must never stop a command
        return None
    if not found:
        return None
    ids = ", ".join(str(i) for i, _, _ in found)
    what = "session" if len(found) == 1 else "sessions"
    return (f"dorsimeter: {what} {ids} did not end (interrupted); run `dorsimeter recover` to "
            "keep what was recorded")


# ------------------------------------------------------------------ recovering
@dataclass
class Recovered:
    session_id: int
    samples: int
    trials_added: int
    raw_path: str | None
    raw_rows: int | None  # rows readable in the raw CSV (None: no raw file)
    raw_problem: str | None = None
    reanalysed: int = 0  # readings re-analysed from the raw CSV (none had reached the store)
    reanalysis_problem: str | None = None  # why the raw CSV could not be re-analysed


def reanalyse_raw(store, session_id: int, raw_paths: list[str]) -> tuple[int, str | None]:
    """Run the session's raw CSVs through the live pipeline and store the readings, for a
    session whose readings never reached the store (killed while the pipeline held them for
    its calibration). Returns (readings stored, why not)."""
    from dorsimeter.cli.analyze import analyze
    from dorsimeter.core import calibrate_recording
    from dorsimeter.io.rawcsv import read_raw_csv

    n = 0
    for raw_path in raw_paths:
        try:
            rec = read_raw_csv(raw_path)
            cals = calibrate_recording(rec.batches(), rec.rate_hz)
            readings = analyze(rec, cals)
        except DorsimeterError as e:
            return n, str(e)
        for side, cal in sorted(cals.items()):
            store.add_calibration(session_id, side, cal, origin="live")
        n += store.add_samples(session_id, readings)
    return n, None


def recover_session(store, session_id: int) -> Recovered:
    """Score the trials of an interrupted session from its stored samples and mark it ended."""
    from dorsimeter.io.rawcsv import read_raw_csv
    from dorsimeter.rate import stream_rate_hz
    from dorsimeter.session import SessionResults
    from dorsimeter.store.recorder import trials_from_results
    from dorsimeter.types import Readings

    info = store.session(session_id)
    if info.ended:
        raise DorsimeterError(f"session {session_id} ended normally; nothing to recover")
    if is_running(store.path.parent, session_id):
        raise DorsimeterError(f"session {session_id} is still recording")
    added = 0
    n = store.count_samples(session_id)
    reanalysed, why = 0, None
    if n == 0 and info.raw_paths:
        reanalysed, why = reanalyse_raw(store, session_id, info.raw_paths)
        n = store.count_samples(session_id)
    if not store.trials(session_id) and n:
        s = store.samples(session_id)
        r = Readings(s.t_s, s.tibia_angle_deg, s.knee_track_deg, np.array(s.side, dtype=object),
                     np.array([bool(v) for v in s.heel_lift]),
                     np.array([v or "none" for v in s.heel_source], dtype=object),
                     np.array([-1 if v is None else int(v) for v in s.rep]),
                     np.array([v is None or bool(v) for v in s.rep_valid]))
        sides = np.asarray(r.side)
        rates = {stream_rate_hz(r.t_s[sides == x]) for x in np.unique(sides)
                 if np.count_nonzero(sides == x) > 1}
        results = SessionResults(rate_hz=rates.pop() if len(rates) == 1 else None)
        results.add(r)
        spans = {str(x): (float(r.t_s[sides == x][0]), float(r.t_s[sides == x][-1]))
                 for x in np.unique(sides)}
        trials = [t for t in trials_from_results(results, spans)
                  if t.angle_deg is not None and np.isfinite(t.angle_deg)]
        store.add_trials(session_id, trials)  # whole records: scored, peak and hold kept
        added = len(trials)
    rows, problem = None, None
    for raw_path in info.raw_paths:  # one raw CSV per sensor
        try:
            rows = (rows or 0) + len(read_raw_csv(raw_path).t_s)
        except InputError as e:
            problem = str(e) if problem is None else f"{problem}; {e}"
    with store._tx():
        store.db.execute("UPDATE sessions SET notes = trim(coalesce(notes, '') || ' ' || ?) "
                         "WHERE id = ?", (f"[{RECOVERED_NOTE}]", session_id))
    store.end_session(session_id)
    return Recovered(session_id, n, added, ", ".join(info.raw_paths) or None, rows, problem,
                     reanalysed, why)
