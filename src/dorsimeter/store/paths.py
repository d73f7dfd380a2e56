"""Where dorsimeter keeps its data, and owner-only files in it.

The data directory is ``--home`` if given, else ``$DORSIMETER_HOME``, else the platform's user data
directory (platformdirs). It holds the history database and stored calibrations; it is created
0700 and every file we create there (and every export) is 0600, because sessions are health data.
"""

from __future__ import annotations

import os
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
    return path


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if missing; one we create is 0700 whatever the umask."""
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
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


def open_private_text(path: str | os.PathLike, encoding: str = "utf-8") -> TextIO:
    """Open ``path`` for writing text, created or truncated, owner-only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "w", encoding=encoding, newline="")
