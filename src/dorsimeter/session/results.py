"""Per-side results of a session: reps and holds, best valid angle, asymmetry, the wall.

:class:`SessionResults` takes the pipeline's readings (``add``) and segments them into reps
per side with the same :class:`~dorsimeter.detect.RepTracker` the pipeline uses (so a session
built from a recorded readings file gives the same reps). A rep is *scored* when it held its end
range for ``hold_s`` with the heel down; a rep with a heel lift is kept but invalid.

Trials: by default every rep (drive) is a trial on its own (``auto_trials``; the ``trials``
count includes quick movements without a hold, such as the calibration drives).
``SideResults.trials`` and ``trial_records()`` list only the real attempts: reps that held their
end range or lifted the heel. ``start_trial``
switches to manual trials (the override): reps count only between ``start_trial`` and
``stop_trial``; ``set_auto_trials(True)`` goes back. ``max_deg`` is the running maximum of the
tibia angle while a trial is active, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dorsimeter.detect.heel import SPOKEN
from dorsimeter.detect.reps import RepRecord, RepTracker
from dorsimeter.session.asymmetry import MDC_DEG, Asymmetry, asymmetry
from dorsimeter.session.wall import HAND_WIDTH_M, AthleteGeometry
from dorsimeter.types import SIDES, Readings


@dataclass
class SessionSettings:
    """What a coach may configure (defaults from the literature / protocol)."""

    hold_s: float = 1.0  # end-range hold that scores a drive
    mdc_deg: float = MDC_DEG  # asymmetry beyond this is flagged
    best_of: int = 3  # "mean of the best three"
    wall_m: float = HAND_WIDTH_M  # the wall in front of the toes (a hand width)
    rep_start_deg: float = 8.0
    rep_end_deg: float = 4.0
    drift_alert_deg: float = 5.0


@dataclass
class SideResults:
    """One side's reps and the figures a coach reads from them."""

    side: str
    reps: list[RepRecord] = field(default_factory=list)

    @property
    def trials(self) -> list[RepRecord]:
        """Reps that were test attempts: held at end range, or invalidated by a heel lift.
        (Quick movements without a hold — the calibration drives — are not trials.)"""
        return [r for r in self.reps if r.is_trial]

    @property
    def scored(self) -> list[RepRecord]:
        """Reps held at end range with the heel down."""
        return [r for r in self.reps if r.scored]

    @property
    def invalid(self) -> list[RepRecord]:
        """Reps with a heel lift (kept, not scored)."""
        return [r for r in self.reps if not r.valid]

    @property
    def scores_deg(self) -> list[float]:
        return [r.end_range_deg for r in self.scored]

    @property
    def best_valid_deg(self) -> float | None:
        s = self.scores_deg
        return max(s) if s else None

    def mean_best_deg(self, n: int = 3) -> float | None:
        """Mean of the best ``n`` scores (of all there are, when fewer)."""
        s = sorted(self.scores_deg, reverse=True)[:n]
        return float(np.mean(s)) if s else None

    @property
    def peak_valgus_deg(self) -> float | None:
        """Largest knee track toward the midline over all reps (the squat screen's figure)."""
        v = [r.peak_valgus_deg for r in self.reps if np.isfinite(r.peak_valgus_deg)]
        return max(v) if v else None

    @property
    def drift_alerts(self) -> int:
        return sum(r.knee_drift_alert for r in self.reps)


