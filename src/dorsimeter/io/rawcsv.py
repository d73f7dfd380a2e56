"""The raw CSV contract: one row per IMU sample, device time in seconds, SI units.

Header: ``t_s,acc_x_m_s2,acc_y_m_s2,acc_z_m_s2,gyr_x_rad_s,gyr_y_rad_s,gyr_z_rad_s`` with optional
``quat_w,quat_x,quat_y,quat_z`` and ``side`` columns, in any order; other columns are ignored.
Values are written with 17 significant digits so a re-analysis sees exactly what the live
pipeline saw. The optional ``restart`` column is 1 on the first sample after the sensor
restarted (a power cycle: orientation unknown, the fusion starts afresh) and 0 elsewhere; the
writer always writes it, and a file without it has no restarts.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from dorsimeter.errors import InputError
from dorsimeter.paths import open_private_text
from dorsimeter.rate import clock_problem, steps_problem
from dorsimeter.types import SIDES, ImuBatch

RAW_COLUMNS = ("t_s", "acc_x_m_s2", "acc_y_m_s2", "acc_z_m_s2",
               "gyr_x_rad_s", "gyr_y_rad_s", "gyr_z_rad_s")
QUAT_COLUMNS = ("quat_w", "quat_x", "quat_y", "quat_z")
#: optional channels: ImuBatch field -> its columns (written when the device sends them)
OPTIONAL_CHANNELS = {
    "quat": QUAT_COLUMNS,
    "heel_contact": ("heel_contact",),
    "foot_acc_m_s2": ("foot_acc_x_m_s2", "foot_acc_y_m_s2", "foot_acc_z_m_s2"),
    "foot_gyr_rad_s": ("foot_gyr_x_rad_s", "foot_gyr_y_rad_s", "foot_gyr_z_rad_s"),
}


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
    heel_contact: np.ndarray | None = None
    foot_acc_m_s2: np.ndarray | None = None
    foot_gyr_rad_s: np.ndarray | None = None
    incomplete_channels: tuple[str, ...] = ()  # optional channels with gaps, left out
    restart: np.ndarray | None = None  # per sample: the sensor restarted just before it

    @property
    def restarts(self) -> int:
        """Sensor restarts marked in the file."""
        return 0 if self.restart is None else int(np.count_nonzero(self.restart))

    @property
    def rate_hz(self) -> float:
        """Sample rate from the median interval, rounded to 0.01 Hz."""
        return round(1.0 / float(np.median(np.diff(self.t_s))), 2)

    def batches(self) -> list[ImuBatch]:
        """The recording split where the side changes and where the sensor restarted (one
        batch per stretch; a batch that starts at a restart says so, ``ImuBatch.restart``)."""
        change = self.side[1:] != self.side[:-1]
        if self.restart is not None:
            change = change | self.restart[1:]
        bounds = np.concatenate([[0], np.flatnonzero(change) + 1, [len(self.t_s)]])
        restart = np.zeros(len(self.t_s), dtype=bool) if self.restart is None else self.restart
        def cut(x, a, b):
            return None if x is None else x[a:b]

        return [ImuBatch(self.t_s[a:b], self.acc_m_s2[a:b], self.gyr_rad_s[a:b],
                         cut(self.quat, a, b), cut(self.heel_contact, a, b),
                         side=str(self.side[a]) if self.has_side else None,
                         foot_acc_m_s2=cut(self.foot_acc_m_s2, a, b),
                         foot_gyr_rad_s=cut(self.foot_gyr_rad_s, a, b),
                         restart=bool(restart[a]))
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def __len__(self) -> int:
        return len(self.t_s)

    def slice(self, start: int, stop: int) -> RawRecording:
        """Samples ``start:stop`` (views, not copies), the file's flags kept."""
        def cut(x):
            return None if x is None else x[start:stop]

        return RawRecording(self.t_s[start:stop], self.acc_m_s2[start:stop],
                            self.gyr_rad_s[start:stop], cut(self.quat), self.side[start:stop],
                            self.has_side, self.dropped_tail, cut(self.heel_contact),
                            cut(self.foot_acc_m_s2), cut(self.foot_gyr_rad_s),
                            self.incomplete_channels, cut(self.restart))

    @staticmethod
    def concat(parts: list[RawRecording]) -> RawRecording:
        """Consecutive pieces of one recording joined (the first's flags, the last's
        ``dropped_tail``); a channel is kept only when every piece has it."""
        def join(name: str):
            xs = [getattr(p, name) for p in parts]
            return None if any(x is None for x in xs) else np.concatenate(xs)

        first = parts[0]
        return RawRecording(np.concatenate([p.t_s for p in parts]),
                            np.concatenate([p.acc_m_s2 for p in parts]),
                            np.concatenate([p.gyr_rad_s for p in parts]), join("quat"),
                            np.concatenate([p.side for p in parts]), first.has_side,
                            parts[-1].dropped_tail,
                            join("heel_contact"), join("foot_acc_m_s2"), join("foot_gyr_rad_s"),
                            first.incomplete_channels, join("restart"))

    def chunks(self, rows: int | None = None) -> list[ImuBatch]:
        """``batches`` cut into pieces of at most ``rows`` samples (default ``CHUNK_ROWS``, as
        ``RawStream`` reads them): what goes through the pipeline at a time stays bounded."""
        n = rows or CHUNK_ROWS
        return [b.slice(i, i + n) for b in self.batches() for i in range(0, len(b), n)]


