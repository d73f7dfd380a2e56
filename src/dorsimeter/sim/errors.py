"""The simulated sensor's errors: what a real MEMS IMU adds to the true specific force and rate.

:class:`SensorErrors` holds one unit's error figures (a particular chip, not a spec sheet's
spread); :class:`ErrorModel` applies them to a stream, carrying the state that drifts (gyro bias
random walk) between batches. Applied in the order a chip does it: axis misalignment and scale
→ offset/bias → white noise → int16 quantisation with range saturation. Sample instants get
jitter and the device clock a drift, so the reported timestamps are not the true ones.

Per-model spreads (1σ figures from the datasheets, see ``calibration/sensors/*.json``) give a
random but reproducible unit with :meth:`SensorErrors.realistic`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from dorsimeter.types import GRAVITY_M_S2

Vec3 = tuple[float, float, float]
_ZERO3: Vec3 = (0.0, 0.0, 0.0)
_ZERO6 = (0.0,) * 6

#: The repo's reference profiles (sensor models, mount presets).
CALIBRATION_DIR = Path(__file__).resolve().parents[3] / "calibration"


@dataclass(frozen=True)
class SensorErrors:
    """One sensor unit's errors. Noise figures are per-sample standard deviations.

    ``*_misalign_rad`` are the six off-diagonal entries (xy, xz, yx, yz, zx, zy) of the
    sensitivity matrix, i.e. cross-axis sensitivity; ``*_scale`` the diagonal's deviation from 1.
    ``acc_range_g``/``gyr_range_dps`` switch on int16 quantisation and saturation (None: off).
    ``jitter_s`` is the std of the true sample instant around its nominal time;
    ``clock_drift_ppm`` how fast the device clock runs (its timestamps are k/rate on its own
    clock, so the true instants stretch by 1/(1 + drift)). ``interval_average``: each output is
    the mean of the signal over the sample interval ending at its instant (the chip's
    decimation filter), as on real parts, instead of the instantaneous value."""

    gyr_noise_rad_s: float = 0.003
    acc_noise_m_s2: float = 0.015
    gyr_bias_rad_s: Vec3 = (0.004, -0.003, 0.002)
    gyr_bias_walk_rad_s_sqrt_s: float = 0.0
    acc_offset_m_s2: Vec3 = _ZERO3
    acc_scale: Vec3 = _ZERO3
    gyr_scale: Vec3 = _ZERO3
    acc_misalign_rad: tuple[float, ...] = _ZERO6
    gyr_misalign_rad: tuple[float, ...] = _ZERO6
    acc_range_g: float | None = None
    gyr_range_dps: float | None = None
    jitter_s: float = 0.0
    clock_drift_ppm: float = 0.0
    interval_average: bool = False
    model: str = "generic"

    @staticmethod
    def none() -> SensorErrors:
        """A perfect sensor."""
        return SensorErrors(0.0, 0.0, _ZERO3, model="ideal")

    @staticmethod
    def realistic(model: str = "bmi270", rate_hz: float = 100.0, seed: int = 0,
                  **overrides) -> SensorErrors:
        """A random unit of ``model`` (``calibration/sensors/<model>.json``), fixed by seed."""
        return from_profile(load_profile(model), rate_hz, seed, **overrides)

    def with_(self, **changes) -> SensorErrors:
        return replace(self, **changes)

    def acc_matrix(self) -> np.ndarray:
        return _sensitivity(self.acc_scale, self.acc_misalign_rad)

    def gyr_matrix(self) -> np.ndarray:
        return _sensitivity(self.gyr_scale, self.gyr_misalign_rad)


def _sensitivity(scale: Vec3, misalign: tuple[float, ...]) -> np.ndarray:
    m = np.diag(1.0 + np.asarray(scale, dtype=float))
    (m[0, 1], m[0, 2], m[1, 0], m[1, 2], m[2, 0], m[2, 1]) = misalign
    return m


def load_profile(model: str) -> dict:
    """A sensor model's reference profile from ``calibration/sensors/<model>.json``."""
    path = CALIBRATION_DIR / "sensors" / f"{model.lower()}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        known = sorted(p.stem for p in (CALIBRATION_DIR / "sensors").glob("*.json"))
        raise ValueError(f"no sensor profile {model!r}; known: {', '.join(known)}") from None


