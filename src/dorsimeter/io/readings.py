"""The readings CSV contract, one row per sample:

``t_s,side,tibia_angle_deg,knee_track_deg,heel_lift,heel_source,rep,rep_valid``

Extra columns may follow (``analyze --clip-axis`` adds ``clip_angle_deg``, the
inclinometer-equivalent reading); readers keep what they know.

``heel_lift`` is 0/1 (heel judged off the floor), ``heel_source`` names the detector that
judged it (``heel_switch``, ``foot_imu``, ``shank_imu`` or ``none``), ``rep`` is the rep index
(-1 between reps) and ``rep_valid`` 0/1 (0 from the rep's first heel lift on, so the rep's last
row carries its verdict). Any tool can check a session from this file alone.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dorsimeter.errors import InputError
from dorsimeter.paths import open_private_text
from dorsimeter.types import SIDES, Readings

READINGS_COLUMNS = ("t_s", "side", "tibia_angle_deg", "knee_track_deg", "heel_lift",
                    "heel_source", "rep", "rep_valid")
HEEL_SOURCES = ("heel_switch", "foot_imu", "shank_imu", "none")


class ReadingsCsvWriter:
    """Appends readings, flushed per call; ``extra_columns`` (angles in °) follow the contract's."""

    def __init__(self, path: str | Path, extra_columns: tuple[str, ...] = ()) -> None:
        self.extra_columns = tuple(extra_columns)
        self._f = open_private_text(path)  # owner-only: health data
        self._f.write(",".join(READINGS_COLUMNS + self.extra_columns) + "\n")
        self._f.flush()

    def write(self, r: Readings, extra: dict[str, np.ndarray] | None = None) -> None:
        """Rows for ``r``; ``extra`` holds one array per extra column."""
        cols = [np.asarray((extra or {})[c], dtype=float) for c in self.extra_columns]
        tails = ["".join(f",{x[i]:.6f}" for x in cols) for i in range(len(r))] if cols \
            else [""] * len(r)
        self._f.write("".join(
            f"{t:.17g},{s},{a:.6f},{k:.6f},{int(h)},{src},{int(rep)},{int(v)}{tail}\n"
            for t, s, a, k, h, src, rep, v, tail in zip(
                r.t_s, r.side, r.tibia_angle_deg, r.knee_track_deg, r.heel_lift, r.heel_source,
                r.rep, r.rep_valid, tails, strict=True)
        ))
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ReadingsCsvWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_readings_csv(path: str | Path) -> Readings:
    """Readings from a CSV written by :class:`ReadingsCsvWriter` (older four-column files too).

    Bad rows raise InputError naming the line and column."""
    path = str(path)
    try:
        f = open(path, newline="", encoding="utf-8")  # noqa: SIM115
    except FileNotFoundError:
        raise InputError(path, None, None, "no such file") from None
    with f:
        try:
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None or header[:4] != list(READINGS_COLUMNS[:4]):
                raise InputError(path, 1, None,
                                 f"expected the header {','.join(READINGS_COLUMNS)}")
            cols: dict[str, list] = {c: [] for c in header}
            parse = {"t_s": float, "tibia_angle_deg": float, "knee_track_deg": float,
                     "heel_lift": _flag, "rep": int, "rep_valid": _flag,
                     "side": _choice(SIDES), "heel_source": _choice(HEEL_SOURCES)}
            for lineno, row in enumerate(rows, start=2):
                if len(row) != len(header):
                    raise InputError(path, lineno, None,
                                     f"expected {len(header)} fields, found {len(row)}")
                for name, value in zip(header, row, strict=True):
                    try:
                        cols[name].append(parse.get(name, str)(value))
                    except ValueError as e:
                        raise InputError(path, lineno, name, str(e)) from None
        except UnicodeDecodeError:
            raise InputError(path, None, None, "not UTF-8 text, expected a CSV file") from None
        except csv.Error as e:
            raise InputError(path, rows.line_num, None, f"not valid CSV ({e})") from None
    n = len(cols["t_s"])
    get = lambda c, dt: np.asarray(cols[c], dtype=dt) if c in cols else np.empty(0, dt)  # noqa: E731
    r = Readings(get("t_s", float), get("tibia_angle_deg", float), get("knee_track_deg", float),
                 np.asarray(cols["side"], dtype=object), get("heel_lift", bool),
                 get("heel_source", object), get("rep", int), get("rep_valid", bool))
    assert len(r) == n
    return r


def _flag(v: str) -> bool:
    if v not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, found {v!r}")
    return v == "1"


def _choice(options):
    def parse(v: str) -> str:
        if v not in options:
            raise ValueError(f"expected one of {', '.join(options)}, found {v!r}")
        return v
    return parse