CHUNK_ROWS = 50_000


def _check_cells(name: str, first_line: int, col: str, cells, may_be_empty: bool = False
                 ) -> np.ndarray:
    """Column ``col`` as floats; the first bad cell is an InputError with its line.

    ``may_be_empty``: an optional channel, where an empty cell (the device did not send it for
    that sample) reads as NaN."""
    if may_be_empty:
        cells = [c if c.strip() else "nan" for c in cells]
        if any(c.strip().lower() == "nan" for c in cells):
            out = np.full(len(cells), np.nan)
            ok = [i for i, c in enumerate(cells) if c.strip().lower() != "nan"]
            out[ok] = _check_cells(name, first_line, col, [cells[i] for i in ok]) if ok else []
            return out
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
    assert arr is not None  # a cell numpy refused is one float() refuses: raised above
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


class _RawParser:
    """The rows of a raw CSV as validated numeric chunks of up to ``CHUNK_ROWS`` (iterate it
    once): ``values`` (t, acc, gyr, then the optional channels in ``channels``), ``side`` and
    ``restart`` per row (None without those columns), ``line`` of the chunk's first row. After
    the iteration ``dropped_tail`` says whether a last line cut short was dropped."""

    def __init__(self, path: str | Path) -> None:
        self.path, self.name = path, str(path)
        self.dropped_tail = False

    def __iter__(self):
        name = self.name
        with _open_text(self.path) as f:
            reader = csv.reader(f)
            try:
                yield from self._chunks(name, f, reader)
            except UnicodeDecodeError:
                raise InputError(name, None, None, "not UTF-8 text, expected a CSV file") from None
            except csv.Error as e:
                raise InputError(name, reader.line_num, None, f"not valid CSV ({e})") from None

    def _chunks(self, name, f, reader):
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise InputError(name, 1, None, "empty file, expected a header: "
                             + ",".join(RAW_COLUMNS)) from None
        for col in RAW_COLUMNS:
            if col not in header:
                raise InputError(name, 1, col, "missing column (header must contain "
                                 f"{','.join(RAW_COLUMNS)})")
        self.channels = channels = {k: cols for k, cols in OPTIONAL_CHANNELS.items()
                                    if all(c in header for c in cols)}
        numeric = list(RAW_COLUMNS) + [c for cols in channels.values() for c in cols]
        idx = [header.index(c) for c in numeric]
        self.has_side = "side" in header
        side_idx = header.index("side") if self.has_side else None
        restart_idx = header.index("restart") if "restart" in header else None
        width = len(header)
        line = 2
        rows: list[list[str]] = []
        for row in reader:
            rows.append(row)
            if len(rows) == CHUNK_ROWS:
                yield _flush(name, rows, line, width, numeric, idx, side_idx, restart_idx)
                line += len(rows)
                rows = []
        if rows and not _ends_with_newline(f) and (
                len(rows[-1]) != width
                or (side_idx is not None and rows[-1][side_idx].strip() not in SIDES)):
            rows.pop()  # a line cut short by a crash, a kill or a full disk (in its side cell)
            self.dropped_tail = True
        while rows and not any(c.strip() for c in rows[-1]):
            rows.pop()
        if rows:
            yield _flush(name, rows, line, width, numeric, idx, side_idx, restart_idx)


