"""The trend per side over an athlete's sessions (for ``history`` and the report)."""

from __future__ import annotations

from dataclasses import dataclass

from dorsimeter.session.asymmetry import asymmetry as session_asymmetry
from dorsimeter.store.db import SessionInfo, Store
from dorsimeter.store.summary import Asymmetry, SideSummary, asymmetry, geometry, summarize
from dorsimeter.types import SIDES

SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class HistoryPoint:
    session: SessionInfo
    sides: dict[str, SideSummary]
    asymmetry: Asymmetry | None
    trials: tuple = ()  # the session's stored trials (the exercises' own figures)


def history(store: Store, athlete: str | None) -> list[HistoryPoint]:
    """Every session of ``athlete`` (None: sessions without an athlete) in start order."""
    a = None if athlete is None else store.find_athlete(athlete)
    geo = None if a is None else geometry(a.tibia_length_m, a.foot_length_m)
    out = []
    with store.snapshot():
        for s in store.sessions(athlete):
            if s.athlete != athlete:
                continue
            trials = store.trials(s.id)
            sides = summarize(trials)
            out.append(HistoryPoint(s, sides, asymmetry(sides, athlete=geo), tuple(trials)))
    return out


def series(points: list[HistoryPoint], side: str) -> list[tuple[HistoryPoint, float]]:
    """(session, best scored angle) for the sessions where ``side`` has one."""
    return [(p, p.sides[side].best_valid_deg) for p in points
            if p.sides[side].best_valid_deg is not None]


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        return SPARK[3] * len(values)
    return "".join(SPARK[round((v - lo) / (hi - lo) * (len(SPARK) - 1))] for v in values)


def _deg(v: float | None, width: int = 7) -> str:
    return f"{'—':>{width}}" if v is None else f"{v:{width}.2f}°"


def format_history(athlete: str | None, points: list[HistoryPoint],
                   lengths: tuple[float | None, float | None] = (None, None)) -> list[str]:
    """The terminal table and trend lines of one athlete."""
    who = athlete if athlete is not None else "(no athlete)"
    tibia_m, foot_m = lengths
    extra = ", ".join(f"{label} {v * 100:.1f} cm" for label, v in
                      (("tibia", tibia_m), ("toe–ankle", foot_m)) if v is not None)
    lines = [f"athlete {who}" + (f" ({extra})" if extra else "")
             + f": {len(points)} session{'s' if len(points) != 1 else ''}"]
    lines.append(f"  {'session':>7}  {'started (UTC)':<16}  {'kind':<8}  {'left best':>9}  "
                 f"{'right best':>10}  {'L − R':>8}  scored/trials L, R")
    unfinished = False
    for p in points:
        s = p.session
        mark = " " if s.ended else "*"
        unfinished |= not s.ended
        asym = "—" if p.asymmetry is None else f"{p.asymmetry.diff_deg:+.2f}°"
        lines.append(
            f"  {s.id:>6}{mark}  {s.start_utc[:16].replace('T', ' '):<16}  {s.kind:<8}  "
            f"{_deg(p.sides['left'].best_valid_deg, 8)}  {_deg(p.sides['right'].best_valid_deg, 9)}"
            f"  {asym:>8}  {p.sides['left'].n_scored}/{p.sides['left'].n_trials}, "
            f"{p.sides['right'].n_scored}/{p.sides['right'].n_trials}")
    for side in SIDES:
        ser = series(points, side)
        if not ser:
            lines.append(f"  trend {side:<5}: no scored trials")
            continue
        first, last = ser[0][1], ser[-1][1]
        lines.append(f"  trend {side:<5}: {sparkline([v for _, v in ser])}  {first:.2f}° → "
                     f"{last:.2f}° ({last - first:+.2f}° over {len(ser)} session"
                     f"{'s' if len(ser) != 1 else ''})")
    latest = {side: series(points, side)[-1] for side in SIDES if series(points, side)}
    if len(latest) == len(SIDES):  # sides often come from separate sessions: compare the latest
        (pl, left), (pr, right) = latest["left"], latest["right"]
        a = session_asymmetry(left, right, athlete=geometry(tibia_m, foot_m))
        when = (f"session {pl.session.id}" if pl.session.id == pr.session.id else
                f"left from session {pl.session.id}, right from session {pr.session.id}")
        lines.append(f"  latest ({when}): {a.line()}")
    for p in points:  # the single-leg squat screen: its figure is the knee track, not the angle
        squat = [t for t in p.trials if t.exercise == "single_leg_squat"
                 and t.peak_valgus_deg is not None]
        if squat:
            lines.append(f"  single-leg squat, session {p.session.id}: peak valgus " + ", ".join(
                f"{s} {max(t.peak_valgus_deg for t in squat if t.side == s):.1f}° (largest of "
                f"{sum(t.side == s for t in squat)} reps)"
                for s in SIDES if any(t.side == s for t in squat)))
    if unfinished:
        lines.append("  * not ended: the program stopped before the session finished "
                     "(crash, or still running)")
    return lines
