"""Heel-lift detection from three sources: heel switch, foot IMU, or the shank IMU alone.

Every detector is streaming (state carried between calls, any batch split gives the same
flags) and vectorised: numpy and ``scipy.signal.lfilter`` with carried filter state, with a
Python loop only over threshold crossings (and, in the shank detector, over runs of its error
model's blocks: ``ShankLiftDetector._run``).

* :class:`HeelSwitchDetector` — a force-sensitive resistor under the heel (``heel_contact``
  channel, load 0..1): the heel is off when the load falls below half (with hysteresis).
* :class:`FootImuDetector` — a second IMU on the foot: the foot's tilt from its flat stance
  (VQF inclination) turned into heel height about the metatarsal heads.
* :class:`ShankLiftDetector` — the shank IMU alone. With the heel down the ankle is a fixed
  pivot, so the specific force at the sensor is ``ω̇ × r + ω × (ω × r) + g·up`` with ``r`` the
  ankle-to-sensor lever arm from calibration. Subtracting that leaves what rotation about the
  ankle cannot explain; its vertical part, band-passed and integrated, is the ankle's vertical
  velocity, which only a heel lift (pivot moving to the forefoot, ankle rising) makes large.
  Slowly varying accelerometer errors (offset, scale, misalignment) make the residual depend on
  orientation; a least-squares fit on a quadratic in "up", refreshed every ``block_n`` samples
  with a forgetting time of minutes, removes that part. Each residual sample is weighted by its
  noise: after a jolt the clip wobbles on the skin at 12–25 Hz, and what that wobble leaks into
  the bone band grows with its power (``wobble_half_weight_power``). Below ``SHANK_MIN_RATE_HZ``
  the wobble aliases into the bone band and the heel is not judged.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from dorsimeter.core.fusion import MAX_BRIDGE_S, StreamingFusion, up_in_sensor
from dorsimeter.detect.heel_sources import FOOT_IMU, HEEL_SWITCH, SHANK_IMU
from dorsimeter.detect.hysteresis import hysteresis
from dorsimeter.detect.reps import DRIVE_PEAK_ACC_DEG_S2, MAX_GAP_IN_REP_S
from dorsimeter.types import GRAVITY_M_S2


class HeelSwitchDetector:
    """Heel off when the heel-switch load (0 = no load, 1 = full) drops below ``off_below``."""

    source = HEEL_SWITCH

    def __init__(self, off_below: float = 0.4, on_above: float = 0.6) -> None:
        self.off_below, self.on_above = off_below, on_above
        self._lifted = False

    def update(self, load: np.ndarray) -> np.ndarray:
        flags, self._lifted = hysteresis(-np.asarray(load, dtype=float), -self.off_below,
                                         -self.on_above, self._lifted)
        return flags


class FootImuDetector:
    """Heel height from the foot IMU's tilt away from its flat (stance) inclination.

    The reference is the mean "up" over the first ``still_s`` of a still foot; the tilt from it
    raises the heel by ``heel_to_mth_m · sin(tilt)`` (pivot at the metatarsal heads). Flags
    turn on above ``lift_on_m`` and off below ``lift_off_m``. Unsigned: feet do not tilt
    toes-up in these exercises."""

    source = FOOT_IMU

    def __init__(self, rate_hz: float, heel_to_mth_m: float = 0.19, lift_on_m: float = 0.006,
                 lift_off_m: float = 0.004, still_s: float = 1.0) -> None:

        self.rate_hz = rate_hz
        self.heel_to_mth_m = heel_to_mth_m
        self.lift_on_m, self.lift_off_m = lift_on_m, lift_off_m
        self.fusion = StreamingFusion(rate_hz)
        self.still_n = int(round(still_s * rate_hz))
        self._run: list[np.ndarray] = []
        self._run_n = 0
        self.reference_up: np.ndarray | None = None
        self._lifted = False

    def heel_height_m(self, up: np.ndarray) -> np.ndarray:
        c = np.clip(up @ self.reference_up, -1.0, 1.0)
        return self.heel_to_mth_m * np.sqrt(1.0 - c * c)

    def update(self, acc_m_s2: np.ndarray, gyr_rad_s: np.ndarray,
               t_s: np.ndarray | None = None) -> np.ndarray:
        """Flags for the next samples; ``t_s`` (device times) lets the foot's fusion bridge
        lost samples and start afresh after a long gap, as the shank's does."""
        up = up_in_sensor(self.fusion.update(gyr_rad_s, acc_m_s2, t_s))
        flags = np.zeros(len(up), dtype=bool)
        start = 0
        if self.reference_up is None:
            still = np.linalg.norm(gyr_rad_s, axis=1) < 0.05
            for i in range(len(up)):  # only until the reference is set (a second or two)
                if still[i]:
                    self._run.append(up[i])
                    self._run_n += 1
                    if self._run_n >= self.still_n:
                        ref = np.mean(self._run, axis=0)
                        self.reference_up = ref / np.linalg.norm(ref)
                        start = i + 1
                        break
                else:
                    self._run, self._run_n = [], 0
            else:
                return flags
        h = self.heel_height_m(up[start:])
        flags[start:], self._lifted = hysteresis(h, self.lift_on_m, self.lift_off_m,
                                                 self._lifted)
        return flags


