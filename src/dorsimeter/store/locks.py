"""Session liveness locks: which sessions are dead (not just still running).

Every session the store starts holds an exclusive ``flock`` on ``running/session-<id>.lock`` in
the data directory until it is ended or its process exits. The kernel drops the lock when the
process dies, even on SIGKILL or a power cut, so "not ended and not locked" means interrupted,
never "still recording in another terminal". Light (stdlib only): every command's start-up
notice uses it.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from dorsimeter.paths import DB_NAME, data_dir

LOCK_DIR = "running"


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
        found = interrupted_ids(data_dir(home, create=False) / DB_NAME)
    except Exception:  # noqa: BLE001 - a notice must never stop a command
        return None
    if not found:
        return None
    ids = ", ".join(str(i) for i, _, _ in found)
    what = "session" if len(found) == 1 else "sessions"
    return (f"dorsimeter: {what} {ids} did not end (interrupted); run `dorsimeter recover` to "
            "keep what was recorded")
