"""What real shins add to the ideal rig: postural sway, an oblique ankle, tibial rotation,
soft-tissue wobble of the clip and an uncalibrated consumer sensor.

:class:`ShinEffects` holds one switch per effect and the published range each effect's
parameters are drawn from; :meth:`ShinEffects.draw` turns it into one simulated athlete's
:class:`ShinParams` (fixed by a seed). Every effect is on by default; ``ShinEffects.none()`` is
the ideal rig (a still athlete, a hinge ankle, a rigid clip, the old low-error sensor).

Ranges (issue 11's published ranges; drawn uniformly per athlete):

- postural sway 0.1–0.6° at 0.05–0.6 Hz, sagittal (about the ankle) and frontal: quiet-stance
  ankle sway. The amplitude is that of a sinusoid with the same RMS (amplitude = √2 · RMS); the
  sway is a sum of three sinusoids with frequencies drawn in the band. It goes on through the
  whole session (stance, drives, holds and rests), so a stance is never "zero".
- oblique talocrural axis: 0–15° in the frontal plane (lateral end low) and 0–10° in the
  transverse plane (lateral end posterior), after Inman's measurements of the ankle axis.
- tibial internal rotation coupled to dorsiflexion: 0.05–0.25° per degree (anterior face toward
  the midline as the knee goes forward).
- soft-tissue wobble after jolts (each drive meeting its end range, each return to stance, a
  lunge's landing): a 12–25 Hz oscillation of 0.3–2 mm and 0.2–1.5° of the clip on the tibia.
  Its envelope ``(τ/Tp)^4 e^{4(1-τ/Tp)}`` rises over ``Tp`` = 0.5–1.5 cycles and is under 3 %
  after 3 Tp (assumed; roughly a damping ratio of 0.1–0.3); it is smooth to the fourth
  derivative, so the physics stays exact. Note the size this gives: 2 mm at 25 Hz is a peak of
  about 5 g at the clip (0.3 mm at 12 Hz: 0.17 g).
- uncalibrated consumer part: accelerometer offset up to 40 mg, scale and cross-axis up to 1 %,
  gyro bias up to 1 °/s with the profile's random walk, gyro scale up to 1 % (what consumer
  datasheets allow, per issue 11), each drawn uniformly within ± its limit; noise, range and
  timing from the BMI270 profile (see :func:`dorsimeter.sim.errors.consumer_unit`).
  With it, the athlete stands where gravity is 9.780–9.832 m/s² (equator to pole, sea level;
  the International Gravity Formula): a part is never calibrated where it is used, so the
  magnitude of gravity it reads standing still is not the 9.81 the code assumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

import numpy as np

from dorsimeter.sim.errors import SensorErrors, consumer_unit
from dorsimeter.types import GRAVITY_M_S2

Range = tuple[float, float]

#: the effects, in the order of the switches
EFFECTS = ("sway", "oblique_axis", "tibial_rotation", "wobble", "consumer_parts")

#: environment variable choosing the simulator's default effects: unset or "all", "none", or a
#: comma-separated list of ``EFFECTS`` (the test suite sets "none" outside tests/sim, where the
#: tests were written for the ideal rig; subprocesses inherit it)
EFFECTS_ENV = "DORSIMETER_SIM_EFFECTS"


@dataclass(frozen=True)
class ShinEffects:
    """One switch per effect and the ranges its parameters are drawn from (per athlete)."""

    sway: bool = True
    oblique_axis: bool = True
    tibial_rotation: bool = True
    wobble: bool = True
    consumer_parts: bool = True
    sway_amplitude_deg: Range = (0.1, 0.6)
    sway_freq_hz: Range = (0.05, 0.6)
    axis_frontal_deg: Range = (0.0, 15.0)
    axis_transverse_deg: Range = (0.0, 10.0)
    rotation_deg_per_deg: Range = (0.05, 0.25)
    wobble_freq_hz: Range = (12.0, 25.0)
    wobble_mm: Range = (0.3, 2.0)
    wobble_deg: Range = (0.2, 1.5)
    wobble_rise_cycles: Range = (0.5, 1.5)
    acc_offset_mg: float = 40.0
    acc_scale_pct: float = 1.0
    acc_cross_pct: float = 1.0
    gyr_bias_dps: float = 1.0
    gyr_scale_pct: float = 1.0
    sensor_model: str = "bmi270"  # noise, random walk, range and timing come from its profile
    # with consumer_parts: local gravity, equator to pole at sea level (International Gravity
    # Formula 1980: 9.7803–9.8322 m/s²)
    site_gravity_m_s2: Range = (9.780, 9.832)

    @staticmethod
    def none() -> ShinEffects:
        """The ideal rig: every effect off."""
        # replace() takes the switches by name (each a bool field), keeping EFFECTS the one list
        return replace(ShinEffects(), **{name: False for name in EFFECTS})

    @staticmethod
    def only(*names: str) -> ShinEffects:
        """Only the named effects on (see ``EFFECTS``)."""
        unknown = set(names) - set(EFFECTS)
        if unknown:
            raise ValueError(f"unknown effect(s) {sorted(unknown)}; expected {EFFECTS}")
        return replace(ShinEffects(), **{name: name in names for name in EFFECTS})

    def with_(self, **changes) -> ShinEffects:
        return replace(self, **changes)

    @property
    def on(self) -> tuple[str, ...]:
        """Names of the effects switched on."""
        return tuple(n for n in EFFECTS if getattr(self, n))

    def draw(self, seed: int) -> ShinParams:
        """One athlete's parameters (fixed by ``seed``); an effect that is off gets zeros."""
        rng = np.random.default_rng([seed, 5_000_011])
        u = lambda r: float(rng.uniform(*r))  # noqa: E731 - a one-line draw
        p = ShinParams()
        # always draw every value so switching one effect does not change the others
        amp = (u(self.sway_amplitude_deg), u(self.sway_amplitude_deg))
        freq = rng.uniform(*self.sway_freq_hz, (2, 3))
        phase = rng.uniform(0.0, 2 * np.pi, (2, 3))
        w = rng.uniform(0.3, 1.0, (2, 3))
        w = w / np.linalg.norm(w, axis=1, keepdims=True)
        frontal, transverse = u(self.axis_frontal_deg), u(self.axis_transverse_deg)
        rot = u(self.rotation_deg_per_deg)
        wf, wmm, wdeg = u(self.wobble_freq_hz), u(self.wobble_mm), u(self.wobble_deg)
        rise = u(self.wobble_rise_cycles)
        gravity = u(self.site_gravity_m_s2)  # drawn last: the earlier draws stay as they were
        if self.sway:
            p = replace(p, sway_amplitude_deg=amp, sway_freq_hz=freq, sway_phase_rad=phase,
                        sway_weight=w)
        if self.oblique_axis:
            p = replace(p, axis_frontal_deg=frontal, axis_transverse_deg=transverse)
        if self.tibial_rotation:
            p = replace(p, rotation_deg_per_deg=rot)
        if self.wobble:
            p = replace(p, wobble_freq_hz=wf, wobble_mm=wmm, wobble_deg=wdeg,
                        wobble_rise_cycles=rise, wobble_seed=int(seed))
        if self.consumer_parts:
            p = replace(p, gravity_m_s2=gravity)
        return p

    def sensor_errors(self, rate_hz: float, seed: int) -> SensorErrors:
        """The uncalibrated consumer unit of this athlete (when ``consumer_parts`` is on)."""
        return consumer_unit(rate_hz, seed, self.sensor_model, self.acc_offset_mg,
                             self.acc_scale_pct, self.acc_cross_pct, self.gyr_bias_dps,
                             self.gyr_scale_pct)


