"""The raw CSV contract: one row per IMU sample, device time in seconds, SI units.

Header: ``t_s,acc_x_m_s2,acc_y_m_s2,acc_z_m_s2,gyr_x_rad_s,gyr_y_rad_s,gyr_z_rad_s`` with optional
``quat_w,quat_x,quat_y,quat_z`` and ``side`` columns, in any order; other columns are ignored.
Values are written with 17 significant digits so a re-analysis sees exactly what the live
pipeline saw.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from dorsimeter.errors import InputError
from dorsimeter.store.paths import open_private_text
from dorsimeter.types import SIDES, ImuBatch

RAW_COLUMNS = ("t_s", "acc_x_m_s2", "acc_y_m_s2", "acc_z_m_s2",
               "gyr_x_rad_s", "gyr_y_rad_s", "gyr_z_rad_s")
QUAT_COLUMNS = ("quat_w", "quat_x", "quat_y", "quat_z")


@dataclass
class RawRecording:
    """A whole raw recording in memory."""

    t_s: np.ndarray
    acc_m_s2: np.ndarray
    gyr_rad_s: np.ndarray
    quat: np.ndarray | None
    side: np.ndarray  # per-sample side names (object array)
    has_side: bool
    dropped_tail: bool = False  # the last line was cut short (crash) and dropped

    @property
    def rate_hz(self) -> float:
        """Sample rate from the median interval, rounded to 0.01 Hz."""
        return round(1.0 / float(np.median(np.diff(self.t_s))), 2)

    def batches(self) -> list[ImuBatch]:
        """The recording split where the side changes (one batch per stretch)."""
        change = np.flatnonzero(self.side[1:] != self.side[:-1]) + 1
        bounds = np.concatenate([[0], change, [len(self.t_s)]])
        return [ImuBatch(self.t_s[a:b], self.acc_m_s2[a:b], self.gyr_rad_s[a:b],
                         None if self.quat is None else self.quat[a:b],
                         side=str(self.side[a]) if self.has_side else None)
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


CHUNK_ROWS = 50_000


def _check_cells(name: str, first_line: int, col: str, cells) -> np.ndarray:
    """Column ``col`` as floats; the first bad cell is an InputError with its line."""
    try:
        arr = np.array(cells, dtype=float)
    except ValueError:
        arr = None
    if arr is None or not np.all(np.isfinite(arr)):
        for i, cell in enumerate(cells):
            try:
                ok = bool(np.isfinite(float(cell)))
            except ValueError:
                ok = False
            if not ok:
                raise InputError(name, first_line + i, col,
                                 f"'{cell.strip()[:20]}' is not a finite number")
    return arr


def _open_text(path: str | Path) -> TextIO:
    name = str(path)
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise InputError(name, None, None, "no such file") from None
    except IsADirectoryError:
        raise InputError(name, None, None, "is a directory, expected a raw CSV file") from None
    except PermissionError:
        raise InputError(name, None, None, "permission denied") from None
    head = f.read(4096)
    f.seek(0)
    if b"\0" in head:
        f.close()
        raise InputError(name, 1, None, "binary data, expected a CSV text file")
    return io.TextIOWrapper(f, encoding="utf-8-sig", newline="")


def read_raw_csv(path: str | Path, default_side: str = "left") -> RawRecording:
    """Read and validate a raw CSV; any problem is an InputError naming file, line and column.

    The file is parsed in chunks (no per-row Python lists of the whole file), so long
    recordings fit in memory. A last line cut short by a crash (no newline, too few fields) is
    dropped: everything written before it is kept (``RawRecording.dropped_tail``).
    """
    name = str(path)
    with _open_text(path) as f:
        reader = csv.reader(f)
        try:
            try:
                header = [h.strip() for h in next(reader)]
            except StopIteration:
                raise InputError(name, 1, None, "empty file, expected a header: "
                                 + ",".join(RAW_COLUMNS)) from None
            for col in RAW_COLUMNS:
                if col not in header:
                    raise InputError(name, 1, col, "missing column (header must contain "
                                     f"{','.join(RAW_COLUMNS)})")
            has_quat = all(c in header for c in QUAT_COLUMNS)
            numeric = list(RAW_COLUMNS) + (list(QUAT_COLUMNS) if has_quat else [])
            idx = [header.index(c) for c in numeric]
            has_side = "side" in header
            side_idx = header.index("side") if has_side else None
            width = len(header)
            chunks: list[np.ndarray] = []
            sides: list[np.ndarray] = []
            dropped_tail = False
            line = 2
            rows: list[list[str]] = []
            for row in reader:
                rows.append(row)
                if len(rows) == CHUNK_ROWS:
                    line = _flush(name, rows, line, width, numeric, idx, side_idx, chunks, sides)
                    rows = []
            if rows and len(rows[-1]) != width and not _ends_with_newline(f):
                rows.pop()  # a line cut short by a crash or kill
                dropped_tail = True
            while rows and not any(c.strip() for c in rows[-1]):
                rows.pop()
            _flush(name, rows, line, width, numeric, idx, side_idx, chunks, sides)
        except UnicodeDecodeError:
            raise InputError(name, None, None, "not UTF-8 text, expected a CSV file") from None
        except csv.Error as e:
            raise InputError(name, reader.line_num, None, f"not valid CSV ({e})") from None
    if not chunks:
        raise InputError(name, 2, None, "no data rows after the header")
    values = np.concatenate(chunks)
    t = values[:, 0]
    if len(t) < 2:
        raise InputError(name, 2, None, "need at least two samples")
    bad = np.flatnonzero(np.diff(t) <= 0)
    if len(bad):
        raise InputError(name, int(bad[0]) + 3, "t_s",
                         "time does not increase (t_s must be strictly increasing seconds)")
    acc, gyr = values[:, 1:4], values[:, 4:7]
    _check_units(name, t, acc, gyr)
    if has_side:
        side = np.concatenate(sides)
        bad_side = np.flatnonzero(~np.isin(side, SIDES))
        if len(bad_side):
            i = int(bad_side[0])
            raise InputError(name, i + 2, "side", f"'{side[i][:20]}' is not 'left' or 'right'")
    else:
        side = np.full(len(t), default_side, dtype=object)
    quat = values[:, 7:11] if has_quat else None
    return RawRecording(t, acc, gyr, quat, side, has_side, dropped_tail)


def _ends_with_newline(f: TextIO) -> bool:
    raw = f.buffer
    raw.seek(0, io.SEEK_END)
    if raw.tell() == 0:
        return True
    raw.seek(-1, io.SEEK_END)
    return raw.read(1) in (b"\n", b"\r")


def _flush(name, rows, line, width, numeric, idx, side_idx, chunks, sides) -> int:
    """Validate and convert one chunk of rows; returns the line number after it."""
    if not rows:
        return line
    for i, r in enumerate(rows):
        if len(r) != width:
            raise InputError(name, line + i, None, f"{len(r)} fields, the header has {width}")
    cols = list(zip(*rows, strict=True))
    chunks.append(np.column_stack([_check_cells(name, line, c, cols[j])
                                   for c, j in zip(numeric, idx, strict=True)]))
    if side_idx is not None:
        sides.append(np.array([s.strip().lower() for s in cols[side_idx]], dtype=object))
    return line + len(rows)


def _check_units(name: str, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray) -> None:
    """Catch the common unit mix-ups: g instead of m/s², °/s instead of rad/s, ms instead of s."""
    dt = float(np.median(np.diff(t)))
    if dt > 0.2:
        raise InputError(name, None, "t_s", f"median sample interval {dt:g}: expected seconds "
                         "(is t_s in milliseconds?)")
    acc_norm = float(np.median(np.linalg.norm(acc, axis=1)))
    if 0.5 < acc_norm < 2.0:
        raise InputError(name, None, "acc_x_m_s2", f"typical |acc| is {acc_norm:.2f}: looks like "
                         "g, expected m/s² (multiply by 9.81)")
    if acc_norm < 0.5 or acc_norm > 50:
        raise InputError(name, None, "acc_x_m_s2", f"typical |acc| is {acc_norm:.3g} m/s²: "
                         "expected about 9.8 m/s² (gravity) for a worn sensor")
    gyr_max = float(np.max(np.abs(gyr)))
    if gyr_max > 40.0:
        raise InputError(name, None, "gyr_x_rad_s", f"angular rate up to {gyr_max:.0f}: beyond "
                         "any sensor's range in rad/s, looks like °/s (multiply by π/180)")


class RawCsvWriter:
    """Appends batches to a raw CSV, flushed after every batch so a crash loses nothing written."""

    def __init__(self, path: str | Path, with_quat: bool = False) -> None:
        self.path = Path(path)
        self.with_quat = with_quat
        self._f: TextIO = open_private_text(self.path)  # owner-only: health data
        cols = list(RAW_COLUMNS) + (list(QUAT_COLUMNS) if with_quat else []) + ["side"]
        try:
            self._f.write(",".join(cols) + "\n")
            self._f.flush()
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(self.path)) from None
        self.rows = 0

    def write(self, batch: ImuBatch, side: str) -> None:
        if len(batch) == 0:
            return
        parts = [batch.t_s[:, None], batch.acc_m_s2, batch.gyr_rad_s]
        if self.with_quat:
            parts.append(batch.quat)
        buf = io.StringIO()
        np.savetxt(buf, np.hstack(parts), fmt="%.17g", delimiter=",")
        lines = buf.getvalue().splitlines()
        try:
            self._f.write("".join(f"{line},{side}\n" for line in lines))
            self._f.flush()
        except OSError as e:  # disk full, file too large: say which file
            raise OSError(e.errno, e.strerror, str(self.path)) from None
        self.rows += len(batch)

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            self._f.close()

    def __enter__(self) -> RawCsvWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
