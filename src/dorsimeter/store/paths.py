"""Where dorsimeter keeps its data, and owner-only files in it.

The data directory is ``--home`` if given, else ``$DORSIMETER_HOME``, else the platform's user data
directory (platformdirs). It holds the history database and stored calibrations; it is created
0700 and every file we create there (and every export) is 0600, because sessions are health data.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import platformdirs

ENV_HOME = "DORSIMETER_HOME"
DB_NAME = "history.sqlite3"
DIR_MODE = 0o700
FILE_MODE = 0o600


def data_dir(home: str | os.PathLike | None = None, create: bool = True) -> Path:
    """The data directory: ``home`` (an option) > ``$DORSIMETER_HOME`` > platformdirs default."""
    if home is None or str(home) == "":
        home = os.environ.get(ENV_HOME) or platformdirs.user_data_dir("dorsimeter", appauthor=False)
    path = Path(home).expanduser()
    if create:
        private_dir(path)
        tighten_dir(path)
    return path


def tighten_dir(path: Path) -> None:
    """The data directory is owner-only (0700) even when it existed before with a looser mode
    (sessions are health data). Left alone when it is not ours or cannot be changed."""
    with contextlib.suppress(OSError):
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:  # group or others may look in
            os.chmod(path, st.st_mode & 0o700)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) if missing; each one we create is 0700 whatever
    the umask (``mkdir(parents=True)`` would give the parents the umask's mode)."""
    path = Path(path)
    if not path.is_dir():
        if not path.parent.is_dir() and path.parent != path:
            private_dir(path.parent)
        path.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(path, DIR_MODE)
    return path


def db_path(home: str | os.PathLike | None = None) -> Path:
    """The history database file in the data directory."""
    return data_dir(home) / DB_NAME


def touch_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (before SQLite opens it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


@contextlib.contextmanager
def atomic_private_text(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[TextIO]:
    """Write text to ``path`` all at once: a 0600 temporary file beside it, fsynced and renamed
    over ``path`` when the block ends without error (a crash or a full disk leaves the old file,
    never half a new one); the temporary file is removed on error."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    f = open_private_text(tmp, encoding)
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def open_private_text(path: str | os.PathLike, encoding: str = "utf-8") -> TextIO:
    """Open ``path`` for writing text, created or truncated, owner-only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "w", encoding=encoding, newline="")
