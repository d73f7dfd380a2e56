"""Published norms (``data/norms.toml``) and an athlete's results set against them.

Each line that shows a norm carries its source, e.g. ``left 33.1°: below the healthy range,
35–45°, Bennell 1998``. The figures live in the data file with full citations, not in code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from dorsimeter.errors import DorsimeterError

NORMS_FILE = "norms.toml"


@dataclass(frozen=True)
class Source:
    key: str
    short: str  # "Bennell 1998": printed beside the norm
    citation: str  # the full reference


@dataclass(frozen=True)
class Norms:
    tibia_low_deg: float
    tibia_high_deg: float
    tibia_source: Source
    wall_low_cm: float
    wall_high_cm: float
    wall_source: Source
    side_within_cm: float
    side_share: float
    side_source: Source
    mdc_method: str
    mdc_low_deg: float
    mdc_high_deg: float
    mdc_source: Source
    sources: tuple[Source, ...]

    def angle_verdict(self, angle_deg: float) -> str:
        """``below``, ``within`` or ``above`` the healthy tibia-angle range."""
        if angle_deg < self.tibia_low_deg:
            return "below"
        return "above" if angle_deg > self.tibia_high_deg else "within"

    @property
    def tibia_range(self) -> str:
        return f"{self.tibia_low_deg:g}–{self.tibia_high_deg:g}°"

    def angle_line(self, side: str, angle_deg: float) -> str:
        """``left 33.1°: below the healthy range, 35–45°, Bennell 1998``."""
        return (f"{side} {angle_deg:.1f}°: {self.angle_verdict(angle_deg)} the healthy range, "
                f"{self.tibia_range}, {self.tibia_source.short}")

    def angle_short(self, angle_deg: float) -> str:
        """``below 35–45° (Bennell 1998)``: for narrow tables."""
        return (f"{self.angle_verdict(angle_deg)} {self.tibia_range} "
                f"({self.tibia_source.short})")

    def difference_line(self, cm: float) -> str:
        """The left/right difference in knee-to-wall centimetres against healthy adults'."""
        pct = f"{100 * self.side_share:.0f} %"
        where = "within" if abs(cm) <= self.side_within_cm else "more than"
        return (f"left/right {abs(cm):.1f} cm: {where} the {self.side_within_cm:g} cm that "
                f"{pct} of healthy adults are within, {self.side_source.short}")

    def mdc_line(self, diff_deg: float) -> str:
        """A difference or change in degrees against the MDC of the method."""
        d = abs(diff_deg)
        if d > self.mdc_high_deg:
            where = "beyond"
        elif d < self.mdc_low_deg:
            where = "within"
        else:
            where = "inside the spread of"
        return (f"{d:.1f}°: {where} the minimal detectable change by {self.mdc_method}, "
                f"{self.mdc_low_deg:g}–{self.mdc_high_deg:g}°, {self.mdc_source.short}")

    @property
    def wall_line(self) -> str:
        return (f"healthy knee-to-wall distance {self.wall_low_cm:g}–{self.wall_high_cm:g} cm, "
                f"{self.wall_source.short}")


def _bad(table: dict, key: str, where: str, expected: str) -> DorsimeterError:
    return DorsimeterError(f"{NORMS_FILE}: [{where}] {key}: expected {expected}, "
                           f"got {table.get(key)!r}")


def _text(table: dict, key: str, where: str) -> str:
    v = table.get(key)
    if not isinstance(v, str):
        raise _bad(table, key, where, "str")
    return v


def _number(table: dict, key: str, where: str) -> float:
    v = table.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise _bad(table, key, where, "a number")
    return float(v)


def parse_norms(data: dict) -> Norms:
    """Norms from the TOML file's table; a missing or mistyped field is a one-line error."""
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, dict) or not raw_sources:
        raise DorsimeterError(f"{NORMS_FILE}: [sources]: expected a table of sources")
    sources = {k: Source(k, _text(v, "short", f"sources.{k}"),
                         " ".join(_text(v, "citation", f"sources.{k}").split()))
               for k, v in raw_sources.items()}

    def section(name: str) -> tuple[dict, Source]:
        t = data.get(name)
        if not isinstance(t, dict):
            raise DorsimeterError(f"{NORMS_FILE}: [{name}]: missing")
        key = _text(t, "source", name)
        if key not in sources:
            raise DorsimeterError(f"{NORMS_FILE}: [{name}] source: '{key}' is not in [sources]")
        return t, sources[key]

    ta, ts = section("tibia_angle")
    wd, ws = section("wall_distance")
    sd, ss = section("side_difference")
    md, ms = section("mdc")
    return Norms(_number(ta, "low_deg", "tibia_angle"), _number(ta, "high_deg", "tibia_angle"),
                 ts, _number(wd, "low_cm", "wall_distance"),
                 _number(wd, "high_cm", "wall_distance"), ws,
                 _number(sd, "within_cm", "side_difference"),
                 _number(sd, "share", "side_difference"), ss,
                 _text(md, "method", "mdc"), _number(md, "low_deg", "mdc"),
                 _number(md, "high_deg", "mdc"), ms,
                 tuple(sources.values()))


@lru_cache(maxsize=1)
def load_norms() -> Norms:
    """The packaged norms (read once)."""
    text = resources.files("dorsimeter.export").joinpath("data", NORMS_FILE).read_text("utf-8")
    try:
        return parse_norms(tomllib.loads(text))
    except tomllib.TOMLDecodeError as e:
        raise DorsimeterError(f"{NORMS_FILE}: {e}") from None