def from_profile(profile: dict, rate_hz: float, seed: int = 0, **overrides) -> SensorErrors:
    """Draw one unit from a profile's 1σ spreads; noise densities become per-sample std.

    White noise of density ``d`` seen through the chip's anti-aliasing filter (bandwidth about
    ODR/2) has a per-sample std of ``d·√(rate/2)``."""
    rng = np.random.default_rng(seed)
    a, g = profile["accelerometer"], profile["gyroscope"]
    bw = np.sqrt(rate_hz / 2.0)
    mg = 1e-3 * GRAVITY_M_S2
    dps = np.pi / 180.0

    def n(sd: float, k: int = 3) -> tuple[float, ...]:
        return tuple(float(v) for v in rng.normal(0.0, sd, k))

    def n3(sd: float) -> Vec3:
        x, y, z = n(sd)
        return (x, y, z)

    t = profile.get("timing", {})
    e = SensorErrors(
        gyr_noise_rad_s=g["noise_density_dps_sqrt_hz"] * dps * bw,
        acc_noise_m_s2=a["noise_density_ug_sqrt_hz"] * 1e-3 * mg * bw,
        gyr_bias_rad_s=n3(g["zero_rate_offset_dps"] * dps),
        gyr_bias_walk_rad_s_sqrt_s=g.get("bias_random_walk_dps_sqrt_s", 0.0) * dps,
        acc_offset_m_s2=n3(a["zero_g_offset_mg"] * mg),
        acc_scale=n3(a["sensitivity_error_pct"] / 100.0),
        gyr_scale=n3(g["sensitivity_error_pct"] / 100.0),
        acc_misalign_rad=n(a["cross_axis_pct"] / 100.0, 6),
        gyr_misalign_rad=n(g["cross_axis_pct"] / 100.0, 6),
        acc_range_g=a.get("range_g"),
        gyr_range_dps=g.get("range_dps"),
        jitter_s=t.get("jitter_s", 0.0),
        clock_drift_ppm=float(rng.normal(0.0, t.get("clock_drift_ppm", 0.0))),
        interval_average=bool(t.get("interval_average", True)),
        model=profile.get("model", "generic"),
    )
    return replace(e, **overrides)


def consumer_unit(rate_hz: float, seed: int = 0, model: str = "bmi270",
                  acc_offset_mg: float = 40.0, acc_scale_pct: float = 1.0,
                  acc_cross_pct: float = 1.0, gyr_bias_dps: float = 1.0,
                  gyr_scale_pct: float = 1.0, gyr_cross_pct: float | None = None
                  ) -> SensorErrors:
    """An uncalibrated consumer unit at its datasheet limits: the offsets, scale and cross-axis
    errors drawn uniformly within ± the given maxima (not the 1σ spreads of ``realistic``);
    noise, bias random walk, range and timing from ``model``'s profile."""
    base = from_profile(load_profile(model), rate_hz, seed)
    rng = np.random.default_rng([seed, 6_000_011])
    mg, dps = 1e-3 * GRAVITY_M_S2, np.pi / 180.0

    def u(limit: float, k: int = 3) -> tuple[float, ...]:
        return tuple(float(v) for v in rng.uniform(-limit, limit, k))

    cross = acc_cross_pct if gyr_cross_pct is None else gyr_cross_pct
    return replace(base, acc_offset_m_s2=u(acc_offset_mg * mg), acc_scale=u(acc_scale_pct / 100),
                   acc_misalign_rad=u(acc_cross_pct / 100, 6), gyr_bias_rad_s=u(gyr_bias_dps * dps),
                   gyr_scale=u(gyr_scale_pct / 100), gyr_misalign_rad=u(cross / 100, 6))


