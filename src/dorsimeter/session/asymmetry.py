"""Left/right asymmetry of the best valid angles: degrees, percent, centimetres, MDC, band."""

from __future__ import annotations

from dataclasses import dataclass

from dorsimeter.session.wall import DEG_PER_CM_RULE, AthleteGeometry, cm_by_rule

#: Minimal detectable change of the weight-bearing lunge test (Konor 2012; Powden 2015).
MDC_DEG = 4.6
#: Bands of the commercial tools, by percent of the better side.
BANDS = ((10.0, "<10 %"), (25.0, "10–25 %"), (float("inf"), ">25 %"))


def band_of(percent: float) -> str:
    """``<10 %``, ``10–25 %`` or ``>25 %``."""
    if percent < 10.0:
        return BANDS[0][1]
    return BANDS[1][1] if percent <= 25.0 else BANDS[2][1]


@dataclass(frozen=True)
class Asymmetry:
    """Difference between the sides' best valid angles.

    ``diff_deg`` is left − right; ``percent`` the absolute difference over the better side;
    ``cm`` the difference as knee-to-wall centimetres, by the geometry when the athlete's lengths
    are known (``cm_method`` ``"geometry"``), else by the 3.6°/cm rule (``"rule"``); ``cm_rule``
    is always the rule's figure. ``beyond_mdc``: the difference exceeds ``mdc_deg``."""

    left_deg: float
    right_deg: float
    diff_deg: float
    percent: float
    band: str
    cm: float
    cm_method: str
    cm_rule: float
    mdc_deg: float
    beyond_mdc: bool

    @property
    def weaker_side(self) -> str | None:
        if self.diff_deg == 0:
            return None
        return "right" if self.diff_deg > 0 else "left"

    def line(self) -> str:
        flag = (f"beyond the MDC of {self.mdc_deg:.1f}°" if self.beyond_mdc
                else f"within the MDC of {self.mdc_deg:.1f}°")
        how = "by the athlete's lengths" if self.cm_method == "geometry" else "at 3.6° per cm"
        return (f"left − right: {self.diff_deg:+.1f}° ({self.percent:.1f} % of the better side, "
                f"band {self.band}; {self.cm:.1f} cm at the wall {how}), {flag}")


def asymmetry(left_deg: float, right_deg: float, mdc_deg: float = MDC_DEG,
              athlete: AthleteGeometry | None = None,
              deg_per_cm: float = DEG_PER_CM_RULE) -> Asymmetry:
    """The asymmetry of two per-side best angles."""
    diff = left_deg - right_deg
    better = max(abs(left_deg), abs(right_deg))
    pct = 100.0 * abs(diff) / better if better > 0 else 0.0
    rule = cm_by_rule(abs(diff), deg_per_cm)
    if athlete is not None:
        cm, method = abs(athlete.cm_between(left_deg, right_deg)), "geometry"
    else:
        cm, method = rule, "rule"
    return Asymmetry(left_deg, right_deg, diff, pct, band_of(pct), cm, method, rule, mdc_deg,
                     abs(diff) > mdc_deg)