def default_effects() -> ShinEffects:
    """The effects a ``ShankSim`` gets when none are given: all, unless ``EFFECTS_ENV`` says."""
    value = os.environ.get(EFFECTS_ENV, "all").strip().lower()
    if value in ("", "all"):
        return ShinEffects()
    if value == "none":
        return ShinEffects.none()
    return ShinEffects.only(*(v.strip() for v in value.split(",") if v.strip()))


def _zeros23() -> np.ndarray:
    return np.zeros((2, 3))


@dataclass(frozen=True, eq=False)
class ShinParams:
    """One athlete's drawn shin parameters (zeros: the effect is off; compare ``summary()``).

    Sway rows are (sagittal, frontal); each is ``A Σ w_k sin(2π f_k t + φ_k)`` with Σ w_k² = 1.
    """

    sway_amplitude_deg: tuple[float, float] = (0.0, 0.0)
    sway_freq_hz: np.ndarray = field(default_factory=_zeros23)
    sway_phase_rad: np.ndarray = field(default_factory=_zeros23)
    sway_weight: np.ndarray = field(default_factory=_zeros23)
    axis_frontal_deg: float = 0.0
    axis_transverse_deg: float = 0.0
    rotation_deg_per_deg: float = 0.0
    wobble_freq_hz: float = 0.0
    wobble_mm: float = 0.0
    wobble_deg: float = 0.0
    wobble_rise_cycles: float = 1.0
    wobble_seed: int = 0
    gravity_m_s2: float = GRAVITY_M_S2  # the site's gravity (the nominal one when not drawn)

    def summary(self) -> dict[str, float]:
        """The scalar parameters, for tables and logs."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float):
                out[f.name] = v
        out["sway_sagittal_deg"], out["sway_frontal_deg"] = self.sway_amplitude_deg
        return out

    def flexion_axis(self, side_sign: float) -> np.ndarray:
        """Unit talocrural axis in the foot frame (x anterior, y left, z up), pointing +y.

        Its lateral end is low (frontal tilt) and posterior (transverse tilt); +y is lateral for
        the left leg (``side_sign`` +1) and medial for the right (-1)."""
        a = np.array([-side_sign * np.tan(np.radians(self.axis_transverse_deg)), 1.0,
                      -side_sign * np.tan(np.radians(self.axis_frontal_deg))])
        return a / np.linalg.norm(a)

    def sway_rad(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sway angle, rate and angular acceleration, (2, N) each: rows sagittal, frontal."""
        t = np.asarray(t_s, dtype=float)
        amp = np.radians(np.asarray(self.sway_amplitude_deg))[:, None, None]
        om = 2 * np.pi * self.sway_freq_hz[:, :, None]
        arg = om * t[None, None, :] + self.sway_phase_rad[:, :, None]
        w = self.sway_weight[:, :, None] * amp
        s, c = np.sin(arg), np.cos(arg)
        return ((w * s).sum(axis=1), (w * om * c).sum(axis=1), (-w * om**2 * s).sum(axis=1))

    def wobble(self, t_s: np.ndarray, events_s: np.ndarray) -> tuple[np.ndarray, ...]:
        """The clip's motion on the tibia after jolts at ``events_s``.

        ``events_s`` sorted. Returns (d, ḋ, d̈, φ, φ̇, φ̈): translation (m) and small
        rotation angles about the tibia's x, y, z (rad) with their first and second time
        derivatives, each (N, 3).
        Each jolt has its own direction and a strength of 0.5–1 of the athlete's amplitude,
        drawn from (seed, jolt number), so a jolt looks the same in any batch."""
        t = np.asarray(t_s, dtype=float)
        out = [np.zeros((len(t), 3)) for _ in range(6)]
        if not self.wobble_freq_hz or len(t) == 0:
            return tuple(out)
        om = 2 * np.pi * self.wobble_freq_hz
        tp = self.wobble_rise_cycles / self.wobble_freq_hz
        n = 4.0
        ev = np.asarray(events_s, dtype=float)
        first = int(np.searchsorted(ev, float(t.min()) - 16 * tp))
        last = int(np.searchsorted(ev, float(t.max())))
        for k in range(first, last):
            te = ev[k]
            m = (t > te) & (t < te + 16 * tp)
            if not m.any():
                continue
            rng = np.random.default_rng([self.wobble_seed, 7_000_003, k])
            strength = rng.uniform(0.5, 1.0)
            dvec = rng.normal(size=3)
            dvec *= 1e-3 * self.wobble_mm * strength / np.linalg.norm(dvec)
            rvec = rng.normal(size=3)
            rvec *= np.radians(self.wobble_deg) * strength / np.linalg.norm(rvec)
            ph = rng.uniform(0.0, 2 * np.pi)
            tau = t[m] - te
            g = (tau / tp) ** n * np.exp(n * (1.0 - tau / tp))
            h = n * (1.0 / tau - 1.0 / tp)
            g1 = g * h
            g2 = g * (h**2 - n / tau**2)
            s, c = np.sin(om * tau + ph), np.cos(om * tau + ph)
            x = g * s
            x1 = g1 * s + g * om * c
            x2 = g2 * s + 2 * g1 * om * c - g * om**2 * s
            for j, (vec, shape) in enumerate(((dvec, x), (dvec, x1), (dvec, x2),
                                              (rvec, x), (rvec, x1), (rvec, x2))):
                out[j][m] += shape[:, None] * vec[None, :]
        return tuple(out)


