"""The trend per side over an athlete's sessions (for ``history`` and the report)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dorsimeter.session.asymmetry import asymmetry as session_asymmetry
from dorsimeter.session.exercise import exercise_title
from dorsimeter.store.db import SessionInfo, Store, Trial
from dorsimeter.store.summary import (
    SCORED_EXERCISE,
    Asymmetry,
    SideSummary,
    asymmetry,
    geometry,
    summarize,
)
from dorsimeter.types import SIDES

SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class HistoryPoint:
    session: SessionInfo
    sides: dict[str, SideSummary]  # the wall tests'
    asymmetry: Asymmetry | None
    exercises: dict[str, dict[str, list[Trial]]] = field(default_factory=dict)  # the others'
    done: tuple[str, ...] = ()  # the exercises stored, in the order first done
    trials: tuple = ()  # the session's stored trials (the exercises' own figures)

    @property
    def what(self) -> str:
        """What was done, in words (the command's name when nothing was counted)."""
        return " + ".join(exercise_title(e) for e in self.done) or self.session.kind


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
            others: dict[str, dict[str, list[Trial]]] = {}
            for t in trials:
                if t.exercise not in (SCORED_EXERCISE, "session_max"):
                    others.setdefault(t.exercise, {}).setdefault(t.side, []).append(t)
            done = tuple(dict.fromkeys(t.exercise for t in trials if t.exercise != "session_max"))
            out.append(HistoryPoint(s, sides, asymmetry(sides, athlete=geo), others, done,
                                    tuple(trials)))
    return out


def exercise_lines(points: list[HistoryPoint]) -> list[str]:
    """The exercises other than the wall test, apart, with their own figures per session and
    leg: reps done (per set), holds reached, end range per rep."""
    lines = []
    for p in points:
        for ex, per_side in p.exercises.items():
            for side in SIDES:
                reps = per_side.get(side)
                if not reps:
                    continue
                sets = dict.fromkeys(t.set_no for t in reps if t.set_no is not None)
                held = sum(t.hold_s is not None and t.counts for t in reps)
                ends = " ".join(f"{t.angle_deg:.1f}" for t in reps)
                lines.append(f"  {p.session.id:>6}  {exercise_title(ex):<18} {side:<5} "
                             f"{len(reps)} reps" + (f" in {len(sets)} set"
                                                    f"{'s' if len(sets) != 1 else ''}"
                                                    if sets else "")
                             + f", holds reached {held}, end range per rep {ends}°")
    return lines


def series(points: list[HistoryPoint], side: str) -> list[tuple[HistoryPoint, float]]:
    """(session, best scored angle) for the sessions where ``side`` has one."""
    return [(p, best) for p in points if (best := p.sides[side].best_valid_deg) is not None]


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
    kind_w = max([8, *(len(p.what) for p in points)])
    lines.append(f"  {'session':>7}  {'started (UTC)':<16}  {'kind':<{kind_w}}  {'left best':>9}"
                 f"  {'right best':>10}  {'L − R':>8}  wall tests scored/trials L, R")
    unfinished = False
    for p in points:
        s = p.session
        mark = " " if s.ended else "*"
        unfinished |= not s.ended
        asym = "—" if p.asymmetry is None else f"{p.asymmetry.diff_deg:+.2f}°"
        lines.append(
            f"  {s.id:>6}{mark}  {s.start_utc[:16].replace('T', ' '):<16}  {p.what:<{kind_w}}  "
            f"{_deg(p.sides['left'].best_valid_deg, 8)}  {_deg(p.sides['right'].best_valid_deg, 9)}"
            f"  {asym:>8}  {p.sides['left'].n_scored}/{p.sides['left'].n_trials}, "
            f"{p.sides['right'].n_scored}/{p.sides['right'].n_trials}")
    for side in SIDES:
        ser = series(points, side)
        if not ser:
            lines.append(f"  trend {side:<5}: no scored wall tests")
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
    other = exercise_lines(points)
    if other:
        lines.append("  other exercises (not in the wall-test trend):")
        lines += other
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