#: VQF's accelerometer time constant (its published default ``tauAcc``): how fast the fused
#: "up" converges back to the accelerometer's after an error.
VQF_TAU_ACC_S = 3.0
#: An error of "up" the residual tolerates while it decays: g·ε²/2 at 2° is 6 mm/s², whose
#: decay over τ makes a few mm/s, below any lift's velocity.
UP_ERROR_OK_DEG = 2.0


#: Peak angular acceleration of a shin standing still: postural sway of up to 0.6° at up to
#: 0.6 Hz (issue 11's range) is 0.6°·(2π·0.6 Hz)² ≈ 8.5°/s².
SWAY_PEAK_ACC_DEG_S2 = 0.6 * (2 * np.pi * 0.6) ** 2


def settle_after_gap_s(lost_s: float, rate_hz: float, at_rest: bool = False) -> float:
    """How long the fused "up" stays wrong after ``lost_s`` of lost samples.

    The fusion bridges a gap up to ``MAX_BRIDGE_S`` by interpolating the gyro, which misses
    the rotation of a drive by up to α·T²/8 (α the drive's peak angular acceleration); that
    error decays with VQF's τ. ``at_rest``: the shin stood at rest on both sides of the gap, so
    what the interpolation missed is at most a sway's (``SWAY_PEAK_ACC_DEG_S2``: a drive and its
    return do not fit in a bridged gap). After a longer gap the fusion starts afresh from the
    accelerometer (no carried error)."""

    if lost_s > MAX_BRIDGE_S + 0.5 / rate_hz:
        return 0.0
    alpha = SWAY_PEAK_ACC_DEG_S2 if at_rest else DRIVE_PEAK_ACC_DEG_S2
    err_deg = alpha * lost_s ** 2 / 8.0
    return VQF_TAU_ACC_S * float(np.log(max(1.0, err_deg / UP_ERROR_OK_DEG)))


def max_gap_in_rep_s() -> float:
    """The longest gap a scored rep may contain (``reps.MAX_GAP_IN_REP_S``)."""

    return MAX_GAP_IN_REP_S


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise a × b, element-wise (faster than np.cross on short arrays; split-invariant)."""
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def _features(up: np.ndarray, lever: np.ndarray) -> np.ndarray:
    """(n, N_FEATURES), C order: the quadratic in "up" (x, y, z, x², y², z², xy, xz, yz), then the
    lever-arm features; written column by column (``np.column_stack`` of the same columns
    gives the same array, ten times slower)."""
    x, y, z = up.T
    f = np.empty((len(up), N_FEATURES))
    f[:, :3] = up
    for k, (a, b) in enumerate(((x, x), (y, y), (z, z), (x, y), (x, z), (y, z)), start=3):
        np.multiply(a, b, out=f[:, k])  # into its column: no temporary
    f[:, N_QUADRATIC:] = lever
    return f


#: The bone's motion, and a heel lift's (a rise over 0.25–0.5 s), lie below this; a skin-mounted
#: clip wobbles at 12–25 Hz after jolts. A 4th-order low-pass here takes that wobble down by
#: (6/12)⁴ (−24 dB) at its lowest and keeps its rotation rate out of the ω² of the pivot
#: model, where it would not average out: 1.5° at 20 Hz is |ω|² ≈ 11 (rad/s)², ≈ 2 m/s² of
#: centripetal term at a 0.19 m lever arm for as long as the wobble lasts.
BONE_BAND_HZ = 6.0
#: After a long gap the low-pass starts again from one sample, and a clip still wobbling there
#: makes its rate ramp to the true level, an ω̇ × r of up to 0.8 m/s² at a still shin (a 3 s
#: gap mid-hold: a 110 mm/s "lift" at rest). So the residual's filters run this long before the
#: detector watches: a 4th-order Butterworth's step response is within 1 % after about two
#: periods of its cut-off.
LOWPASS_WARM_S = 2.0 / BONE_BAND_HZ
#: The skin-mounted clip's soft-tissue resonance starts here (12–25 Hz, issue 11's published
#: range): above it the accelerometer carries the clip's wobble on the skin and nothing of the
#: bone (a heel lift's 0.25–0.5 s rise has no content there).
SOFT_TISSUE_LOW_HZ = 12.0
#: ... and ends here: the top of the band, the worst case for what a wobble leaks (below).
SOFT_TISSUE_HIGH_HZ = 25.0
#: The shank detector tells the clip's wobble from the bone's motion by the wobble's band: a
#: stream must carry it (Nyquist at its top). Slower, the 12–25 Hz wobble after every jolt
#: aliases into the bone band (at 25 Hz a 23 Hz wobble reads as 2 Hz motion), and the shank
#: IMU alone cannot judge a heel lift: the heel is then not checked (``NO_SOURCE``) rather than
#: judged wrongly.
SHANK_MIN_RATE_HZ = 2.0 * SOFT_TISSUE_HIGH_HZ
#: How well a sample's instant is known (s): the node polls the parts' output registers (no
#: FIFO, issue 14) and the sensor profiles give 0.3 ms of timing jitter. A wobble of acceleration
#: a at f errs by ȧ·δt = 2πf·a·δt per sample, broadband, so part of it falls in the bone band:
#: after a jolt the residual's noise there rises with the wobble's power (measured on the
#: simulator: κ² ≈ 1e-4 of it in the 6 Hz band, as this predicts) and, integrated, reaches the
#: velocity of a lift.
SAMPLE_INSTANT_S = 0.3e-3
#: Per-sample residual noise (m/s²): accelerometer noise (BMI270 160 µg/√Hz over 50 Hz:
#: 0.011 m/s²) and the gyro's differentiated noise times the lever arm, with room for the
#: quantisation of consumer parts; it sets how strongly the priors below hold.
RESIDUAL_NOISE_M_S2 = 0.03
#: Prior spread of the accelerometer-error coefficients (m/s²): a few tens of mg.
ACC_ERROR_SIGMA_M_S2 = 0.3
#: Prior spread of the calibration's lever-arm error (m): its drives are fitted on a clip that
#: moves on skin, and the offset between the talocrural axis and the pivot of the fit.
LEVER_ARM_SIGMA_M = 0.03
#: Each residual sample is weighted by the inverse of its noise variance relative to the quiet
#: floor: ``w = σ²/(σ² + (2π f δt)² p)`` with ``p`` the clip's wobble power (acceleration above
#: ``SOFT_TISSUE_LOW_HZ``, (m/s²)²), σ = ``RESIDUAL_NOISE_M_S2`` and f = ``SOFT_TISSUE_HIGH_HZ``,
#: δt = ``SAMPLE_INSTANT_S``: the half-weight wobble power, (m/s²)². Integrating a weighted
#: residual keeps the velocity's noise at the quiet floor through a wobble (a constant false-
#: alert rate for one threshold); a lift outlasts the wobble (0.25–0.5 s against under 3 cycles
#: of 12–25 Hz) and is found on the rest of its rise.
def wobble_half_weight_power() -> float:
    """``p`` at which a residual sample counts half: the wobble's leak equals the quiet noise."""
    return (RESIDUAL_NOISE_M_S2 / (2 * np.pi * SOFT_TISSUE_HIGH_HZ * SAMPLE_INSTANT_S)) ** 2


