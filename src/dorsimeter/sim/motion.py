"""Scripted joint-angle profiles and movement scripts with per-rep ground truth.

A profile is a chain of segments; each moves a scalar from ``a0`` to ``a1`` in ``dur_s`` with the
minimum-jerk shape, so angle, rate and angular acceleration are continuous and known analytically.
That is what lets the simulator produce a gyroscope and accelerometer that agree exactly.

A :class:`Motion` keeps three profiles in step — tibia flexion (knee forward), valgus (knee toward
the midline) and foot pitch (heel up, rotation about the metatarsal heads) — and the list of
:class:`SimRep` it scripted, which is the ground truth the session and detectors are tested on.
Scripts: ``wall`` (knee-to-wall drives), ``lunge`` (reverse lunges, front shin), ``mobilisation``
(band ankle mobilisation, 2 s holds), ``squat`` (single-leg squats with valgus).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

#: A rep whose heel rose this high (at the heel) is invalid: the drive is not scored.
LIFT_INVALID_M = 0.010


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

    def hold_until(self, t_s: float) -> Profile:
        """Hold the current value until ``t_s`` (nothing when already there)."""
        if t_s > self.end_s + 1e-12:
            self.hold(t_s - self.end_s)
        return self

    def cut(self, now_s: float) -> None:
        """Drop everything scripted after ``now_s``; the value stays where it was at ``now_s``."""
        x, _, _ = self.evaluate(np.array([now_s]))
        keep = [i for i, t0 in enumerate(self._t0) if t0 < now_s]
        self._t0, self._dur = [self._t0[i] for i in keep], [self._dur[i] for i in keep]
        self._a0, self._a1 = [self._a0[i] for i in keep], [self._a1[i] for i in keep]
        if self._t0:
            self._dur[-1] = now_s - self._t0[-1]
            self._a1[-1] = float(x[0])
        else:
            self.t_start_s = now_s
        self.value = float(x[0])

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


@dataclass
class SimRep:
    """Ground truth of one scripted rep (times are device seconds).

    ``t_start_s`` movement starts; ``t_hold_s`` end range reached; ``t_return_s`` the hold ends;
    ``t_end_s`` back at rest. ``lift_m`` is the peak heel height (0 = heel stayed down);
    ``index`` is -1 for calibration drives, which are not reps."""

    index: int
    kind: str
    side: str
    set_index: int
    t_start_s: float
    t_hold_s: float
    t_return_s: float
    t_end_s: float
    end_angle_deg: float
    valgus_deg: float = 0.0
    lift_m: float = 0.0
    lift_start_s: float | None = None
    lift_end_s: float | None = None

    @property
    def valid(self) -> bool:
        """Heel down throughout (no lift of ``LIFT_INVALID_M`` or more)."""
        return self.lift_m < LIFT_INVALID_M

    @property
    def hold_s(self) -> float:
        return self.t_return_s - self.t_hold_s


@dataclass
class Motion:
    """Flexion, valgus and foot-pitch profiles kept in step, plus the reps scripted so far."""

    flexion: Profile = field(default_factory=Profile)
    valgus: Profile = field(default_factory=Profile)
    foot: Profile = field(default_factory=Profile)
    reps: list[SimRep] = field(default_factory=list)
    heel_to_mth_m: float = 0.19  # heel contact point to the metatarsal heads (foot pitch pivot)

    @property
    def profiles(self) -> tuple[Profile, Profile, Profile]:
        return self.flexion, self.valgus, self.foot

    @property
    def end_s(self) -> float:
        return self.flexion.end_s

    def hold(self, dur_s: float) -> None:
        for p in self.profiles:
            p.hold(dur_s)

    def next_index(self) -> int:
        return 1 + max((r.index for r in self.reps), default=-1)

    def cut(self, now_s: float) -> None:
        """Forget what was scripted after ``now_s`` (a rep under way ends there)."""
        for p in self.profiles:
            p.cut(now_s)
        self.reps = [r for r in self.reps if r.t_start_s < now_s]
        for r in self.reps:
            if r.t_end_s > now_s:
                r.t_end_s = now_s
                r.t_return_s = min(r.t_return_s, now_s)
                r.t_hold_s = min(r.t_hold_s, now_s)

    def foot_pitch_rad(self, lift_m: float) -> float:
        """Foot pitch about the metatarsal heads that raises the heel by ``lift_m``."""
        return float(np.arcsin(np.clip(lift_m / self.heel_to_mth_m, 0.0, 0.9)))

    def append_rep(self, spec: DriveSpec, kind: str, side: str, set_index: int = 0,
                   lift_m: float = 0.0, lift_delay_s: float = 0.0, lift_move_s: float = 0.35,
                   counted: bool = True) -> SimRep:
        """Append one rep to all profiles; a heel lift rises ``lift_delay_s`` after end range.

        The lift rises over ``lift_move_s``, stays up and comes down before the return ends.
        """
        t0 = self.end_s
        rep = SimRep(self.next_index() if counted else -1, kind, side, set_index, t0,
                     t0 + spec.up_s, t0 + spec.up_s + spec.hold_s,
                     t0 + spec.up_s + spec.hold_s + spec.down_s, spec.end_angle_deg,
                     spec.valgus_deg)
        append_drive(self.flexion, self.valgus, spec)
        if lift_m > 0.0:
            lo = rep.t_hold_s + lift_delay_s
            down_at = max(lo + lift_move_s, rep.t_return_s + 0.3 * spec.down_s - lift_move_s)
            self.foot.hold_until(lo)
            self.foot.move(self.foot_pitch_rad(lift_m), lift_move_s)
            self.foot.hold_until(down_at)
            self.foot.move(0.0, lift_move_s)
            rep.lift_m, rep.lift_start_s, rep.lift_end_s = lift_m, lo, down_at + lift_move_s
        self.foot.hold_until(self.end_s)
        self.reps.append(rep)
        return rep


def append_drive(flexion: Profile, valgus: Profile, spec: DriveSpec) -> None:
    """Append one drive to both profiles, kept in step."""
    flexion.move(np.radians(spec.end_angle_deg), spec.up_s)
    valgus.move(np.radians(spec.valgus_deg), spec.up_s)
    for p in (flexion, valgus):
        p.hold(spec.hold_s)
        p.move(0.0, spec.down_s)
        p.hold(spec.rest_s)


@dataclass(frozen=True)
class ScriptSpec:
    """A movement script: still stance, calibration drives, then ``sets`` × ``reps`` reps.

    ``sets`` and ``reps`` are inclusive ranges drawn per session (a seed fixes them). Angles are
    relative to the side's end angle. Heel lifts: each rep lifts with ``lift_prob``, to a height
    drawn uniformly from ``lift_range_m`` (or the heights in ``lifts_m``, cycled, when given)."""

    kind: str = "wall"
    sets: tuple[int, int] = (1, 1)
    reps: tuple[int, int] = (6, 6)
    up_s: float = 1.5
    hold_s: float = 2.0
    down_s: float = 1.5
    rest_s: float = 1.5
    set_rest_s: float = 10.0
    angle_offset_deg: float = 0.0
    angle_sd_deg: float = 1.5
    valgus_mean_deg: float = 2.0
    valgus_sd_deg: float = 1.0
    lift_prob: float = 0.0
    lift_range_m: tuple[float, float] = (0.012, 0.030)
    lifts_m: tuple[float, ...] = ()
    stance_s: float = 3.0
    calibration_drives: int = 3

    def with_(self, **changes) -> ScriptSpec:
        return replace(self, **changes)


SCRIPTS: dict[str, ScriptSpec] = {
    "wall": ScriptSpec(),
    "lunge": ScriptSpec("lunge", sets=(2, 3), reps=(4, 6), up_s=1.0, hold_s=1.2, down_s=1.0,
                        rest_s=1.2, angle_offset_deg=-6.0, angle_sd_deg=2.0, valgus_mean_deg=1.0,
                        valgus_sd_deg=1.5),
    "mobilisation": ScriptSpec("mobilisation", sets=(1, 1), reps=(10, 10), up_s=1.0, hold_s=2.0,
                               down_s=1.0, rest_s=1.0, angle_offset_deg=2.0, angle_sd_deg=1.0),
    "squat": ScriptSpec("squat", sets=(1, 1), reps=(5, 5), up_s=1.5, hold_s=0.6, down_s=1.5,
                        rest_s=1.5, angle_offset_deg=-10.0, angle_sd_deg=2.0,
                        valgus_mean_deg=8.0, valgus_sd_deg=2.0),
}


def script_spec(script: str | ScriptSpec) -> ScriptSpec:
    """The spec for a script name (``wall``, ``lunge``, ``mobilisation``, ``squat``) or a spec."""
    if isinstance(script, ScriptSpec):
        return script
    try:
        return SCRIPTS[script]
    except KeyError:
        raise ValueError(f"unknown script {script!r}; expected one of {sorted(SCRIPTS)}") from None


class ScriptRunner:
    """Appends a script's reps to a Motion and keeps going after the script ends."""

    def __init__(self, spec: ScriptSpec, motion: Motion, rng: np.random.Generator,
                 lift_rng: np.random.Generator, side: str, end_angle_deg: float,
                 valgus_deg: float | None = None) -> None:
        self.spec, self.motion, self.rng, self.lift_rng = spec, motion, rng, lift_rng
        self.side, self.end_angle_deg = side, end_angle_deg
        self.valgus_mean_deg = spec.valgus_mean_deg if valgus_deg is None else valgus_deg
        self._n_lift = 0
        self._set = 0

    def _lift(self) -> tuple[float, float, float]:
        s, r = self.spec, self.lift_rng
        if s.lifts_m:
            h = s.lifts_m[self._n_lift % len(s.lifts_m)]
            self._n_lift += 1
        else:
            h = r.uniform(*s.lift_range_m) if r.random() < s.lift_prob else 0.0
        return float(h), float(r.uniform(0.0, 0.4 * s.hold_s)), float(r.uniform(0.25, 0.5))

    def _rep(self, set_index: int) -> None:
        s, rng = self.spec, self.rng
        if s.kind == "wall":  # the original stream: same random draws as before
            angle = self.end_angle_deg + float(np.clip(rng.normal(0, s.angle_sd_deg), -3, 3))
            spec = DriveSpec(angle, s.up_s, s.hold_s, s.down_s, s.rest_s)
            spec.valgus_deg = float(rng.normal(self.valgus_mean_deg, s.valgus_sd_deg))
        else:
            angle = (self.end_angle_deg + s.angle_offset_deg
                     + float(np.clip(rng.normal(0, s.angle_sd_deg), -4, 4)))
            spec = DriveSpec(angle, s.up_s, s.hold_s, s.down_s, s.rest_s,
                             float(rng.normal(self.valgus_mean_deg, s.valgus_sd_deg)))
        h, delay, move = self._lift()
        self.motion.append_rep(spec, s.kind, self.side, set_index, h, delay, move)

    def start(self) -> None:
        """Stance, calibration drives and the scripted sets."""
        s, rng = self.spec, self.rng
        self.motion.hold(s.stance_s)
        if s.kind == "wall":  # the original wall-test stream
            cal = [DriveSpec(0.6 * self.end_angle_deg + rng.normal(0, 2), 1.0, 0.3, 1.0, 0.8)
                   for _ in range(s.calibration_drives)]
            specs = [self.end_angle_deg + float(np.clip(rng.normal(0, 1.5), -3, 3))
                     for _ in range(s.reps[0])]
            for spec in cal:
                spec.valgus_deg = float(rng.normal(0.0, 0.7))
                self.motion.append_rep(spec, "calibration", self.side, counted=False)
            for angle in specs:
                spec = DriveSpec(angle, s.up_s, s.hold_s, s.down_s, s.rest_s,
                                 float(rng.normal(self.valgus_mean_deg, s.valgus_sd_deg)))
                h, delay, move = self._lift()
                self.motion.append_rep(spec, "wall", self.side, 0, h, delay, move)
            return
        for _ in range(s.calibration_drives):
            spec = DriveSpec(0.6 * self.end_angle_deg + rng.normal(0, 2), 1.0, 0.3, 1.0, 0.8,
                             float(rng.normal(0.0, 0.7)))
            self.motion.append_rep(spec, "calibration", self.side, counted=False)
        self.motion.hold(2.0)
        n_sets = int(rng.integers(s.sets[0], s.sets[1] + 1))
        for k in range(n_sets):
            if k:
                self.motion.hold(s.set_rest_s)
            for _ in range(int(rng.integers(s.reps[0], s.reps[1] + 1))):
                self._rep(k)
        self._set = n_sets

    def extend(self, until_s: float) -> None:
        """More reps (a new set after a rest) until the script reaches ``until_s``."""
        while self.motion.end_s < until_s:
            if self.spec.kind != "wall":
                self.motion.hold(self.spec.set_rest_s)
                for _ in range(self.spec.reps[1]):
                    self._rep(self._set)
                self._set += 1
            else:
                self._rep(0)


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
    ``end_angle_deg`` ± 1.5° with a 2 s hold. (Profiles only; :class:`ScriptRunner` also keeps
    the foot and the rep ground truth.)
    """
    m = Motion(flexion, valgus)
    spec = ScriptSpec(stance_s=stance_s, calibration_drives=calibration_drives,
                      reps=(test_drives, test_drives))
    ScriptRunner(spec, m, rng, np.random.default_rng(0), "left", end_angle_deg).start()
