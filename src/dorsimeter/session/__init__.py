"""The session: reps, holds, trials and per-side results a coach reads."""

from dorsimeter.session.asymmetry import MDC_DEG, Asymmetry, asymmetry, band_of
from dorsimeter.session.results import SessionResults, SessionSettings, SideResults
from dorsimeter.session.wall import DEG_PER_CM_RULE, HAND_WIDTH_M, AthleteGeometry, cm_by_rule

__all__ = ["DEG_PER_CM_RULE", "HAND_WIDTH_M", "MDC_DEG", "Asymmetry", "AthleteGeometry",
           "SessionResults", "SessionSettings", "SideResults", "asymmetry", "band_of",
           "cm_by_rule"]