def read_raw_csv(path: str | Path, default_side: str = "left") -> RawRecording:
    """Read and validate a raw CSV; any problem is an InputError naming file, line and column.

    The file is parsed in chunks into compact columns (float64 time, acc, gyr and channels, one
    shared string object per side name, booleans): about 65 bytes a sample held, under 100 at
    the peak while the columns are joined (each group of columns is joined and its chunks let
    go before the next). A last line cut short by a crash (no newline, too few fields) is
    dropped: everything written before it is kept (``RawRecording.dropped_tail``). For files
    too long to hold at once, :class:`RawStream` reads them chunk by chunk.
    """
    name = str(path)
    parser = _RawParser(path)
    groups: dict[str, list[np.ndarray]] = {}
    sides: list[np.ndarray] = []
    restarts: list[np.ndarray] = []
    width = None
    for _, values, side, restart in parser:
        if width is None:
            width = [("t", 1), ("acc", 3), ("gyr", 3)] + [
                (k, len(cols)) for k, cols in parser.channels.items()]
        j = 0
        for key, w in width:  # the chunk's columns as their own arrays; the block goes
            groups.setdefault(key, []).append(np.array(values[:, j:j + w]))
            j += w
        del values
        if side is not None:
            sides.append(side)
        if restart is not None:
            restarts.append(restart)
    if width is None:
        raise InputError(name, 2, None, "no data rows after the header")
    channels, has_side = parser.channels, parser.has_side

    def joined(key: str) -> np.ndarray:
        parts = groups.pop(key)
        out = np.concatenate(parts)
        parts.clear()
        return out

    t = joined("t")[:, 0]
    if len(t) < 2:
        raise InputError(name, 2, None, "need at least two samples")
    bad = np.flatnonzero(np.diff(t) <= 0)
    if len(bad):
        raise InputError(name, int(bad[0]) + 3, "t_s",
                         "time does not increase (t_s must be strictly increasing seconds)")
    acc, gyr = joined("acc"), joined("gyr")
    _check_units(name, t, acc, gyr)
    problem = clock_problem(t)
    if problem is not None:
        raise InputError(name, None, "t_s", problem)
    if has_side:
        side = np.concatenate(sides)
        del sides
        bad_side = np.flatnonzero(~np.isin(side, SIDES))
        if len(bad_side):
            i = int(bad_side[0])
            raise InputError(name, i + 2, "side", f"'{side[i][:20]}' is not 'left' or 'right'")
    else:
        side = np.full(len(t), default_side, dtype=object)
    optional, incomplete = {}, []
    for key, cols in channels.items():
        block = joined(key)
        if np.isnan(block).any():  # the device did not send it throughout: leave it out
            incomplete.append(key)
            continue
        optional[key] = block[:, 0] if len(cols) == 1 else block
    return RawRecording(t, acc, gyr, optional.get("quat"), side, has_side, parser.dropped_tail,
                        optional.get("heel_contact"), optional.get("foot_acc_m_s2"),
                        optional.get("foot_gyr_rad_s"), tuple(incomplete),
                        np.concatenate(restarts) if restarts else None)


