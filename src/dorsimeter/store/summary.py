"""Per-side results and asymmetry computed from stored trials (pure; shared by history/report).

The scored trials are the wall-test ones the session logic scored (held at end range, heel
down); a trial marked invalid (heel lifted) is kept but not scored. Where the session logic did
not decide (``scored`` None, e.g. a per-side maximum), a trial counts unless its heel lifted.
Figures from DESIGN.md: the minimal detectable change 4.6°, ≈ 3.6° per cm knee-to-wall (Bennell
1998), asymmetry bands < 10 %, 10–25 %, > 25 % of the better side.
"""

from __future__ import annotations

from dataclasses import dataclass

from dorsimeter.store.db import Trial
from dorsimeter.types import SIDES

MDC_DEG = 4.6
DEG_PER_CM = 3.6
SCORED_EXERCISE = "wall_test"


@dataclass(frozen=True)
class SideSummary:
    side: str
    best_valid_deg: float | None
    mean_best3_deg: float | None  # mean of up to three best scored trials
    n_trials: int
    n_scored: int
    n_valid: int  # heel checked and down
    n_invalid: int  # heel lifted
    best_trial: Trial | None


@dataclass(frozen=True)
class Asymmetry:
    left_minus_right_deg: float
    percent: float | None  # |L − R| / better side × 100
    band: str | None  # "< 10 %", "10–25 %", "> 25 %"
    beyond_mdc: bool
    knee_to_wall_cm: float  # |L − R| by the 3.6°/cm rule

    @property
    def weaker_side(self) -> str | None:
        d = self.left_minus_right_deg
        return None if d == 0 else ("right" if d > 0 else "left")


def summarize(trials: list[Trial]) -> dict[str, SideSummary]:
    """Per side: best scored angle, mean of the best three, counts."""
    out = {}
    for side in SIDES:
        mine = [t for t in trials if t.side == side and t.exercise == SCORED_EXERCISE]
        scored = sorted((t for t in mine if t.counts),
                        key=lambda t: t.angle_deg, reverse=True)
        best3 = [t.angle_deg for t in scored[:3]]
        out[side] = SideSummary(
            side, scored[0].angle_deg if scored else None,
            sum(best3) / len(best3) if best3 else None,
            len(mine), len(scored), sum(t.valid is True for t in mine),
            sum(t.valid is False for t in mine),
            scored[0] if scored else None)
    return out


def band(percent: float) -> str:
    return "< 10 %" if percent < 10 else ("10–25 %" if percent <= 25 else "> 25 %")


def asymmetry(sides: dict[str, SideSummary], mdc_deg: float = MDC_DEG) -> Asymmetry | None:
    """Left − right of the best scored angles; None unless both sides have one."""
    left, right = sides["left"].best_valid_deg, sides["right"].best_valid_deg
    if left is None or right is None:
        return None
    d = left - right
    better = max(left, right)
    pct = abs(d) / better * 100 if better > 0 else None
    return Asymmetry(d, pct, None if pct is None else band(pct), abs(d) > mdc_deg,
                     abs(d) / DEG_PER_CM)