def jolt_times(reps) -> np.ndarray:
    """Instants that jolt a skin-mounted clip: each drive meeting its end range (the knee at the
    wall), each return to stance, and a lunge's landing (its start)."""
    ev = []
    for r in reps:
        ev += [r.t_hold_s, r.t_end_s]
        if r.kind == "lunge":
            ev.append(r.t_start_s)
    return np.sort(np.asarray(ev, dtype=float))


def chain(start, joints, omega0: np.ndarray | None = None, alpha0: np.ndarray | None = None
          ) -> tuple:
    """Orientation, angular velocity and angular acceleration (world) of a chain of rotations.

    ``start`` is a :class:`~scipy.spatial.transform.Rotation` (one, or one per sample) moving with
    ``omega0``/``alpha0`` (zero when not given); ``joints`` a list of (unit axis in the frame
    before the joint, (3,) or (N, 3), angle, rate, acceleration (N,)), applied in order:
    R = start · R1(q1) · R2(q2) ···. With a_i the joint axis in the world, ω = ω0 + Σ q̇_i a_i and
    α = α0 + Σ (q̈_i a_i + q̇_i ω_<i × a_i), exactly."""
    from scipy.spatial.transform import Rotation

    n = len(joints[0][1])
    omega = np.zeros((n, 3)) if omega0 is None else np.asarray(omega0, dtype=float)
    alpha = np.zeros((n, 3)) if alpha0 is None else np.asarray(alpha0, dtype=float)
    rot = start
    for axis, q, qd, qdd in joints:
        axis = np.asarray(axis, dtype=float)
        a = np.broadcast_to(rot.apply(axis), (n, 3))
        alpha = alpha + qdd[:, None] * a + qd[:, None] * np.cross(omega, a)
        omega = omega + qd[:, None] * a
        rot = rot * Rotation.from_rotvec(q[:, None] * np.broadcast_to(axis, (n, 3)))
    return rot, omega, alpha