class RawStream:
    """A raw CSV read chunk by chunk, in memory bounded by ``CHUNK_ROWS`` (plus 12 bytes a
    sample while checking, 24 for a moment): a 10 h recording is not held at once.

    Opening it checks the whole file as :func:`read_raw_csv` does (the same one-line errors,
    before any result), keeping only the time steps and |acc|. ``batches()`` then reads it
    again: the same samples, in chunks, split where the side changes and where the sensor
    restarted. The pipeline is split-independent, so the readings equal read_raw_csv's."""

    def __init__(self, path: str | Path, default_side: str = "left") -> None:
        self.path, self.default_side = path, default_side
        name = str(path)
        parser = _RawParser(path)
        steps, norms, n_nan, sides = [], [], {}, set()
        last_t, n, n_fast, fast_max, self.restarts = None, 0, 0, 0.0, 0
        for line, values, side, restart in parser:
            t = values[:, 0]
            step = np.diff(t if last_t is None else np.concatenate([[last_t], t]))
            bad = np.flatnonzero(step <= 0)
            if len(bad):
                raise InputError(name, line + int(bad[0]) + (1 if last_t is None else 0), "t_s",
                                 "time does not increase (t_s must be strictly increasing "
                                 "seconds)")
            if last_t is None:
                self.t0_s = float(t[0])
            last_t = float(t[-1])
            steps.append(step)
            with np.errstate(over="ignore"):
                norms.append(np.linalg.norm(values[:, 1:4], axis=1).astype(np.float32))
            rate = np.abs(values[:, 4:7]).max(axis=1)
            n_fast += int(np.count_nonzero(rate > 40.0))
            fast_max = max(fast_max, float(rate.max()))
            if side is not None:
                bad_side = np.flatnonzero(~np.isin(side, SIDES))
                if len(bad_side):
                    i = int(bad_side[0])
                    raise InputError(name, line + i, "side",
                                     f"'{side[i][:20]}' is not 'left' or 'right'")
                sides.update(side.tolist())
            j = len(RAW_COLUMNS)
            for key, cols in parser.channels.items():
                n_nan[key] = n_nan.get(key, 0) + int(np.isnan(values[:, j:j + len(cols)]).sum())
                j += len(cols)
            if restart is not None:
                self.restarts += int(np.count_nonzero(restart))
            n += len(t)
        if n == 0:
            raise InputError(name, 2, None, "no data rows after the header")
        if n < 2:
            raise InputError(name, 2, None, "need at least two samples")
        step = np.concatenate(steps)
        del steps
        dt = float(np.median(step))
        acc_norm = float(np.median(np.concatenate(norms)))
        del norms
        _check_unit_figures(name, dt, acc_norm, n_fast, fast_max, n)
        problem = steps_problem(step, dt)
        if problem is not None:
            raise InputError(name, None, "t_s", problem)
        self.rate_hz = round(1.0 / dt, 2)
        self.t1_s, self.samples = last_t, n
        self.has_side, self.dropped_tail = parser.has_side, parser.dropped_tail
        self.sides = sides or {default_side}
        self.incomplete_channels = tuple(k for k in parser.channels if n_nan[k])
        self.channels = tuple(k for k in parser.channels if not n_nan[k])

    def chunks(self):
        """The recording again, as RawRecordings of up to ``CHUNK_ROWS`` samples each (the
        samples checked when it was opened: rows appended since are not read)."""
        parser = _RawParser(self.path)
        left = self.samples
        for _, values, side, restart in parser:
            if left <= 0:
                break
            if len(values) > left:
                values = values[:left]
                side = None if side is None else side[:left]
                restart = None if restart is None else restart[:left]
            left -= len(values)
            optional, j = {}, len(RAW_COLUMNS)
            for key, cols in parser.channels.items():
                block = values[:, j:j + len(cols)]
                j += len(cols)
                if key in self.channels:
                    optional[key] = block[:, 0] if len(cols) == 1 else block
            if side is None:
                side = np.full(len(values), self.default_side, dtype=object)
            yield RawRecording(values[:, 0], values[:, 1:4], values[:, 4:7],
                               optional.get("quat"), side, self.has_side, False,
                               optional.get("heel_contact"), optional.get("foot_acc_m_s2"),
                               optional.get("foot_gyr_rad_s"), self.incomplete_channels,
                               restart)

    def batches(self):
        """ImuBatches of the whole recording, chunk by chunk (see ``RawRecording.batches``)."""
        for chunk in self.chunks():
            yield from chunk.batches()


def _ends_with_newline(f: TextIO) -> bool:
    raw = f.buffer
    raw.seek(0, io.SEEK_END)
    if raw.tell() == 0:
        return True
    raw.seek(-1, io.SEEK_END)
    return raw.read(1) in (b"\n", b"\r")


def _flush(name, rows, line, width, numeric, idx, side_idx, restart_idx=None):
    """Validate and convert one chunk of rows: (first line, values, sides, restarts)."""
    for i, r in enumerate(rows):
        if len(r) != width:
            raise InputError(name, line + i, None, f"{len(r)} fields, the header has {width}")
    cols = list(zip(*rows, strict=True))
    values = np.column_stack([_check_cells(name, line, c, cols[j], k >= len(RAW_COLUMNS))
                              for k, (c, j) in enumerate(zip(numeric, idx, strict=True))])
    side = None if side_idx is None else np.array(
        [_SIDE_NAME.get(v, v) for v in (s.strip().lower() for s in cols[side_idx])],
        dtype=object)  # a valid side is the one shared string: 8 bytes a sample, not ~60
    restart = None if restart_idx is None else _restart_cells(name, line, cols[restart_idx])
    return line, values, side, restart


_SIDE_NAME = {s: s for s in SIDES}


def _restart_cells(name: str, first_line: int, cells) -> np.ndarray:
    """The ``restart`` column as booleans: 1 marks a restart, 0 or empty none."""
    flags = np.array([c.strip() for c in cells], dtype=object)
    bad = np.flatnonzero(~np.isin(flags, ("0", "1", "")))
    if len(bad):
        i = int(bad[0])
        raise InputError(name, first_line + i, "restart",
                         f"'{flags[i][:20]}' is not 0 or 1 (1: the sensor restarted here)")
    return flags == "1"


