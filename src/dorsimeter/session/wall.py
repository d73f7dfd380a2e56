"""The hand-width wall: knee-to-wall geometry from the tibia angle and the athlete's lengths.

Side view, ankle joint as the pivot (heel down)::

                  knee
                 /|
           L    / |            L  = tibia length (ankle joint to knee joint line)
               /  |            θ  = tibia angle from vertical (what we measure)
              / θ |            F  = toe-to-ankle length (ankle joint to the tip of the toes,
      ankle  •----+----•  toes |        measured along the floor)
             |<- L·sinθ ->|    |   W  = wall distance in front of the toes
             |<---- F ---->|<W>|wall

The knee is ``L·sin θ`` in front of the ankle, the wall ``F + W`` in front of it, so the knee
touches a wall ``W`` in front of the toes when ``L·sin θ ≥ F + W``. The knee-to-wall gap is
``F + W − L·sin θ`` (negative: the knee would pass the wall) and the farthest wall the knee
still reaches — the knee-to-wall test score — is ``L·sin θ − F`` from the toes. Small
approximations: the knee's front surface is ``knee_depth_m`` ahead of the tibial axis (default 0),
the ankle joint's height above the floor is ignored (it lifts the knee, not moves it forward).

Per centimetre of wall distance the geometry gives ``1 / (L·cos θ)`` rad, ≈ 1.7°/cm for a 45 cm
tibia at 40°; the literature's empirical figure is ≈ 3.6°/cm (Bennell 1998), which also folds in
how people's knees and feet move in the test. We say which one was used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Empirical tibia-angle change per centimetre of knee-to-wall distance (Bennell 1998).
DEG_PER_CM_RULE = 3.6
#: A hand-width wall distance (8–10 cm) in front of the toes.
HAND_WIDTH_M = 0.09


@dataclass(frozen=True)
class AthleteGeometry:
    """The athlete's lengths, entered once: tibia (ankle to knee joint line) and toe to ankle."""

    tibia_length_m: float
    toe_to_ankle_m: float
    knee_depth_m: float = 0.0

    @property
    def foot_length_m(self) -> float:
        """Alias of ``toe_to_ankle_m`` (what the UI calls it)."""
        return self.toe_to_ankle_m

    def knee_forward_m(self, angle_deg: float) -> float:
        """How far the front of the knee is in front of the ankle joint."""
        return self.tibia_length_m * math.sin(math.radians(angle_deg)) + self.knee_depth_m

    def toe_to_wall_m(self, angle_deg: float) -> float:
        """The farthest wall (from the toes) the knee reaches at ``angle_deg``: the test score."""
        return self.knee_forward_m(angle_deg) - self.toe_to_ankle_m

    def knee_to_wall_m(self, angle_deg: float, wall_m: float = HAND_WIDTH_M) -> float:
        """Gap between knee and a wall ``wall_m`` in front of the toes (≤ 0: the knee reaches)."""
        return wall_m - self.toe_to_wall_m(angle_deg)

    def reaches(self, angle_deg: float, wall_m: float = HAND_WIDTH_M) -> bool:
        """Would the knee touch a wall ``wall_m`` in front of the toes at ``angle_deg``?"""
        return self.knee_to_wall_m(angle_deg, wall_m) <= 0.0

    def angle_to_reach_deg(self, wall_m: float = HAND_WIDTH_M) -> float | None:
        """The tibia angle at which the knee touches the wall (None: out of reach)."""
        s = (self.toe_to_ankle_m + wall_m - self.knee_depth_m) / self.tibia_length_m
        return math.degrees(math.asin(s)) if -1.0 < s < 1.0 else None

    def deg_per_cm(self, angle_deg: float) -> float:
        """Geometric tibia-angle change per cm of toe-to-wall distance at ``angle_deg``."""
        return math.degrees(0.01 / (self.tibia_length_m * math.cos(math.radians(angle_deg))))

    def cm_between(self, angle_a_deg: float, angle_b_deg: float) -> float:
        """Toe-to-wall difference (cm) between two angles, by the geometry."""
        return 100.0 * (self.knee_forward_m(angle_a_deg) - self.knee_forward_m(angle_b_deg))

    def to_dict(self) -> dict:
        return {"tibia_length_m": self.tibia_length_m, "toe_to_ankle_m": self.toe_to_ankle_m,
                "knee_depth_m": self.knee_depth_m}


def cm_by_rule(angle_diff_deg: float, deg_per_cm: float = DEG_PER_CM_RULE) -> float:
    """Knee-to-wall centimetres for an angle difference by the ≈ 3.6°/cm rule."""
    return angle_diff_deg / deg_per_cm
