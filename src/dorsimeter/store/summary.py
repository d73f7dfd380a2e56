"""Per-side results and asymmetry computed from stored trials (pure; shared by history/report).

The scored trials are the wall-test ones the session logic scored (held at end range, heel
down); a trial marked invalid (heel lifted) is kept but not scored. Where the session logic did
not decide (``scored`` None, e.g. a per-side maximum), a trial counts unless its heel lifted.
Asymmetry, its MDC flag, bands and centimetres are the session logic's (dorsimeter.session).
"""

from __future__ import annotations

from dataclasses import dataclass

from dorsimeter.session.asymmetry import MDC_DEG, Asymmetry
from dorsimeter.session.asymmetry import asymmetry as session_asymmetry
from dorsimeter.session.exercise import WALL_TEST
from dorsimeter.session.results import BEST_OF, score
from dorsimeter.session.wall import DEG_PER_CM_RULE, AthleteGeometry
from dorsimeter.store.db import Trial
from dorsimeter.types import SIDES

SCORED_EXERCISE = WALL_TEST


@dataclass(frozen=True)
class SideSummary:
    side: str
    best_valid_deg: float | None
    mean_best3_deg: float | None  # mean of the best ``best_of`` scored trials
    n_trials: int
    n_scored: int
    n_valid: int  # heel checked and down
    n_invalid: int  # heel lifted
    best_trial: Trial | None
    best_of: int = BEST_OF


def summarize(trials: list[Trial], best_of: int = BEST_OF) -> dict[str, SideSummary]:
    """Per side (wall tests only): best scored angle, mean of the best ``best_of``, counts, by
    the session's one scoring rule (``session.results.score``)."""
    out = {}
    for side in SIDES:
        mine = [t for t in trials if t.side == side and t.exercise == SCORED_EXERCISE]
        sc = score(((t.angle_deg, t.counts, t.valid) for t in mine), best_of)
        best = max((t for t in mine if t.counts), key=lambda t: t.angle_deg, default=None)
        out[side] = SideSummary(side, sc.best_deg, sc.mean_best_deg, sc.n_attempts,
                                sc.n_scored, sc.n_valid, sc.n_invalid, best, best_of)
    return out


def geometry(tibia_length_m: float | None, foot_length_m: float | None
             ) -> AthleteGeometry | None:
    """The athlete's lengths for the wall geometry, when both are known."""
    if tibia_length_m is None or foot_length_m is None:
        return None
    return AthleteGeometry(tibia_length_m, foot_length_m)


def asymmetry(sides: dict[str, SideSummary], mdc_deg: float = MDC_DEG,
              athlete: AthleteGeometry | None = None) -> Asymmetry | None:
    """The session logic's asymmetry of the best scored angles; None unless both sides have one.

    Centimetres by the geometry when the athlete's lengths are known, else by the 3.6°/cm rule.
    """
    left, right = sides["left"].best_valid_deg, sides["right"].best_valid_deg
    if left is None or right is None:
        return None
    return session_asymmetry(left, right, mdc_deg, athlete)


__all__ = ["DEG_PER_CM_RULE", "MDC_DEG", "Asymmetry", "AthleteGeometry", "SideSummary",
           "asymmetry", "geometry", "summarize"]