@dataclass
class SessionResults:
    """Collects readings into per-side reps and results (see the module docstring)."""

    trial_active: bool = True
    max_deg: dict[str, float] = field(default_factory=dict)
    trials: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIDES, 0))
    last_angle_deg: float | None = None
    last_side: str | None = None
    settings: SessionSettings = field(default_factory=SessionSettings)
    athlete: AthleteGeometry | None = None
    rate_hz: float = 100.0
    auto_trials: bool = True
    sides: dict[str, SideResults] = field(
        default_factory=lambda: {s: SideResults(s) for s in SIDES})
    heel_source: dict[str, str] = field(default_factory=dict)  # last source used per side

    def __post_init__(self) -> None:
        self._trackers: dict[str, RepTracker] = {}

    # -- trials ---------------------------------------------------------------------------------
    def start_trial(self, side: str) -> None:
        """Manual override: a trial starts now; reps count only inside manual trials."""
        self.auto_trials = False
        self.trial_active = True
        self.trials[side] = self.trials.get(side, 0) + 1

    def stop_trial(self) -> None:
        self.trial_active = False

    def set_auto_trials(self, on: bool = True) -> None:
        """Every rep is a trial of its own (the default); ``False`` keeps manual trials."""
        self.auto_trials = on
        if on:
            self.trial_active = True

    # -- data in --------------------------------------------------------------------------------
    def _tracker(self, side: str) -> RepTracker:
        if side not in self._trackers:
            s = self.settings
            self._trackers[side] = RepTracker(self.rate_hz, s.rep_start_deg, s.rep_end_deg,
                                              s.hold_s, drift_alert_deg=s.drift_alert_deg)
        return self._trackers[side]

    def add(self, r: Readings) -> list[RepRecord]:
        """Take the next readings; returns the reps they completed."""
        if len(r) == 0:
            return []
        self.last_angle_deg = float(r.tibia_angle_deg[-1])
        self.last_side = str(r.side[-1])
        done: list[RepRecord] = []
        sides = np.asarray(r.side)
        for side in dict.fromkeys(sides.tolist()):
            m = sides == side
            src = str(r.heel_source[m][-1])
            self.heel_source[side] = src
            _, _, reps, _ = self._tracker(side).update(
                r.t_s[m], r.tibia_angle_deg[m], r.knee_track_deg[m], r.heel_lift[m], side, src)
            if self.trial_active:
                mx = float(np.max(r.tibia_angle_deg[m]))
                if side not in self.max_deg or mx > self.max_deg[side]:
                    self.max_deg[side] = mx
                if self.trials.get(side, 0) == 0 and not self.auto_trials:
                    self.trials[side] = 1
                for rep in reps:
                    self.sides.setdefault(side, SideResults(side)).reps.append(rep)
                    if self.auto_trials:  # every movement counts (the UI shows this)
                        self.trials[side] = self.trials.get(side, 0) + 1
                done += reps
        return done

    # -- results --------------------------------------------------------------------------------
    @property
    def best_valid_deg(self) -> dict[str, float]:
        """Best scored (held, heel-down) angle per side that has one."""
        return {s: v.best_valid_deg for s, v in self.sides.items()
                if v.best_valid_deg is not None}

    @property
    def mean_best3_deg(self) -> dict[str, float]:
        """Mean of the best three (``settings.best_of``) scores per side."""
        out = {s: v.mean_best_deg(self.settings.best_of) for s, v in self.sides.items()}
        return {s: m for s, m in out.items() if m is not None}

    @property
    def peak_valgus_deg(self) -> dict[str, float]:
        """Single-leg squat screen: peak knee track toward the midline per side."""
        out = {s: v.peak_valgus_deg for s, v in self.sides.items()}
        return {s: m for s, m in out.items() if m is not None}

    @property
    def asymmetry(self) -> Asymmetry | None:
        """Left/right asymmetry of the best valid angles (None until both sides scored)."""
        b = self.best_valid_deg
        if not all(s in b for s in SIDES):
            return None
        return asymmetry(b["left"], b["right"], self.settings.mdc_deg, self.athlete)

    def wall(self, side: str) -> dict | None:
        """The hand-width wall for ``side``'s best valid angle (needs the athlete's lengths):
        ``reaches``, ``knee_to_wall_cm`` (≤ 0: reaches), ``toe_to_wall_cm`` (the test score),
        ``angle_to_reach_deg``."""
        best = self.best_valid_deg.get(side)
        if best is None or self.athlete is None:
            return None
        a, w = self.athlete, self.settings.wall_m
        return {"wall_cm": 100 * w, "reaches": a.reaches(best, w),
                "knee_to_wall_cm": 100 * a.knee_to_wall_m(best, w),
                "toe_to_wall_cm": 100 * a.toe_to_wall_m(best),
                "angle_to_reach_deg": a.angle_to_reach_deg(w)}

    def trial_records(self) -> list[dict]:
        """Every trial (held or heel-lift rep) as a plain record (for the store and exports)."""
        return [{"side": r.side, "angle_deg": r.end_range_deg, "valid": r.valid,
                 "heel_source": r.heel_source, "t_start_s": r.t_start_s, "t_end_s": r.t_end_s,
                 "rep": r.index + 1, "exercise": r.exercise or "wall_test", "set_no": r.set_no,
                 "hold_s": r.hold_s, "scored": r.scored, "peak_deg": r.peak_deg,
                 "peak_valgus_deg": r.peak_valgus_deg}
                for s in SIDES for r in self.sides[s].trials]

    def summary_lines(self) -> list[str]:
        """Lines for the terminal: per side maximum, best valid, mean of best three, reps;
        then asymmetry and the wall."""
        out = []
        for side in SIDES:
            m = self.max_deg.get(side)
            line = f"{side:>5}: max tibia angle " + ("—" if m is None else f"{m:.2f}°")
            v = self.sides[side]
            if v.reps:
                best, mean3 = v.best_valid_deg, v.mean_best_deg(self.settings.best_of)
                line += (f", best valid {'—' if best is None else f'{best:.1f}°'}"
                         f", mean of best {self.settings.best_of} "
                         f"{'—' if mean3 is None else f'{mean3:.1f}°'}"
                         f", attempts {len(v.trials)} ({len(v.scored)} scored, "
                         f"{len(v.invalid)} heel lift)"
                         f", heel: {SPOKEN.get(self.heel_source.get(side, 'none'), 'none')}")
            out.append(line)
        asym = self.asymmetry
        if asym is not None:
            out.append(asym.line())
        elif all(s in self.max_deg for s in SIDES):
            d = self.max_deg["left"] - self.max_deg["right"]
            out.append(f"left − right: {d:+.2f}°")
        for side in SIDES:
            w = self.wall(side)
            if w is not None:
                out.append(f"{side:>5}: {'reaches' if w['reaches'] else 'does not reach'} a "
                           f"{w['wall_cm']:.0f} cm wall (toe to wall {w['toe_to_wall_cm']:.1f} "
                           "cm)")
        return out
