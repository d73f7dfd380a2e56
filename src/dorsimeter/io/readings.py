"""The readings CSV contract: ``t_s,side,tibia_angle_deg,knee_track_deg``, one row per sample."""

from __future__ import annotations

from pathlib import Path

from dorsimeter.types import Readings

READINGS_COLUMNS = ("t_s", "side", "tibia_angle_deg", "knee_track_deg")


class ReadingsCsvWriter:
    """Appends readings, flushed per call."""

    def __init__(self, path: str | Path) -> None:
        self._f = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._f.write(",".join(READINGS_COLUMNS) + "\n")
        self._f.flush()

    def write(self, r: Readings) -> None:
        self._f.write("".join(
            f"{t:.17g},{s},{a:.6f},{k:.6f}\n"
            for t, s, a, k in zip(r.t_s, r.side, r.tibia_angle_deg, r.knee_track_deg, strict=True)
        ))
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ReadingsCsvWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
