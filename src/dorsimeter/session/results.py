"""Per-side results of a session: the maximum tibia angle reached during trials."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dorsimeter.types import SIDES, Readings


@dataclass
class SessionResults:
    """Collects readings; readings count toward a side's maximum while a trial is running."""

    trial_active: bool = True
    max_deg: dict[str, float] = field(default_factory=dict)
    trials: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIDES, 0))
    last_angle_deg: float | None = None
    last_side: str | None = None

    def start_trial(self, side: str) -> None:
        self.trial_active = True
        self.trials[side] = self.trials.get(side, 0) + 1

    def stop_trial(self) -> None:
        self.trial_active = False

    def add(self, r: Readings) -> None:
        if len(r) == 0:
            return
        self.last_angle_deg = float(r.tibia_angle_deg[-1])
        self.last_side = str(r.side[-1])
        if not self.trial_active:
            return
        for side in np.unique(r.side):
            m = float(np.max(r.tibia_angle_deg[r.side == side]))
            if side not in self.max_deg or m > self.max_deg[side]:
                self.max_deg[side] = m
            if self.trials.get(side, 0) == 0:
                self.trials[side] = 1

    def summary_lines(self) -> list[str]:
        """One line per side, for the terminal."""
        out = []
        for side in SIDES:
            m = self.max_deg.get(side)
            out.append(f"{side:>5}: max tibia angle "
                       + ("—" if m is None else f"{m:.2f}°"))
        if all(s in self.max_deg for s in SIDES):
            d = self.max_deg["left"] - self.max_deg["right"]
            out.append(f"left − right: {d:+.2f}°")
        return out
