"""The sensors this computer may connect to: an address allow-list in the data directory.

A body-worn radio must not stream to (or take commands from) whoever is nearby, and the host
must not connect to any sensor that happens to advertise the right name: ``--sensor ble:...``
only connects to an address the user has added (``dorsimeter sensors add ADDRESS``), whatever
name it advertises. Scanning (``dorsimeter scan``) lists everything in range and is the way to
find an address. The list is ``sensors.json`` in the data directory, owner-only (0600), like
everything there (sessions are health data).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dorsimeter.errors import DorsimeterError, InputError
from dorsimeter.paths import DB_NAME, FILE_MODE, data_dir, private_dir
from dorsimeter.text import terminal_safe
from dorsimeter.wire.address import is_address, normalise_address

ALLOW_FILE = "sensors.json"
@dataclass(frozen=True)
class AllowedSensor:
    address: str
    label: str | None = None


class AllowList:
    """The sensors the user has added; ``permits(address)`` is what the BLE source asks."""

    def __init__(self, path: Path, sensors: list[AllowedSensor] | None = None) -> None:
        self.path = Path(path)
        self.sensors = list(sensors or [])

    @classmethod
    def load(cls, home=None) -> AllowList:
        """The list in the data directory (``--home`` > ``$DORSIMETER_HOME`` > default)."""
        path = data_dir(home, create=False) / ALLOW_FILE
        if not path.exists():
            return cls(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            items = doc["sensors"]
            sensors = [AllowedSensor(normalise_address(s["address"]), s.get("label"))
                       for s in items]
        except (OSError, ValueError, KeyError, TypeError, DorsimeterError) as e:
            raise InputError(str(path), None, "sensors", f"not a sensor allow-list ({e}); "
                             "fix or delete it and add the sensors again") from None
        return cls(path, sensors)

    def permits(self, address: str) -> bool:
        try:
            a = normalise_address(address)
        except DorsimeterError:
            return False
        return any(s.address == a for s in self.sensors)

    def add(self, address: str, label: str | None = None) -> AllowedSensor:
        a = normalise_address(address)
        self.sensors = [s for s in self.sensors if s.address != a]
        entry = AllowedSensor(a, label)
        self.sensors.append(entry)
        self.save()
        return entry

    def remove(self, address_or_label: str) -> AllowedSensor:
        key = address_or_label.strip()
        address = normalise_address(key) if is_address(key) else None
        for s in self.sensors:
            if s.address == address or (s.label and s.label == key):
                self.sensors.remove(s)
                self.save()
                return s
        raise DorsimeterError(f"{self.path}: no sensor '{key}' in the allow-list")

    def save(self) -> None:
        """Write atomically (temp file, rename), owner-only."""
        private_dir(self.path.parent)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"sensors": [{"address": s.address, "label": s.label}
                                   for s in self.sensors]}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def refusal(self, address: str, name: str | None = None) -> str:
        """The one-line message when a sensor is not on the list."""
        who = f"{address}" + (f" ('{name}')" if name and name != address else "")
        return (f"BLE sensor {who} is not one of your sensors, so dorsimeter will not connect "
                f"to it; add it with `dorsimeter sensors add {address}` (allow-list: "
                f"{self.path})")


# ------------------------------------------------------------------ nothing recorded overwritten
def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(path))).resolve()  # ~nobody: as is (as a shell)


NAME_MAX_BYTES, PATH_MAX_BYTES = 255, 4096  # Linux's (ext4, tmpfs, ...; Windows' are shorter)


def check_path_length(path: str | os.PathLike, option: str) -> None:
    """A path the file system cannot hold is one line naming it (shortened), before any open
    fails with ENAMETOOLONG."""
    def size(text: str) -> int:
        return len(text.encode("utf-8", "surrogateescape"))  # undecodable bytes count as one

    text = os.fspath(path)
    shown = terminal_safe(text if len(text) <= 60 else text[:57] + "...")
    if "\x00" in text:  # no file system holds it (a config file's string can carry one)
        raise DorsimeterError(f"{option} {shown!r}: a path cannot hold a NUL character")
    long_name = max((size(part) for part in Path(text).parts), default=0)
    if long_name > NAME_MAX_BYTES:
        raise DorsimeterError(f"{option} {shown}: a file or folder name of {long_name} bytes is "
                              f"too long (at most {NAME_MAX_BYTES})")
    if size(os.path.abspath(text)) >= PATH_MAX_BYTES:
        raise DorsimeterError(f"{option} {shown}: the path is too long (at most "
                              f"{PATH_MAX_BYTES - 1} bytes)")


def _is_raw_csv(path: Path) -> bool:
    """The file's header is a raw recording's (every raw column there)."""
    from dorsimeter.io.rawcsv import RAW_COLUMNS  # numpy: not at every command's start-up

    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace").lstrip("\ufeff")
    except OSError:
        return False
    first = {c.strip() for c in head.split("\n", 1)[0].split(",")}
    return set(RAW_COLUMNS) <= first


def guard_output(path: str | os.PathLike | None, option: str, *, inputs=(), home=None,
                 force: bool = False, raw: bool = False) -> Path | None:
    """Refuse to write ``path`` where that would destroy something recorded.

    Never the history database (or its WAL/SHM, the allow-list, the config), even with
    ``--force``; without ``--force`` not one of the command's own ``inputs``, not an existing
    raw recording and no existing file in the data directory (a stored sensor calibration)
    (``raw``: the output is a raw CSV itself, so any existing file is refused: each session's
    raw file is its own). Returns the resolved path (None for None)."""
    if path is None:
        return None
    if not str(path).strip():
        raise DorsimeterError(f"{option} '': expected a file path")
    check_path_length(path, option)
    p = _resolved(path)
    home_dir = _resolved(data_dir(home, create=False))
    protected = {home_dir / n for n in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm",
                                        f"{DB_NAME}-journal", ALLOW_FILE, "config.toml")}
    if p in protected or (p.exists() and any(p.exists() and q.exists() and p.samefile(q)
                                             for q in protected)):
        raise DorsimeterError(f"{option} {path}: that is dorsimeter's own {p.name} in the data "
                              "directory; it is never overwritten (choose another file)")
    if p.is_dir():
        raise DorsimeterError(f"{option} {path}: is a directory (expected a file path)")
    if force:
        return p
    for q in inputs:
        if q is not None and str(q) and _resolved(q) == p:
            raise DorsimeterError(f"{option} {path}: is also this command's input {q}; writing "
                                  "it would destroy it (choose another file, or --force)")
    inside_home = home_dir in p.parents
    if p.is_file() and (raw or inside_home or _is_raw_csv(p)):  # not /dev/null, a fifo
        what = ("a raw recording" if _is_raw_csv(p) else
                "a file in dorsimeter's data directory" if inside_home else "an existing file")
        raise DorsimeterError(f"{option} {path}: is {what}; dorsimeter never overwrites a "
                              "recording (choose a new file name, or --force)")
    return p


def add_force_option(p) -> None:
    """``--force``: overwrite an existing output file (never the history database)."""
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing output file, even a raw recording or an input "
                        "(never the history database)")
