"""Where dorsimeter keeps its data, and owner-only files in it.

The data directory is ``--home`` if given, else ``$DORSIMETER_HOME``, else the platform's user data
directory (platformdirs). It holds the history database and stored calibrations; it is created
0700 and every file we create there (and every export) is 0600, because sessions are health data.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import platformdirs

from dorsimeter.errors import DorsimeterError
from dorsimeter.text import terminal_safe

ENV_HOME = "DORSIMETER_HOME"
DB_NAME = "history.sqlite3"
DIR_MODE = 0o700
FILE_MODE = 0o600


def data_dir(home: str | os.PathLike | None = None, create: bool = True) -> Path:
    """The data directory: ``home`` (an option) > ``$DORSIMETER_HOME`` > platformdirs default."""
    if home is None or str(home) == "":
        home = os.environ.get(ENV_HOME) or platformdirs.user_data_dir("dorsimeter", appauthor=False)
    path = Path(os.path.expanduser(home))  # "~nobody/x" stays as typed, as in a shell
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
    the umask (``mkdir(parents=True)`` would give the parents the umask's mode). A file where
    the directory or a folder above it would be is the user's to move: a one-line
    ``DorsimeterError`` naming it (it was a bare ``FileExistsError`` / ``NotADirectoryError``)."""
    path = Path(path)
    if path.is_dir():
        return path
    blocker = next((q for q in (path, *path.parents) if q.exists() and not q.is_dir()), None)
    try:
        if blocker is not None:
            raise FileExistsError
        if not path.parent.is_dir() and path.parent != path:
            private_dir(path.parent)
        path.mkdir(mode=DIR_MODE, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # (or a file made there meanwhile)
        blocker = blocker or path
        where = "" if blocker == path else f"{terminal_safe(str(blocker))[:200]} "
        raise DorsimeterError(f"{terminal_safe(str(path))[:200]}: {where}is a file, not a "
                              "directory (move it, or choose another)") from None
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


def is_special_file(path: str | os.PathLike) -> bool:
    """``path`` exists and is not a regular file (``/dev/null``, a fifo, a terminal): written
    through as it is, never replaced by a rename nor given our file mode."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def atomic_private(path: str | os.PathLike, mode: str = "w", encoding: str = "utf-8") -> Iterator:
    """A file object writing ``path`` owner-only (0600) and all at once: a temporary file beside
    it, fsynced and renamed over ``path`` when the block ends without error (a crash or a full
    disk leaves the old file, never half a new one; the temporary file is removed on error).
    ``mode`` "w" (text, no newline translation) or "wb". A special file such as ``/dev/null`` is
    written through instead: renaming over it as root would replace the device for everyone."""
    path = Path(path)
    binary = "b" in mode
    kw: dict[str, Any] = {} if binary else {"encoding": encoding, "newline": ""}
    if is_special_file(path):
        with open(path, "wb" if binary else "w", **kw) as f:
            yield f
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb" if binary else "w", **kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_private_text(path: str | os.PathLike, encoding: str = "utf-8"):
    """``atomic_private`` for text."""
    return atomic_private(path, "w", encoding)


def open_private_text(path: str | os.PathLike, encoding: str = "utf-8") -> TextIO:
    """Open ``path`` for writing text, created or truncated, owner-only (0600); a special file
    (``/dev/null``) keeps its own mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "w", encoding=encoding, newline="")