def _check_units(name: str, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray) -> None:
    """Catch the common unit mix-ups: g instead of m/s², °/s instead of rad/s, ms instead of s."""
    with np.errstate(over="ignore"):  # a 1e300 cell: its sample is held later, no warning
        acc_norm = float(np.median(np.linalg.norm(acc, axis=1)))
    rate = np.abs(gyr).max(axis=1)
    fast = rate > 40.0
    _check_unit_figures(name, float(np.median(np.diff(t))), acc_norm,
                        int(np.count_nonzero(fast)), float(rate.max()), len(t))


def _check_unit_figures(name: str, dt: float, acc_norm: float, n_fast: int, gyr_max: float,
                        n: int) -> None:
    """The unit checks on a file's figures: median interval ``dt``, median |acc|, how many
    samples have a rate over 40 rad/s (``n_fast`` of ``n``) and the largest rate."""
    if dt > 0.2:
        raise InputError(name, None, "t_s", f"median sample interval {dt:g}: expected seconds "
                         "(is t_s in milliseconds?)")
    if 0.5 < acc_norm < 2.0:
        raise InputError(name, None, "acc_x_m_s2", f"typical |acc| is {acc_norm:.2f}: looks like "
                         "g, expected m/s² (multiply by 9.81)")
    if acc_norm < 0.5 or acc_norm > 50:
        raise InputError(name, None, "acc_x_m_s2", f"typical |acc| is {acc_norm:.3g} m/s²: "
                         "expected about 9.8 m/s² (gravity) for a worn sensor")
    # a few samples beyond any sensor's range are glitches, held and counted by the pipeline;
    # a file in °/s has every drive beyond it
    if n_fast > max(5, 0.005 * n):
        raise InputError(name, None, "gyr_x_rad_s", f"angular rate up to {gyr_max:.0f}: beyond "
                         "any sensor's range in rad/s, looks like °/s (multiply by π/180)")


class RawCsvWriter:
    """Appends batches to a raw CSV, flushed after every batch so a crash loses nothing written.

    The optional channels (on-chip quaternion, heel switch, foot IMU) are those the first batch
    carries, so everything the device sent is kept; a later batch without one leaves its cells
    empty. ``restart`` is 1 on the first sample of a batch with ``ImuBatch.restart``. The file
    is created (owner-only) at once, the header with the first batch.
    """

    def __init__(self, path: str | Path, with_quat: bool = False) -> None:
        self.path = Path(path)
        self._f: TextIO = open_private_text(self.path)  # owner-only: health data
        self.channels: list[str] = ["quat"] if with_quat else []
        self._header = False
        self.rows = 0

    def _write(self, text: str) -> None:
        try:
            self._f.write(text)
            self._f.flush()
        except OSError as e:  # disk full, file too large: say which file
            raise OSError(e.errno, e.strerror, str(self.path)) from None

    def write(self, batch: ImuBatch, side: str) -> None:
        if len(batch) == 0:
            return
        if not self._header:
            self.channels = [k for k in OPTIONAL_CHANNELS
                             if k in self.channels or getattr(batch, k, None) is not None]
            cols = list(RAW_COLUMNS) + [c for k in self.channels for c in OPTIONAL_CHANNELS[k]]
            self._write(",".join(cols + ["restart", "side"]) + "\n")
            self._header = True
        n = len(batch)
        parts = [batch.t_s[:, None], batch.acc_m_s2, batch.gyr_rad_s]
        for k in self.channels:
            v = getattr(batch, k, None)
            width = len(OPTIONAL_CHANNELS[k])
            parts.append(np.full((n, width), np.nan) if v is None
                         else np.asarray(v, dtype=float).reshape(n, width))
        buf = io.StringIO()
        np.savetxt(buf, np.hstack(parts), fmt="%.17g", delimiter=",")
        text = buf.getvalue().replace("nan", "")  # a channel this batch did not carry: empty
        lines = text.splitlines()
        first = "1" if batch.restart else "0"
        self._write(f"{lines[0]},{first},{side}\n"
                    + "".join(f"{line},0,{side}\n" for line in lines[1:]))
        self.rows += n

    def close(self) -> None:
        if not self._f.closed:
            try:
                self._f.close()  # flushes what a failed write left in the buffer
            except OSError as e:
                raise OSError(e.errno, e.strerror, str(self.path)) from None

    def __enter__(self) -> RawCsvWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
