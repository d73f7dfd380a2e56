"""The virtual rig: a rigid tibia rotating about the ankle with an IMU clipped to the shin.

Kinematics are analytic (see ``motion``), so the gyroscope is the exact body rate and the
accelerometer the exact specific force at the IMU point, rotational acceleration included.
When the heel lifts, the foot pitches about the metatarsal heads and carries the ankle (the
tibia's pivot) up and forward; that translation is in the shank accelerometer too. Optional
extra channels: a foot IMU (on the dorsum of the foot) and a heel-contact switch (FSR).
Sensor errors are added on top; ground truth comes back with every sample.

What real shins add (``shin.ShinEffects``: postural sway, an oblique ankle axis, tibial rotation,
soft-tissue wobble of the clip, an uncalibrated consumer sensor) is on by default, drawn per
athlete from the seed; ``effects=ShinEffects.none()`` is the ideal rig.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
from scipy.spatial.transform import Rotation

from dorsimeter.sim.errors import ErrorModel, SensorErrors, mount_presets
from dorsimeter.sim.motion import (
    LIFT_INVALID_M,
    Motion,
    ScriptRunner,
    ScriptSpec,
    SimRep,
    script_spec,
)
from dorsimeter.sim.shin import ShinEffects, chain, default_effects, jolt_times
from dorsimeter.types import SIDES, ImuBatch


class Kinematics(TypedDict):
    """What :meth:`ShankSim.kinematics` returns: orientations as Rotations, the rest (N, ...)
    arrays (world frame unless named otherwise)."""

    tibia: Rotation
    sensor: Rotation
    omega_w: np.ndarray
    alpha_w: np.ndarray
    tibia_omega_w: np.ndarray
    pos_m: np.ndarray
    acc_w: np.ndarray
    ankle_m: np.ndarray
    tibia_angle_deg: np.ndarray
    knee_track_deg: np.ndarray
    tibia_inclination_total_deg: np.ndarray
    tibia_angle_tibia_frame_deg: np.ndarray
    knee_track_tibia_frame_deg: np.ndarray
    foot: Rotation
    foot_sensor: Rotation
    foot_omega_w: np.ndarray
    foot_pos_m: np.ndarray
    foot_acc_w: np.ndarray
    foot_pitch_deg: np.ndarray
    heel_lift_m: np.ndarray


DEFAULT_END_ANGLE_DEG = {"left": 38.0, "right": 33.0}


@dataclass
class Mount:
    """Where and how the clip sits on the shin.

    Height above the ankle along the tibia, anterior offset from the tibial axis, and the clip's
    rotation (intrinsic x-y-z Euler angles, sensor to tibia frame)."""

    height_m: float = 0.15
    anterior_m: float = 0.04
    clip_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def sensor_to_tibia(self) -> Rotation:
        return Rotation.from_euler("xyz", self.clip_rotation_deg, degrees=True)

    @property
    def lever_arm_m(self) -> np.ndarray:
        """Ankle-to-sensor vector in the tibia frame."""
        return np.array([self.anterior_m, 0.0, self.height_m])


@dataclass
class Foot:
    """Foot geometry in the foot frame (x anterior, z up) with the origin at the metatarsal heads.

    The heel lifts by pitching the foot about the metatarsal heads: the heel contact point is
    ``heel_to_mth_m`` behind them, the ankle joint ``ankle_to_mth_m`` behind and
    ``ankle_height_m`` above. A heel lift ``h`` raises the ankle by about
    ``h · ankle_to_mth_m / heel_to_mth_m``. The foot IMU sits at ``imu_pos_m`` (dorsum)."""

    ankle_to_mth_m: float = 0.14
    ankle_height_m: float = 0.08
    heel_to_mth_m: float = 0.19
    imu_pos_m: tuple[float, float, float] = (-0.07, 0.0, 0.06)
    imu_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def ankle_m(self) -> np.ndarray:
        return np.array([-self.ankle_to_mth_m, 0.0, self.ankle_height_m])


@dataclass
class ShankSim:
    """Streams a simulated session, side by side, with ground truth.

    ``script`` is ``wall`` (knee-to-wall drives, the default), ``lunge`` (reverse lunges, front
    shin, 2–3 × 4–6 reps), ``mobilisation`` (band ankle mobilisation, 10 reps with 2 s holds),
    ``squat`` (single-leg squats with valgus) or a :class:`ScriptSpec`. Every script starts with a
    still stance and calibration drives. The script never ends: more reps follow. ``set_side``
    moves the clip to the other leg, which starts the script again there.

    ``foot_imu`` adds a second IMU on the foot (``ImuBatch.foot_acc_m_s2``/``foot_gyr_rad_s``);
    ``heel_switch`` adds the heel-contact channel (``ImuBatch.heel_contact``: heel load 0..1).
    Ground truth per sample (``truth``): tibia angle (the bone's long axis from true vertical in
    the foot's sagittal plane), its total inclination, knee track (its tilt out of that plane,
    positive toward the midline), both also as true up projected onto the tibia frame's own
    planes (``*_tibia_frame_deg``, the earlier definitions), heel lift (m and flag), foot pitch,
    rep index (-1 outside reps) and rep validity; ``reps`` lists every scripted rep.

    ``effects`` switches what real shins add (all on by default, parameters drawn per ``seed``,
    see ``sim.shin``; ``DORSIMETER_SIM_EFFECTS`` changes the default); ``shin`` holds the drawn
    values. ``errors`` None: the athlete's
    uncalibrated consumer unit when ``effects.consumer_parts`` is on, else the low-error
    ``SensorErrors()`` of the ideal rig; an explicit ``errors`` is used as given.
    """

    rate_hz: float = 100.0
    side: str = "left"
    mount: Mount = field(default_factory=Mount)
    errors: SensorErrors | None = None
    heading_deg: float = 20.0
    end_angle_deg: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_END_ANGLE_DEG))
    seed: int = 0
    script: str | ScriptSpec = "wall"
    foot: Foot = field(default_factory=Foot)
    foot_imu: bool = False
    heel_switch: bool = False
    valgus_deg: dict[str, float] | None = None
    effects: ShinEffects = field(default_factory=default_effects)

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}")
        #: this athlete's drawn shin parameters (``effects`` switches and ranges, fixed by seed)
        self.shin = self.effects.draw(self.seed)
        if self.errors is None:
            self.errors = (self.effects.sensor_errors(self.rate_hz, self.seed)
                           if self.effects.consumer_parts else SensorErrors())
        self.spec = script_spec(self.script)
        self._rng = np.random.default_rng(self.seed)
        self._noise_rng = np.random.default_rng(self.seed + 1_000_003)
        self._errors = ErrorModel(self.errors, self.rate_hz, self._noise_rng, self.seed)
        self._lift_rng = np.random.default_rng(self.seed + 2_000_029)
        self._foot_rng = np.random.default_rng(self.seed + 3_000_017)
        self._n = 0
        self._motion = Motion(heel_to_mth_m=self.foot.heel_to_mth_m)
        self._side_changes: list[tuple[float, str]] = [(0.0, self.side)]
        self.restarts_t_s: list[float] = []  # device times :meth:`restart` cut the script at
        self._start_script()

    def _start_script(self) -> None:
        v = None if self.valgus_deg is None else self.valgus_deg.get(self.side)
        self._runner = ScriptRunner(self.spec, self._motion, self._rng, self._lift_rng, self.side,
                                    self.end_angle_deg[self.side], v)
        self._runner.start()

    @property
    def reps(self) -> list[SimRep]:
        """Every rep scripted so far (calibration drives have index -1), ground truth."""
        return list(self._motion.reps)

    def counted_reps(self, until_s: float | None = None, side: str | None = None
                     ) -> list[SimRep]:
        """Reps (not calibration drives) that ended by ``until_s``, optionally of one side."""
        return [r for r in self._motion.reps if r.index >= 0
                and (until_s is None or r.t_end_s <= until_s)
                and (side is None or r.side == side)]

    @property
    def t_s(self) -> float:
        """Time of the next sample."""
        return self._n / self.rate_hz

    def set_side(self, side: str) -> None:
        """Move the clip to ``side``: the athlete straightens up and a new session begins."""
        if side == self.side:
            return
        self.side = side
        now = self.t_s
        # cut the script at "now" and return to stance (heel down) over 1 s
        self._motion.cut(now)
        for p in self._motion.profiles:
            p.move(0.0, 1.0)
        self._side_changes.append((now + 1.0, side))
        self._start_script()

    def restart(self) -> None:
        """The athlete straightens up (heel down, over 1 s) and the script starts again with its
        still stance and calibration drives: what the calibration wizard asks for. Without it a
        recalibration mid-script takes an end-range hold for the stance."""
        self._motion.cut(self.t_s)
        self.restarts_t_s.append(self.t_s)
        for p in self._motion.profiles:
            p.move(0.0, 1.0)
        self._start_script()

    def _extend(self, until_s: float) -> None:
        self._runner.extend(until_s)

    def side_at(self, t_s: np.ndarray) -> np.ndarray:
        starts = np.array([t for t, _ in self._side_changes])
        names = np.array([s for _, s in self._side_changes], dtype=object)
        return names[np.clip(np.searchsorted(starts, t_s, side="right") - 1, 0, None)]

    def kinematics(self, t_s: np.ndarray) -> Kinematics:
        """Exact tibia/sensor/foot kinematics at ``t_s`` (world frame z up, ankle at rest = 0).

        The tibia turns about the talocrural axis (oblique with ``oblique_axis``) by the flexion
        profile plus sagittal sway, tilts by valgus plus frontal sway, and turns about its long
        axis with dorsiflexion (``tibial_rotation``); the clip wobbles on it after jolts
        (``wobble``). Its pivot (the ankle) is carried by the foot, which pitches about the
        metatarsal heads when the heel lifts. Orientation, rates and accelerations are one
        analytic chain (``shin.chain``), so gyro and accelerometer agree with the motion exactly.
        """
        t_s = np.asarray(t_s, dtype=float)
        self._extend(float(np.max(t_s)) + 1.0)
        m, sp = self._motion, self.shin
        th, thd, thdd = m.flexion.evaluate(t_s)
        ph, phd, phdd = m.valgus.evaluate(t_s)
        be, bed, bedd = m.foot.evaluate(t_s)
        sw, swd, swdd = sp.sway_rad(t_s)  # (2, N): sagittal (about the ankle), frontal
        th, thd, thdd = th + sw[0], thd + swd[0], thdd + swdd[0]
        # valgus (knee toward the midline, i.e. toward the other leg) is a tilt toward
        # -y for the left leg and +y for the right leg; y points to the athlete's left.
        sign = np.where(self.side_at(t_s) == "left", 1.0, -1.0)
        chi, chid, chidd = sign * (ph + sw[1]), sign * (phd + swd[1]), sign * (phdd + swdd[1])
        # tibial internal rotation with dorsiflexion: anterior face toward the midline
        k = -sign * sp.rotation_deg_per_deg
        psi = np.radians(self.heading_deg)
        rz = Rotation.from_euler("z", psi)
        axes = np.where(sign[:, None] > 0, sp.flexion_axis(1.0), sp.flexion_axis(-1.0))
        ex, ez = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
        tibia, omega, alpha = chain(rz, [(axes, th, thd, thdd), (ex, chi, chid, chidd),
                                         (ez, k * th, k * thd, k * thdd)])
        # the clip on the skin: translation d and small rotations after jolts (tibia frame)
        d, d1, d2, fi, fi1, fi2 = sp.wobble(t_s, jolt_times(m.reps))
        if sp.wobble_freq_hz:
            clip_on_skin, omega_s, alpha_s = chain(
                tibia, [(np.eye(3)[j], fi[:, j], fi1[:, j], fi2[:, j]) for j in range(3)],
                omega, alpha)
        else:
            clip_on_skin, omega_s, alpha_s = tibia, omega, alpha
        a1 = rz.apply([0.0, 1.0, 0.0])  # foot pitch axis (world), constant
        # the foot pitches about the metatarsal heads (axis a1): heel up for positive pitch
        foot = rz * Rotation.from_euler("y", be[:, None])
        mth = -rz.apply(self.foot.ankle_m)  # metatarsal heads, with the resting ankle at 0
        w_f = bed[:, None] * a1
        al_f = bedd[:, None] * a1

        def on_foot(q_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Position and acceleration of foot points ``q_m`` (foot frame, from the MTH)."""
            r = foot.apply(q_m)
            return mth + r, np.cross(al_f, r) + np.cross(w_f, np.cross(w_f, r))

        ankle, ankle_acc = on_foot(self.foot.ankle_m)
        rel = tibia.apply(self.mount.lever_arm_m + d)
        pos = ankle + rel
        acc_w = (ankle_acc + np.cross(alpha, rel) + np.cross(omega, np.cross(omega, rel))
                 + 2.0 * np.cross(omega, tibia.apply(d1)) + tibia.apply(d2))
        sensor = clip_on_skin * self.mount.sensor_to_tibia
        foot_pos, foot_acc = on_foot(np.asarray(self.foot.imu_pos_m, dtype=float))
        foot_sensor = foot * Rotation.from_euler("xyz", self.foot.imu_rotation_deg, degrees=True)
        heel, _ = on_foot(np.array([-self.foot.heel_to_mth_m, 0.0, 0.0]))
        # truth from the bone's long axis in the foot's frame: inclination from true vertical in
        # the foot's sagittal plane, the frontal tilt out of it (knee track), and the total
        long_axis = rz.inv().apply(tibia.apply([0.0, 0.0, 1.0]))
        lx, ly, lz = long_axis[:, 0], long_axis[:, 1], long_axis[:, 2]
        # and the earlier definitions: true up projected onto the tibia frame's own sagittal and
        # frontal planes (what a frame-fixed pitch/roll reads; they differ by second-order terms
        # with valgus, and by the tibia's axial rotation)
        up_t = tibia.inv().apply([0.0, 0.0, 1.0])
        return {
            "tibia": tibia, "sensor": sensor, "omega_w": omega_s, "alpha_w": alpha_s,
            "tibia_omega_w": omega, "pos_m": pos, "acc_w": acc_w, "ankle_m": ankle,
            "tibia_angle_deg": np.degrees(np.arctan2(lx, lz)),
            "knee_track_deg": np.degrees(np.arcsin(np.clip(-ly, -1.0, 1.0))) * sign,
            "tibia_inclination_total_deg": np.degrees(np.arccos(np.clip(lz, -1.0, 1.0))),
            "tibia_angle_tibia_frame_deg": np.degrees(np.arctan2(-up_t[:, 0], up_t[:, 2])),
            "knee_track_tibia_frame_deg": np.degrees(np.arctan2(-up_t[:, 1], up_t[:, 2])) * -sign,
            "foot": foot, "foot_sensor": foot_sensor, "foot_omega_w": w_f,
            "foot_pos_m": foot_pos, "foot_acc_w": foot_acc,
            "foot_pitch_deg": np.degrees(be), "heel_lift_m": heel[:, 2] + self.foot.ankle_height_m,
        }

    def rep_truth(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rep index (-1 outside counted reps) and rep validity per sample."""
        t_s = np.asarray(t_s, dtype=float)
        rep = np.full(len(t_s), -1, dtype=int)
        valid = np.ones(len(t_s), dtype=bool)
        for r in self._motion.reps:
            if r.index < 0 or r.t_end_s < t_s[0] or r.t_start_s > t_s[-1]:
                continue
            inside = (t_s >= r.t_start_s) & (t_s < r.t_end_s)
            rep[inside] = r.index
            valid[inside] = r.valid
        return rep, valid

    def foot_ideal(self, k: Kinematics) -> tuple[np.ndarray, np.ndarray]:
        """Error-free foot IMU specific force and body rate (sensor frame) from ``kinematics``."""
        inv = k["foot_sensor"].inv()
        return (inv.apply(k["foot_acc_w"] + np.array([0.0, 0.0, self.shin.gravity_m_s2])),
                inv.apply(k["foot_omega_w"]))

    def heel_load(self, heel_lift_m: np.ndarray) -> np.ndarray:
        """Heel-switch (FSR) reading, 0..1: full load heel down, none from 2 mm of lift."""
        load = np.clip(1.0 - heel_lift_m / 0.002, 0.0, 1.0)
        return np.clip(load + self._foot_rng.normal(0.0, 0.03, len(load)), 0.0, 1.0)

    def ideal(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, Kinematics]:
        """Error-free specific force and body rate in the sensor frame, plus the kinematics."""
        k = self.kinematics(t_s)
        inv = k["sensor"].inv()
        acc = inv.apply(k["acc_w"] + np.array([0.0, 0.0, self.shin.gravity_m_s2]))
        gyr = inv.apply(k["omega_w"])
        return acc, gyr, k

    def generate(self, n: int) -> ImuBatch:
        """The next ``n`` samples with sensor errors and ground truth."""
        t = (self._n + np.arange(n)) / self.rate_hz
        self._n += n
        # sensor errors (sim/errors.py): true instants differ from the device timestamps t
        t_true = self._errors.sample_times(t)
        acc, gyr, k = self.ideal(t_true)
        acc, gyr = self._errors.band_limit(self.ideal, t_true, acc, gyr)
        acc, gyr = self._errors.apply(acc, gyr)
        q = k["sensor"].as_quat()[:, [3, 0, 1, 2]]
        side = self.side_at(t)
        truth = {
            "tibia_angle_deg": k["tibia_angle_deg"],
            "tibia_inclination_total_deg": k["tibia_inclination_total_deg"],
            "knee_track_deg": k["knee_track_deg"],
            "tibia_angle_tibia_frame_deg": k["tibia_angle_tibia_frame_deg"],
            "knee_track_tibia_frame_deg": k["knee_track_tibia_frame_deg"],
            "sensor_quat": q,
            "side": side,
        }
        return self._with_foot_channels(
            ImuBatch(t, acc, gyr, side=str(side[-1]) if n else self.side, truth=truth), k)

    def _with_foot_channels(self, b: ImuBatch, k: Kinematics) -> ImuBatch:
        """Heel-lift and rep ground truth, and the optional foot IMU and heel-switch channels."""
        n = len(b)
        lift = k["heel_lift_m"]
        rep, valid = self.rep_truth(b.t_s) if n else (np.empty(0, int), np.empty(0, bool))
        truth = b.truth
        assert truth is not None  # generate() always builds the batch with its truth
        truth.update({
            "heel_lift_m": lift, "heel_lift": lift >= LIFT_INVALID_M,
            "heel_off": lift > 0.002, "foot_pitch_deg": k["foot_pitch_deg"],
            "rep": rep, "rep_valid": valid,
        })
        if self.heel_switch:
            b.heel_contact = self.heel_load(lift)
        if self.foot_imu:
            facc, fgyr = self.foot_ideal(k)
            e = self.errors
            assert e is not None  # __post_init__ fills it in
            b.foot_acc_m_s2 = facc + self._foot_rng.normal(0.0, 1.0, (n, 3)) * e.acc_noise_m_s2
            b.foot_gyr_rad_s = fgyr + self._foot_rng.normal(0.0, 1.0, (n, 3)) * e.gyr_noise_rad_s
            truth["foot_quat"] = k["foot_sensor"].as_quat()[:, [3, 0, 1, 2]]
        return b


def preset_mount(name: str, clip_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)):
    """A simulator :class:`~dorsimeter.sim.rig.Mount` at a named placement."""
    presets = mount_presets()
    if name not in presets:
        raise ValueError(f"no mount preset {name!r}; known: {', '.join(sorted(presets))}")
    p = presets[name]
    return Mount(height_m=p["height_m"], anterior_m=p["anterior_m"],
                 clip_rotation_deg=clip_rotation_deg)
