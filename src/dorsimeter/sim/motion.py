"""Scripted joint-angle profiles: smooth (minimum-jerk) moves between keyframes.

A profile is a chain of segments; each moves a scalar from ``a0`` to ``a1`` in ``dur_s`` with the
minimum-jerk shape, so angle, rate and angular acceleration are continuous and known analytically.
That is what lets the simulator produce a gyroscope and accelerometer that agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Profile:
    """A scalar (an angle in rad) as a chain of minimum-jerk segments starting at ``t_start_s``."""

    t_start_s: float = 0.0
    value: float = 0.0
    _t0: list[float] = field(default_factory=list)
    _dur: list[float] = field(default_factory=list)
    _a0: list[float] = field(default_factory=list)
    _a1: list[float] = field(default_factory=list)

    @property
    def end_s(self) -> float:
        return self._t0[-1] + self._dur[-1] if self._t0 else self.t_start_s

    def move(self, to: float, dur_s: float) -> Profile:
        """Append a move to ``to`` over ``dur_s`` (a hold when ``to`` is the current value)."""
        self._t0.append(self.end_s)
        self._dur.append(float(dur_s))
        self._a0.append(self.value)
        self._a1.append(float(to))
        self.value = float(to)
        return self

    def hold(self, dur_s: float) -> Profile:
        return self.move(self.value, dur_s)

    def evaluate(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Value, first and second time derivative at ``t_s`` (held constant outside the chain)."""
        t_s = np.asarray(t_s, dtype=float)
        if not self._t0:
            z = np.zeros_like(t_s)
            return z + self.value, z, z.copy()
        t0, dur = np.asarray(self._t0), np.asarray(self._dur)
        a0, a1 = np.asarray(self._a0), np.asarray(self._a1)
        i = np.clip(np.searchsorted(t0, t_s, side="right") - 1, 0, len(t0) - 1)
        tau = np.clip((t_s - t0[i]) / dur[i], 0.0, 1.0)
        inside = (t_s >= t0[i]) & (t_s <= t0[i] + dur[i])
        d = a1[i] - a0[i]
        s = tau**3 * (10 - 15 * tau + 6 * tau**2)
        ds = 30 * tau**2 * (1 - tau) ** 2 / dur[i]
        dds = 60 * tau * (1 - tau) * (1 - 2 * tau) / dur[i] ** 2
        before = t_s < t0[0]
        x = np.where(before, a0[0], a0[i] + d * s)
        return x, np.where(inside, d * ds, 0.0), np.where(inside, d * dds, 0.0)


@dataclass
class DriveSpec:
    """One knee-to-wall drive: up to the end angle, hold, return, rest."""

    end_angle_deg: float
    up_s: float = 1.5
    hold_s: float = 2.0
    down_s: float = 1.5
    rest_s: float = 1.5
    valgus_deg: float = 0.0


def knee_to_wall_session(
    flexion: Profile,
    valgus: Profile,
    rng: np.random.Generator,
    end_angle_deg: float,
    stance_s: float = 3.0,
    calibration_drives: int = 3,
    test_drives: int = 6,
) -> None:
    """Append a wall-test session for one side: still stance, calibration drives, scored drives.

    The calibration drives are quicker and shallower (≈ 60 % of end range); the test drives reach
    ``end_angle_deg`` ± 1.5° with a 2 s hold.
    """
    for p in (flexion, valgus):
        p.hold(stance_s)
    specs = [
        DriveSpec(0.6 * end_angle_deg + rng.normal(0, 2), 1.0, 0.3, 1.0, 0.8)
        for _ in range(calibration_drives)
    ] + [
        DriveSpec(end_angle_deg + float(np.clip(rng.normal(0, 1.5), -3, 3)))
        for _ in range(test_drives)
    ]
    for k, spec in enumerate(specs):
        # calibration drives follow the cue "straight forward": the knee wobbles either way;
        # scored drives drift toward the midline a little, as real knees do
        spec.valgus_deg = float(rng.normal(0.0, 0.7) if k < calibration_drives
                                else rng.normal(2.0, 1.0))
        append_drive(flexion, valgus, spec)


def append_drive(flexion: Profile, valgus: Profile, spec: DriveSpec) -> None:
    """Append one drive to both profiles, kept in step."""
    flexion.move(np.radians(spec.end_angle_deg), spec.up_s)
    valgus.move(np.radians(spec.valgus_deg), spec.up_s)
    for p in (flexion, valgus):
        p.hold(spec.hold_s)
        p.move(0.0, spec.down_s)
        p.hold(spec.rest_s)
