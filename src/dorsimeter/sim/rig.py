"""The virtual rig: a rigid tibia rotating about the ankle with an IMU clipped to the shin.

Kinematics are analytic (see ``motion``), so the gyroscope is the exact body rate and the
accelerometer the exact specific force at the IMU point, rotational acceleration included.
Sensor errors are added on top; ground truth comes back with every sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from dorsimeter.sim.motion import DriveSpec, Profile, append_drive, knee_to_wall_session
from dorsimeter.types import GRAVITY_M_S2, SIDES, ImuBatch

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
class SensorErrors:
    """First sensor error model: white noise and a constant gyro bias."""

    gyr_noise_rad_s: float = 0.003
    acc_noise_m_s2: float = 0.015
    gyr_bias_rad_s: tuple[float, float, float] = (0.004, -0.003, 0.002)

    @staticmethod
    def none() -> SensorErrors:
        return SensorErrors(0.0, 0.0, (0.0, 0.0, 0.0))


@dataclass
class ShankSim:
    """Streams a simulated knee-to-wall session, side by side, with ground truth.

    The script never ends: after the scripted drives more drives follow. ``set_side`` moves the
    clip to the other leg, which starts a new still stance and calibration drives.
    """

    rate_hz: float = 100.0
    side: str = "left"
    mount: Mount = field(default_factory=Mount)
    errors: SensorErrors = field(default_factory=SensorErrors)
    heading_deg: float = 20.0
    end_angle_deg: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_END_ANGLE_DEG))
    seed: int = 0

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}")
        self._rng = np.random.default_rng(self.seed)
        self._noise_rng = np.random.default_rng(self.seed + 1_000_003)
        self._n = 0
        self._flexion, self._valgus = Profile(), Profile()
        self._side_changes: list[tuple[float, str]] = [(0.0, self.side)]
        knee_to_wall_session(self._flexion, self._valgus, self._rng, self.end_angle_deg[self.side])

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
        for p in (self._flexion, self._valgus):
            x, _, _ = p.evaluate(np.array([now]))
            # cut the script at "now" and return to stance over 1 s
            keep = [i for i, t0 in enumerate(p._t0) if t0 < now]
            p._t0, p._dur = [p._t0[i] for i in keep], [p._dur[i] for i in keep]
            p._a0, p._a1 = [p._a0[i] for i in keep], [p._a1[i] for i in keep]
            if p._t0:
                p._dur[-1] = now - p._t0[-1]
                p._a1[-1] = float(x[0])
            p.value = float(x[0])
            if not p._t0:
                p.t_start_s = now
            p.move(0.0, 1.0)
        self._side_changes.append((now + 1.0, side))
        knee_to_wall_session(self._flexion, self._valgus, self._rng, self.end_angle_deg[side])

    def _extend(self, until_s: float) -> None:
        while self._flexion.end_s < until_s:
            target = self.end_angle_deg[self.side] + float(np.clip(self._rng.normal(0, 1.5), -3, 3))
            append_drive(self._flexion, self._valgus,
                         DriveSpec(target, valgus_deg=float(self._rng.normal(2.0, 1.0))))

    def side_at(self, t_s: np.ndarray) -> np.ndarray:
        starts = np.array([t for t, _ in self._side_changes])
        names = np.array([s for _, s in self._side_changes], dtype=object)
        return names[np.clip(np.searchsorted(starts, t_s, side="right") - 1, 0, None)]

    def kinematics(self, t_s: np.ndarray) -> dict[str, np.ndarray]:
        """Exact tibia/sensor kinematics at ``t_s`` (world frame z up)."""
        self._extend(float(np.max(t_s)) + 1.0)
        th, thd, thdd = self._flexion.evaluate(t_s)
        ph, phd, phdd = self._valgus.evaluate(t_s)
        # valgus (knee toward the midline, i.e. toward the other leg) is a tilt toward
        # -y for the left leg and +y for the right leg; y points to the athlete's left.
        sign = np.where(self.side_at(t_s) == "left", 1.0, -1.0)
        chi, chid, chidd = sign * ph, sign * phd, sign * phdd
        psi = np.radians(self.heading_deg)
        rz = Rotation.from_euler("z", psi)
        angles = np.column_stack([np.full_like(th, psi), th, chi])
        tibia = Rotation.from_euler("ZYX", angles)
        a1 = rz.apply([0.0, 1.0, 0.0])  # flexion axis (world), constant
        # frontal (valgus) axis in the world: the tibia x axis after heading and flexion
        a2 = (rz * Rotation.from_euler("y", th[:, None])).apply([1.0, 0.0, 0.0])
        w1 = thd[:, None] * a1
        omega = w1 + chid[:, None] * a2
        alpha = thdd[:, None] * a1 + chidd[:, None] * a2 + chid[:, None] * np.cross(w1, a2)
        pos = tibia.apply(self.mount.lever_arm_m)
        acc_w = np.cross(alpha, pos) + np.cross(omega, np.cross(omega, pos))
        sensor = tibia * self.mount.sensor_to_tibia
        up_t = tibia.inv().apply([0.0, 0.0, 1.0])
        knee_track = np.degrees(np.arctan2(-up_t[:, 1], up_t[:, 2])) * -sign
        return {
            "tibia": tibia, "sensor": sensor, "omega_w": omega, "alpha_w": alpha,
            "pos_m": pos, "acc_w": acc_w,
            "tibia_angle_deg": np.degrees(np.arctan2(-up_t[:, 0], up_t[:, 2])),
            "knee_track_deg": knee_track,
        }

    def ideal(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Error-free specific force and body rate in the sensor frame, plus the kinematics."""
        k = self.kinematics(t_s)
        inv = k["sensor"].inv()
        acc = inv.apply(k["acc_w"] + np.array([0.0, 0.0, GRAVITY_M_S2]))
        gyr = inv.apply(k["omega_w"])
        return acc, gyr, k

    def generate(self, n: int) -> ImuBatch:
        """The next ``n`` samples with sensor errors and ground truth."""
        t = (self._n + np.arange(n)) / self.rate_hz
        self._n += n
        acc, gyr, k = self.ideal(t)
        e = self.errors
        acc = acc + self._noise_rng.normal(0.0, 1.0, (n, 3)) * e.acc_noise_m_s2
        gyr = gyr + np.asarray(e.gyr_bias_rad_s) + self._noise_rng.normal(0.0, 1.0, (n, 3)) * (
            e.gyr_noise_rad_s
        )
        q = k["sensor"].as_quat()[:, [3, 0, 1, 2]]
        side = self.side_at(t)
        truth = {
            "tibia_angle_deg": k["tibia_angle_deg"],
            "knee_track_deg": k["knee_track_deg"],
            "sensor_quat": q,
            "side": side,
        }
        return ImuBatch(t, acc, gyr, side=str(side[-1]) if n else self.side, truth=truth)