N_QUADRATIC = 9
N_FEATURES = N_QUADRATIC + 3


def _lever_features(w: np.ndarray, dw: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(n,3), C order: d/dr of the vertical pivot acceleration (ω̇ × r + ω × (ω × r))·up, i.e.
    up × ω̇ + (ω·up) ω − |ω|² up: the residual a lever-arm error δr leaves is this · δr.

    Written column by column on 1-D arrays: the same operations in the same order as
    ``_cross(up, dw) + (w * up).sum(axis=1)[:, None] * w - (w * w).sum(axis=1)[:, None] * up``
    (a sum over 3 columns adds them left to right), equal to the last bit and about three
    times faster (``tests/detect/test_heel_blocks.py`` keeps that form as its reference)."""
    w0, w1, w2 = w[:, 0], w[:, 1], w[:, 2]
    u0, u1, u2 = up[:, 0], up[:, 1], up[:, 2]
    d0, d1, d2 = dw[:, 0], dw[:, 1], dw[:, 2]
    wu = w0 * u0 + w1 * u1 + w2 * u2
    ww = w0 * w0 + w1 * w1 + w2 * w2
    out = np.empty((len(w), 3))
    out[:, 0] = (u1 * d2 - u2 * d1 + wu * w0) - ww * u0
    out[:, 1] = (u2 * d0 - u0 * d2 + wu * w1) - ww * u1
    out[:, 2] = (u0 * d1 - u1 * d0 + wu * w2) - ww * u2
    return out


class ShankLiftDetector:
    """Heel lift from the shank IMU alone: vertical ankle velocity unexplained by rotation.

    ``lever_arm_m`` is the ankle-to-sensor vector in the sensor frame (from calibration);
    ``gyr_bias_rad_s`` the gyro bias at rest. The signals are first taken to the bone's band
    (``BONE_BAND_HZ``: the clip's wobble on the skin is no motion of the ankle). The error
    model then learns, from heel-down data only, the accelerometer's orientation-dependent
    error (a quadratic in "up") and the calibration's lever-arm error (the pivot term's
    derivative, ``_lever_features``), with Gaussian priors (``ACC_ERROR_SIGMA_M_S2``,
    ``LEVER_ARM_SIGMA_M`` against ``RESIDUAL_NOISE_M_S2``): with the heel down the ankle is a
    fixed point, so any rotation-correlated residual is a wrong lever arm, not a lift.
    A lift starts when the band-passed, integrated residual (``velocity_m_s``) exceeds
    ``v_on_m_s``; it ends once the heel has come down again (a downward velocity pulse, then
    quiet) or after ``max_lift_s``.
    """

    source = SHANK_IMU

    def __init__(self, rate_hz: float, lever_arm_m, gyr_bias_rad_s=(0.0, 0.0, 0.0),
                 v_on_m_s: float = 0.010, acc_offset_m_s2=(0.0, 0.0, 0.0),
                 heel_down_until_s: float = -np.inf, band_hz: tuple[float, float] = (0.3, 4.0),
                 leak_s: float = 0.5, forget_s: float = 120.0, block_n: int | None = None,
                 max_lift_s: float = 6.0) -> None:
        self.rate_hz = rate_hz
        self.r = np.asarray(lever_arm_m, dtype=float).reshape(3)
        self.bias = np.asarray(gyr_bias_rad_s, dtype=float).reshape(3)
        self.acc_offset = np.asarray(acc_offset_m_s2, dtype=float).reshape(3)
        # samples up to here are heel down by protocol (the calibration's stance and drives,
        # whose lever-arm fit assumes it): flagged nothing, and learnt from even while the
        # error model is still empty (otherwise its first drives flag, and flagged blocks are
        # never learnt from)
        self.heel_down_until_s = float(heel_down_until_s)
        self.v_on_m_s = v_on_m_s
        self.max_lift_n = int(round(max_lift_s * rate_hz))
        self.block_n = block_n or max(1, int(round(1.0 * rate_hz)))
        from scipy.signal import butter  # imported here: scipy.signal costs ~1 s of CLI start-up

        # butter's return type covers every output=; the default "ba" gives (b, a)
        self._bp = cast(tuple[np.ndarray, np.ndarray], butter(2, band_hz, btype="band", fs=rate_hz))
        self._lp = butter(4, min(BONE_BAND_HZ, 0.4 * rate_hz), fs=rate_hz, output="sos")
        self._lp_zi: np.ndarray | None = None  # (sections, 2, 8): ω (3), a·up, up (3), wobble
        # the clip's wobble power: the accelerometer above the soft-tissue band's bottom, its
        # power then taken to the bone band with the signals (so it lines up with the noise it
        # leaves there)
        self._hp = butter(4, min(SOFT_TISSUE_LOW_HZ, 0.4 * rate_hz), btype="high", fs=rate_hz,
                          output="sos")
        self._hp_zi: np.ndarray | None = None
        self._p_half = wobble_half_weight_power()
        self._bp_zi = np.zeros(max(len(self._bp[0]), len(self._bp[1])) - 1)
        lam = float(np.exp(-1.0 / (rate_hz * leak_s)))
        self._int = (np.array([1.0 / rate_hz]), np.array([1.0, -lam]))
        self._int_zi = np.zeros(1)
        self._decay = float(np.exp(-self.block_n / (rate_hz * forget_s)))
        self._A = np.zeros((N_FEATURES, N_FEATURES))
        self._c = np.zeros(N_FEATURES)
        self._w = np.zeros(N_FEATURES)
        prior = np.r_[np.full(N_QUADRATIC, ACC_ERROR_SIGMA_M_S2), np.full(3, LEVER_ARM_SIGMA_M)]
        self._ridge = np.diag((RESIDUAL_NOISE_M_S2 / prior) ** 2)
        self._prev_w: np.ndarray | None = None
        self._n = 0  # samples seen (block boundaries are global sample counts)
        self._blk_f: list[np.ndarray] = []  # the block under way, when it spans calls
        self._blk_y: list[np.ndarray] = []
        self._blk_wt: list[np.ndarray] = []
        self._blk_lifted = False  # ... and whether it flagged a lift so far
        self._run_n = 4  # whole blocks ``_run`` guesses at once (doubles while it guesses right)
        # lift state: 0 heel down, 1 lifted (rising or up), 2 lifted and coming down
        self._state = 0
        self._lift_n = 0
        self._quiet_n = 0
        self.refractory_n = int(round(1.0 * rate_hz))
        self.velocity_m_s = np.empty(0)  # last call's vertical velocity, for plots and tuning
        self._last_t: float | None = None  # device time of the last sample (for gaps)
        self._last_rest = False  # the last sample seen was at rest (a gap's first edge)
        self._blind = False  # after a long gap: no flags, no learning until back at rest
        self._blind_n = 0  # samples still to wait before rest may end the blind stretch
        self._warm_n = 0  # samples the residual's filters still run unwatched (after blind)
        self.watching = np.empty(0, dtype=bool)  # last call: False where the detector was blind
        self.gaps = 0  # restarts of the signal history (gaps in device time, sensor restarts)

    def restart(self, blind: bool = True, settle_s: float = 0.0) -> None:
        """The sensor restarted, or the link was down (a gap in device time): the signal
        history (filters, last ω, lift state) starts again from the next sample, at the
        error model's steady state (a zero residual), so the jump across the gap is no lift.
        The samples of the error model's block under way are dropped (the block spans the gap);
        the model itself, a property of the part and its mounting, is kept (a fresh one
        mistakes the first drives for lifts).

        ``blind``: the fused "up" after the gap cannot be trusted yet (the fusion bridged a
        long gap by interpolating the gyro, off by up to α·T²/8 during a drive, or started
        afresh from an accelerometer that was moving), and a residual built on it would both
        raise a lift and teach the error model a wrong one. So nothing is flagged or learnt
        until the shin is next back at rest (``at_rest``) after ``settle_s`` (the fusion's error
        decaying, ``settle_after_gap_s``); the signal history starts there."""
        self._blind = blind
        self._blind_n = int(round(settle_s * self.rate_hz)) if blind else 0
        self._bp_zi = np.zeros_like(self._bp_zi)
        self._int_zi = np.zeros_like(self._int_zi)
        self._lp_zi = None
        self._hp_zi = None
        self._prev_w = None
        self._state, self._lift_n, self._quiet_n = 0, 0, 0
        self._blk_f, self._blk_y, self._blk_wt, self._blk_lifted = [], [], [], False
        self.gaps += 1

    def residual_vertical(self, gyr: np.ndarray, acc: np.ndarray, up: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Vertical specific force not explained by rotation about the ankle, minus g, in the
        bone's band; with the error model's features (quadratic in "up", lever arm), the
        filtered rate and each sample's weight (``wobble_half_weight_power``)."""
        from scipy.signal import sosfilt, sosfilt_zi

        if self._hp_zi is None:  # steady state at the first sample: no step into the filter
            self._hp_zi = sosfilt_zi(self._hp)[:, :, None] * acc[0][None, None, :]
        hf, self._hp_zi = sosfilt(self._hp, acc, axis=0, zi=self._hp_zi)
        # the 8 channels side by side, one row each: sosfilt filters along rows (it copies to
        # that layout anyway), so the (n, 8) view it returns is the one column_stack's gave.
        # Each row is written from 1-D columns: a sum over 3 columns adds them left to right,
        # so these are the floats of ``((acc - offset) * up).sum(axis=1)`` and the like
        rows = np.empty((8, len(acc)))
        (g0, g1, g2), (a0, a1, a2), (u0, u1, u2) = gyr.T, acc.T, up.T
        (b0, b1, b2), (o0, o1, o2) = self.bias, self.acc_offset
        rows[0], rows[1], rows[2] = g0 - b0, g1 - b1, g2 - b2
        rows[3] = (a0 - o0) * u0 + (a1 - o1) * u1 + (a2 - o2) * u2
        rows[4:7] = up.T
        h0, h1, h2 = hf.T  # rows of sosfilt's own (3, n) output
        rows[7] = h0 * h0 + h1 * h1 + h2 * h2
        if self._lp_zi is None:
            self._lp_zi = sosfilt_zi(self._lp)[:, :, None] * rows[:, 0][None, None, :]
        x, self._lp_zi = sosfilt(self._lp, rows.T, axis=0, zi=self._lp_zi)
        w, au, u = x[:, :3], x[:, 3], x[:, 4:7]
        weight = self._p_half / (self._p_half + np.maximum(x[:, 7], 0.0))
        prev = w[:1] if self._prev_w is None else self._prev_w
        # ω̇ per channel on the filter's contiguous rows: (w[i] − w[i−1])·rate, as np.diff gives
        dw_rows = np.empty((3, len(w)))
        for i in range(3):
            wi = x.T[i]
            dw_rows[i, 0] = (wi[0] - prev[0, i]) * self.rate_hz
            np.multiply(wi[1:] - wi[:-1], self.rate_hz, out=dw_rows[i, 1:])
        dw = dw_rows.T
        self._prev_w = w[-1:].copy()
        lever = _lever_features(w, dw, u)
        y = au - lever @ self.r - GRAVITY_M_S2
        return y, _features(u, lever), w, weight

    def update(self, gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, up: np.ndarray,
               at_rest: np.ndarray | None = None, t_s: np.ndarray | None = None) -> np.ndarray:
        """Heel-lift flags for the next samples (``up``: world up in the sensor frame).

        ``at_rest`` (optional, per sample): the shin is back near vertical, so a lift whose
        rise has settled is over. ``t_s`` (optional): the samples' device times; after a gap
        (a step of more than 1.5 sample intervals, found against the last sample seen, so the
        batch split does not matter) the signal history starts again (``restart``): ω̇ across
        the gap, and the filters' memory of the motion before it, would make a lift of it.
        After a gap longer than ``MAX_GAP_IN_REP_S`` (one a scored rep may not contain) the
        detector is also blind until the shin is back at rest (see ``restart``)."""
        gyr, acc = np.asarray(gyr_rad_s, float), np.asarray(acc_m_s2, float)
        up = np.asarray(up, float)
        rest = np.zeros(len(gyr), dtype=bool) if at_rest is None \
            else np.asarray(at_rest, dtype=bool)
        if t_s is None or len(t_s) == 0:
            return self._update(gyr, acc, up, rest, np.zeros(len(gyr), dtype=bool))
        t = np.asarray(t_s, dtype=float)
        known = t <= self.heel_down_until_s
        prev = t[0] if self._last_t is None else self._last_t
        self._last_t = float(t[-1])
        step = np.diff(np.concatenate([[prev], t]))
        cuts = np.flatnonzero(step > 1.5 / self.rate_hz)
        long_gap = step - 1.0 / self.rate_hz > max_gap_in_rep_s()
        prev_rest = self._last_rest
        self._last_rest = bool(rest[-1])
        if len(cuts) == 0:
            return self._update(gyr, acc, up, rest, known)
        out, vel, watch = [], [], []
        for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(t)]]),
                        strict=True):
            if a in cuts and b > a:
                lost = float(step[a]) - 1.0 / self.rate_hz
                still = bool(rest[a]) and (prev_rest if a == 0 else bool(rest[a - 1]))
                self.restart(blind=bool(long_gap[a]),
                             settle_s=settle_after_gap_s(lost, self.rate_hz, still))
            out.append(self._update(gyr[a:b], acc[a:b], up[a:b], rest[a:b], known[a:b]))
            vel.append(self.velocity_m_s)
            watch.append(self.watching)
        self.velocity_m_s = np.concatenate(vel)
        self.watching = np.concatenate(watch)
        return np.concatenate(out)

    def _update(self, gyr: np.ndarray, acc: np.ndarray, up: np.ndarray, rest: np.ndarray,
                known: np.ndarray) -> np.ndarray:
        n = len(gyr)
        self.watching = np.ones(n, dtype=bool)
        if n == 0:
            self.velocity_m_s = np.empty(0)
            return np.empty(0, dtype=bool)
        if self._blind:  # after a long gap: nothing flagged or learnt until settled, at rest
            wait = min(n, self._blind_n)
            self._blind_n -= wait
            later = rest[wait:]
            k = wait + (int(np.argmax(later)) if later.any() else len(later))
            self._n += k
            if k < n:
                self.restart(blind=False)
                self.gaps -= 1  # the same gap
                self._warm_n = int(round(LOWPASS_WARM_S * self.rate_hz))
            return self._unwatched(k, gyr, acc, up, rest, known)
        if self._warm_n:
            return self._warm_up(gyr, acc, up, rest, known)
        from scipy.signal import lfilter
        y, f, _, weight = self.residual_vertical(gyr, acc, up)
        n, bn = len(y), self.block_n
        flags = np.empty(n, dtype=bool)
        vel = np.empty(n)
        # chunks end on global block boundaries: the fit changes only there
        cuts = np.r_[0, np.arange(bn - self._n % bn, n, bn), n]
        gram = self._grams(f, y, weight, cuts)
        c, m = 0, len(cuts) - 1
        while c < m:
            i, j = int(cuts[c]), int(cuts[c + 1])
            if j - i == bn and self._n % bn == 0 and self._n > 0 and c + 1 < m:
                c = self._run(c, cuts, y, f, weight, rest, known, gram, flags, vel)
                continue
            e = (y[i:j] - f[i:j] @ self._w) * weight[i:j]
            if self._n == 0:  # the very first sample: no model yet, start at its residual
                from scipy.signal import lfilter_zi
                self._bp_zi = lfilter_zi(*self._bp) * e[0]
            bp, self._bp_zi = lfilter(*self._bp, e, zi=self._bp_zi)
            v, self._int_zi = lfilter(*self._int, bp, zi=self._int_zi)
            vel[i:j] = v
            fl = self._states(v, rest[i:j]) & ~known[i:j]
            flags[i:j] = fl
            if known[j - 1]:  # heel down by protocol: no lift carried out of it
                self._state, self._lift_n, self._quiet_n = 0, 0, 0
            self._n += j - i
            lifted = bool(fl.any())
            c += 1
            if j - i == bn and self._n % bn == 0:  # a whole block: its sums are in ``_grams``
                self._learn(None if lifted else (gram[c - 1, :, :N_FEATURES],
                                                 gram[c - 1, :, N_FEATURES]))
                continue
            self._blk_f.append(f[i:j])  # a block spanning calls (or cut by a restart)
            self._blk_y.append(y[i:j])
            self._blk_wt.append(weight[i:j])
            self._blk_lifted = self._blk_lifted or lifted
            if self._n % bn == 0:
                self._refit()
        self.velocity_m_s = vel
        return flags

    def _warm_up(self, gyr: np.ndarray, acc: np.ndarray, up: np.ndarray, rest: np.ndarray,
                 known: np.ndarray) -> np.ndarray:
        """The first ``LOWPASS_WARM_S`` after a blind stretch: the residual's filters run, nothing
        is flagged, learnt or band-passed (that starts after, from a zero residual)."""
        m = min(len(gyr), self._warm_n)
        self._warm_n -= m
        self.residual_vertical(gyr[:m], acc[:m], up[:m])
        self._n += m
        return self._unwatched(m, gyr, acc, up, rest, known)

    def _unwatched(self, k: int, gyr: np.ndarray, acc: np.ndarray, up: np.ndarray,
                   rest: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Flags for a call whose first ``k`` samples the detector did not watch (blind, or its
        filters warming up: no flag, zero velocity), the rest through ``_update``."""
        flags = np.zeros(k, dtype=bool)
        vel, watch = np.zeros(k), np.zeros(k, dtype=bool)
        if k < len(gyr):
            flags = np.concatenate([flags, self._update(gyr[k:], acc[k:], up[k:], rest[k:],
                                                        known[k:])])
            vel = np.concatenate([vel, self.velocity_m_s])
            watch = np.concatenate([watch, self.watching])
        self.velocity_m_s, self.watching = vel, watch
        return flags

    def _run(self, c: int, cuts: np.ndarray, y: np.ndarray, f: np.ndarray, weight: np.ndarray,
             rest: np.ndarray, known: np.ndarray, gram: np.ndarray,
             flags: np.ndarray, vel: np.ndarray) -> int:
        """Whole blocks ``c, c+1, …`` at once; the next chunk to do.

        Each block's residual needs the fit of the blocks before it, and a block with a lift
        is not learnt from, so the blocks depend on each other through the flags. The run
        guesses the flags (every block learnt from when no lift is under way at its start,
        none while one is), fits the blocks' models from that guess (one batched solve),
        filters and judges all of its samples in one go (the filters and the lift states carry
        their state exactly, whatever the split), and keeps the blocks up to the first one
        the guess got wrong: the same numbers as block by block, to the last bit
        (``tests/detect/test_heel_blocks.py``)."""
        from scipy.signal import lfilter

        bn, m = self.block_n, len(cuts) - 1
        d = min(m - 1, c + self._run_n)  # whole blocks only (the last chunk may be partial)
        ends_known = known[cuts[c + 1:d + 1] - 1]
        if ends_known.any():  # the lift state is reset after such a block: end the run there
            d = c + 1 + int(np.argmax(ends_known))
        k = d - c
        learn = self._state == 0  # the guess: a lift under way keeps the blocks out of the fit
        ws = np.empty((k, N_FEATURES))
        ws[0] = self._w
        As = cs = fits = ws  # (bound for the type checker; set below when blocks are learnt)
        if learn:
            # the model [A | c] after each block, the last one's too (what ``_learn`` would
            # make of it if it is kept and learnt from): decay·[A | c] + its sums, in place
            acs = np.empty((k, N_FEATURES, N_FEATURES + 1))
            ac = np.concatenate([self._A, self._c[:, None]], axis=1)
            for q in range(k):
                ac = np.multiply(ac, self._decay, out=acs[q])
                ac += gram[c + q]
            As, cs = acs[..., :N_FEATURES], acs[..., N_FEATURES]
            # one batched solve: the same LAPACK call per block as ``_learn``'s, the same bits
            fits = np.linalg.solve(As + self._ridge, cs[..., None])[..., 0]
            ws[1:] = fits[:-1]
        else:
            ws[1:] = self._w
        a, b = int(cuts[c]), int(cuts[d])
        f3 = f[a:b].reshape(k, bn, N_FEATURES)
        e = ((y[a:b].reshape(k, bn) - (f3 @ ws[..., None])[..., 0]) * weight[a:b].reshape(k, bn)
             ).reshape(-1)
        st = self._state, self._lift_n, self._quiet_n
        bp, bp_zi = lfilter(*self._bp, e, zi=self._bp_zi)
        v, int_zi = lfilter(*self._int, bp, zi=self._int_zi)
        fl = self._states(v, rest[a:b]) & ~known[a:b]
        lifted = np.asarray(fl.reshape(k, bn).any(axis=1))
        wrong = np.flatnonzero(lifted[:-1] == learn)  # the guess for the next block's fit
        if len(wrong) == 0:
            self._bp_zi, self._int_zi = bp_zi, int_zi
            keep = k
            self._run_n = min(64, 2 * self._run_n)
        else:  # keep the blocks up to the wrong guess; their filters' and states' end again
            keep = int(wrong[0]) + 1
            b = a + keep * bn
            self._state, self._lift_n, self._quiet_n = st
            bp, self._bp_zi = lfilter(*self._bp, e[:keep * bn], zi=self._bp_zi)
            v, self._int_zi = lfilter(*self._int, bp, zi=self._int_zi)
            self._states(v, rest[a:b])
            self._run_n = 4
        vel[a:b] = v[:b - a]
        flags[a:b] = fl[:b - a]
        if known[b - 1]:  # heel down by protocol: no lift carried out of it
            self._state, self._lift_n, self._quiet_n = 0, 0, 0
        self._n += b - a
        if learn and not lifted[keep - 1]:
            # every block learnt from, as guessed (a wrong guess kept a lifted block last):
            # the model after the last one is the run's
            self._A, self._c, self._w = As[keep - 1].copy(), cs[keep - 1].copy(), fits[keep - 1]
            return c + keep
        if learn and keep > 1:  # the blocks before the last kept were guessed right
            self._A, self._c, self._w = As[keep - 2].copy(), cs[keep - 2].copy(), ws[keep - 1]
        q = c + keep - 1
        self._learn(None if lifted[keep - 1] else (gram[q, :, :N_FEATURES],
                                                   gram[q, :, N_FEATURES]))
        return c + keep

    def _grams(self, f: np.ndarray, y: np.ndarray, weight: np.ndarray, cuts: np.ndarray
               ) -> np.ndarray:
        """Per chunk of ``cuts`` that is a whole block: its weighted sums ``[fwᵀf | fwᵀy]``,
        (m, N_FEATURES, N_FEATURES + 1) (stacked matmuls: one BLAS call per block and sum, as
        ``_refit``'s, equal to the last bit); zeros for the other chunks."""
        m = len(cuts) - 1
        gram = np.zeros((m, N_FEATURES, N_FEATURES + 1))
        bn = self.block_n
        whole = np.flatnonzero(np.diff(cuts) == bn)
        if len(whole) == 0:
            return gram
        a, b = int(cuts[whole[0]]), int(cuts[whole[-1] + 1])  # whole blocks are consecutive
        k = (b - a) // bn
        f3 = f[a:b].reshape(k, bn, N_FEATURES)
        fw3 = np.swapaxes(f3 * weight[a:b].reshape(k, bn)[..., None], 1, 2)
        g = gram[whole[0]:whole[-1] + 1]
        g[..., :N_FEATURES] = fw3 @ f3
        g[..., N_FEATURES] = (fw3 @ y[a:b].reshape(k, bn)[..., None])[..., 0]
        return gram

    def _learn(self, sums: tuple[np.ndarray, np.ndarray] | None) -> None:
        """A block has ended: fold its sums into the error model (None: it had a lift, and is
        kept out)."""
        if sums is None:
            return
        self._A = self._decay * self._A + sums[0]
        self._c = self._decay * self._c + sums[1]
        self._w = np.linalg.solve(self._A + self._ridge, self._c)

    def _refit(self) -> None:
        """The end of a block whose samples came in several calls."""
        f, y = np.concatenate(self._blk_f), np.concatenate(self._blk_y)
        wt, lifted = np.concatenate(self._blk_wt), self._blk_lifted
        self._blk_f, self._blk_y, self._blk_wt, self._blk_lifted = [], [], [], False
        if lifted:
            return  # a lift in this block: keep it out of the error model
        fw = f * wt[:, None]  # weighted least squares: each sample by its noise (``weight``)
        self._learn((fw.T @ f, fw.T @ y))

    def _states(self, v: np.ndarray, at_rest: np.ndarray) -> np.ndarray:
        """Lift state machine over the velocity; a loop over threshold crossings only.

        The band-pass makes every step of the ankle's height a pair of lobes: the rise is
        ``+`` then ``−`` (undershoot), the return ``−`` then ``+``. States: 0 heel down;
        1 rising (``v > v_on``); 2 undershoot; 3 heel held up; 4 coming down; 5 overshoot;
        then down again, with ``refractory_n`` samples before a new lift can start (the filters
        ring). A lift also ends after ``max_lift_s``, or when the shin is back at rest
        (``at_rest``) once the rise has settled.
        """
        out = np.empty(len(v), dtype=bool)
        on, i, n = self.v_on_m_s, 0, len(v)
        while i < n:
            st = self._state
            if st == 0:
                start = min(n, i + self._quiet_n)
                self._quiet_n -= start - i
                out[i:start] = False
                i = start
                if i >= n:
                    break
            seg = v[i:]  # the state's exit condition (only that one is evaluated)
            if st == 0:
                cond = seg > on
            elif st == 1:
                cond = seg < -0.5 * on
            elif st == 2:
                cond = seg > -0.2 * on
            elif st == 3:
                cond = (seg < -on) | at_rest[i:]
            elif st == 4:
                cond = seg > 0.2 * on
            else:
                cond = seg < 0.2 * on
            if st:
                left = max(0, self.max_lift_n - self._lift_n)
                if left < len(cond):
                    cond[left] = True
            first = int(np.argmax(cond))  # 0 when none holds: then told by cond[0]
            j = i + first if cond[first] else n
            out[i:j] = st != 0
            if st:
                self._lift_n += j - i
            if j < n:
                if st == 0:
                    self._state, self._lift_n = 1, 0
                elif st == 5 or self._lift_n >= self.max_lift_n or (st == 3 and at_rest[j]):
                    self._state, self._quiet_n = 0, self.refractory_n
                else:
                    self._state = st + 1
                out[j] = self._state != 0
                if self._state:
                    self._lift_n += 1
                j += 1
            i = j
        return out