@dataclass
class ErrorModel:
    """Applies :class:`SensorErrors` to a stream of true signals, batch after batch.

    White noise draws come from ``noise_rng`` (acc, then gyro) exactly as the first simulator
    did, so the default errors reproduce earlier streams; drifting errors use their own stream.
    """

    errors: SensorErrors
    rate_hz: float
    noise_rng: np.random.Generator
    seed: int = 0
    _bias: np.ndarray = field(init=False)
    _rng: np.random.Generator = field(init=False)
    _ma: np.ndarray | None = field(init=False)
    _mg: np.ndarray | None = field(init=False)

    def __post_init__(self) -> None:
        e = self.errors
        self._bias = np.asarray(e.gyr_bias_rad_s, dtype=float).copy()
        self._rng = np.random.default_rng(self.seed + 4_000_037)
        ma, mg = e.acc_matrix(), e.gyr_matrix()
        self._ma = None if np.array_equal(ma, np.eye(3)) else ma
        self._mg = None if np.array_equal(mg, np.eye(3)) else mg

    def sample_times(self, t_nominal_s: np.ndarray) -> np.ndarray:
        """True instants of samples whose device timestamps are ``t_nominal_s``."""
        e = self.errors
        t = np.asarray(t_nominal_s, dtype=float)
        if e.clock_drift_ppm:
            t = t / (1.0 + 1e-6 * e.clock_drift_ppm)
        if e.jitter_s:
            t = t + self._rng.normal(0.0, e.jitter_s, len(t))
        return t

    def band_limit(self, ideal, t_s: np.ndarray, acc_m_s2: np.ndarray, gyr_rad_s: np.ndarray,
                   sub: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """Interval-averaged (acc, gyr) when the unit averages (midpoint rule, ``sub`` points
        over the interval ending at each instant); ``ideal(t) -> (acc, gyr, ...)``."""
        if not self.errors.interval_average or len(t_s) == 0:
            return acc_m_s2, gyr_rad_s
        dt = 1.0 / self.rate_hz
        offs = -(np.arange(sub) + 0.5) * dt / sub
        tt = (np.asarray(t_s)[:, None] + offs[None, :]).ravel()
        a, g = ideal(tt)[:2]
        return a.reshape(-1, sub, 3).mean(axis=1), g.reshape(-1, sub, 3).mean(axis=1)

    def gyr_bias(self, n: int) -> np.ndarray:
        """(n,3) gyro bias of the next n samples (random walk carried between calls)."""
        walk = self.errors.gyr_bias_walk_rad_s_sqrt_s
        if not walk:
            return np.broadcast_to(self._bias, (n, 3))
        steps = self._rng.normal(0.0, walk / np.sqrt(self.rate_hz), (n, 3))
        b = self._bias + np.cumsum(steps, axis=0)
        if n:
            self._bias = b[-1].copy()
        return b

    def apply(self, acc_m_s2: np.ndarray, gyr_rad_s: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """Measured (acc, gyr) for true specific force and body rate, both (n,3)."""
        e = self.errors
        n = len(acc_m_s2)
        acc = acc_m_s2 if self._ma is None else acc_m_s2 @ self._ma.T
        gyr = gyr_rad_s if self._mg is None else gyr_rad_s @ self._mg.T
        acc = acc + np.asarray(e.acc_offset_m_s2) + self.noise_rng.normal(
            0.0, 1.0, (n, 3)) * e.acc_noise_m_s2
        gyr = gyr + self.gyr_bias(n) + self.noise_rng.normal(0.0, 1.0, (n, 3)) * e.gyr_noise_rad_s
        if e.acc_range_g is not None:
            acc = quantise(acc, e.acc_range_g * GRAVITY_M_S2)
        if e.gyr_range_dps is not None:
            gyr = quantise(gyr, np.radians(e.gyr_range_dps))
        return acc, gyr


def quantise(x: np.ndarray, full_scale: float) -> np.ndarray:
    """int16 conversion of a ±``full_scale`` channel: rounding, then saturation."""
    lsb = full_scale / 32768.0
    return np.clip(np.round(x / lsb), -32768, 32767) * lsb


def error_fields() -> list[str]:
    """Names of the error figures (for the bench tables and docs)."""
    return [f.name for f in fields(SensorErrors)]


def still_pose_recording(errors: SensorErrors, rate_hz: float = 100.0, seed: int = 0,
                         n_random: int = 4, hold_s: float = 3.0, move_s: float = 1.0
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t_s, acc, gyr) of a unit laid still on the six faces of a box, then ``n_random`` tilted
    poses, with ``move_s`` turns in between: the input of a sensor calibration."""
    from scipy.spatial.transform import Rotation, Slerp

    rng = np.random.default_rng(seed)
    faces = Rotation.from_euler("xyz", [[0, 0, 0], [180, 0, 0], [90, 0, 0], [-90, 0, 0],
                                        [0, 90, 0], [0, -90, 0]], degrees=True)
    # random_state (legacy RandomState seeding, which the recorded poses depend on) is added by
    # scipy's _transition_to_rng decorator at runtime, so the signature pyright sees lacks it
    extra = (Rotation.random(n_random, random_state=seed)  # pyright: ignore[reportCallIssue]
             if n_random else None)
    poses = faces if extra is None else Rotation.concatenate([faces, extra])
    # a few degrees off square, as a hand lays it
    poses = Rotation.from_rotvec(rng.normal(0.0, np.radians(3.0), (len(poses), 3))) * poses
    hold, move = int(hold_s * rate_hz), int(move_s * rate_hz)
    rots = []
    for k in range(len(poses)):
        rots.append(Rotation.concatenate([poses[k]] * hold))
        if k + 1 < len(poses):
            s = Slerp([0.0, 1.0], Rotation.concatenate([poses[k], poses[k + 1]]))
            x = np.arange(1, move + 1) / (move + 1)
            rots.append(s(0.5 - 0.5 * np.cos(np.pi * x)))
    r = Rotation.concatenate(rots)  # sensor to world
    n = len(r)
    acc = r.inv().apply([0.0, 0.0, GRAVITY_M_S2])
    step = (r[:-1].inv() * r[1:]).as_rotvec() * rate_hz  # body rate between samples
    gyr = np.vstack([step, np.zeros(3)])
    model = ErrorModel(errors, rate_hz, np.random.default_rng(seed + 7), seed)
    acc, gyr = model.apply(acc, gyr)
    return np.arange(n) / rate_hz, acc, gyr


def mount_presets() -> dict[str, dict]:
    """The clip placements in ``calibration/mounts.json`` (height and anterior offset, m)."""
    return json.loads((CALIBRATION_DIR / "mounts.json").read_text())["presets"]
