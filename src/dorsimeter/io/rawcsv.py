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


def read_raw_csv(path: str | Path, default_side: str = "left") -> RawRecording:
    """Read and validate a raw CSV; any problem is an InputError naming file, line and column."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(name, None, None, "no such file") from None
    except IsADirectoryError:
        raise InputError(name, None, None, "is a directory, expected a raw CSV file") from None
    if b"\0" in data[:4096]:
        raise InputError(name, 1, None, "binary data, expected a CSV text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(name, line, None, "not UTF-8 text, expected a CSV file") from None
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    if not rows:
        raise InputError(name, 1, None, f"empty file, expected a header: {','.join(RAW_COLUMNS)}")
    header = [h.strip() for h in rows[0]]
    for col in RAW_COLUMNS:
        if col not in header:
            raise InputError(name, 1, col, f"missing column (header must contain "
                                           f"{','.join(RAW_COLUMNS)})")
    has_quat = all(c in header for c in QUAT_COLUMNS)
    numeric = list(RAW_COLUMNS) + (list(QUAT_COLUMNS) if has_quat else [])
    body = rows[1:]
    if not body:
        raise InputError(name, 2, None, "no data rows after the header")
    width = len(header)
    for i, r in enumerate(body):
        if len(r) != width:
            raise InputError(name, i + 2, None, f"{len(r)} fields, the header has {width}")
    cols = list(zip(*body, strict=True))
    values = {}
    for col in numeric:
        cells = cols[header.index(col)]
        try:
            arr = np.array(cells, dtype=float)
        except ValueError:
            arr = None
        if arr is None or not np.all(np.isfinite(arr)):
            for i, cell in enumerate(cells):
                try:
                    ok = np.isfinite(float(cell))
                except ValueError:
                    ok = False
                if not ok:
                    raise InputError(name, i + 2, col, f"'{cell[:20]}' is not a finite number")
        values[col] = arr
    t = values["t_s"]
    bad = np.flatnonzero(np.diff(t) <= 0)
    if len(bad):
        raise InputError(name, int(bad[0]) + 3, "t_s",
                         "time does not increase (t_s must be strictly increasing seconds)")
    if len(t) < 2:
        raise InputError(name, 2, None, "need at least two samples")
    has_side = "side" in header
    if has_side:
        side = np.array([s.strip().lower() for s in cols[header.index("side")]], dtype=object)
        bad_side = np.flatnonzero(~np.isin(side, SIDES))
        if len(bad_side):
            i = int(bad_side[0])
            raise InputError(name, i + 2, "side", f"'{side[i][:20]}' is not 'left' or 'right'")
    else:
        side = np.full(len(t), default_side, dtype=object)
    acc = np.column_stack([values[c] for c in RAW_COLUMNS[1:4]])
    gyr = np.column_stack([values[c] for c in RAW_COLUMNS[4:7]])
    quat = np.column_stack([values[c] for c in QUAT_COLUMNS]) if has_quat else None
    return RawRecording(t, acc, gyr, quat, side, has_side)


class RawCsvWriter:
    """Appends batches to a raw CSV, flushed after every batch so a crash loses nothing written."""

    def __init__(self, path: str | Path, with_quat: bool = False) -> None:
        self.path = Path(path)
        self.with_quat = with_quat
        self._f: TextIO = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        cols = list(RAW_COLUMNS) + (list(QUAT_COLUMNS) if with_quat else []) + ["side"]
        self._f.write(",".join(cols) + "\n")
        self._f.flush()
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
        self._f.write("".join(f"{line},{side}\n" for line in lines))
        self._f.flush()
        self.rows += len(batch)

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            self._f.close()

    def __enter__(self) -> RawCsvWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
