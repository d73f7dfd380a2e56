"""Heel-lift detection from three sources: heel switch, foot IMU, or the shank IMU alone.

Every detector is streaming (state carried between calls, any batch split gives the same
flags) and vectorised: numpy and ``scipy.signal.lfilter`` with carried filter state, with a
Python loop only over threshold crossings.

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
  with a forgetting time of minutes, removes that part.
"""

from __future__ import annotations

import numpy as np

from dorsimeter.types import GRAVITY_M_S2

HEEL_SWITCH = "heel_switch"
FOOT_IMU = "foot_imu"
SHANK_IMU = "shank_imu"
NO_SOURCE = "none"
#: Heel-lift sources, best first: the monitor uses the best one the data offer.
SOURCES = (HEEL_SWITCH, FOOT_IMU, SHANK_IMU)
#: the sources as a person says them (the monitor, summaries, the report); files keep the codes
SPOKEN = {HEEL_SWITCH: "heel switch", FOOT_IMU: "foot sensor", SHANK_IMU: "shin sensor",
          NO_SOURCE: "not checked"}


def hysteresis(x: np.ndarray, on: float, off: float, state: bool) -> tuple[np.ndarray, bool]:
    """Flags that turn on when ``x > on`` and off when ``x < off`` (``off <= on``)."""
    out = np.empty(len(x), dtype=bool)
    i, n = 0, len(x)
    while i < n:
        cond = (x[i:] < off) if state else (x[i:] > on)
        j = i + int(np.argmax(cond)) if cond.any() else n
        out[i:j] = state
        if j < n:
            state = not state
            out[j] = state
            j += 1
        i = j
    return out, state


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
        from dorsimeter.core.fusion import StreamingFusion  # here: core imports the detectors

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

    def update(self, acc_m_s2: np.ndarray, gyr_rad_s: np.ndarray) -> np.ndarray:
        from dorsimeter.core.fusion import up_in_sensor

        up = up_in_sensor(self.fusion.update(gyr_rad_s, acc_m_s2))
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


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise a × b, element-wise (faster than np.cross on short arrays; split-invariant)."""
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def _quadratic_features(up: np.ndarray) -> np.ndarray:
    x, y, z = up.T
    return np.column_stack([x, y, z, x * x, y * y, z * z, x * y, x * z, y * z])


class ShankLiftDetector:
    """Heel lift from the shank IMU alone: vertical ankle velocity unexplained by rotation.

    ``lever_arm_m`` is the ankle-to-sensor vector in the sensor frame (from calibration);
    ``gyr_bias_rad_s`` the gyro bias at rest. A lift starts when the band-passed, integrated
    residual (``velocity_m_s``) exceeds ``v_on_m_s``; it ends once the heel has come down
    again (a downward velocity pulse, then quiet) or after ``max_lift_s``.
    """

    source = SHANK_IMU

    def __init__(self, rate_hz: float, lever_arm_m, gyr_bias_rad_s=(0.0, 0.0, 0.0),
                 v_on_m_s: float = 0.010, band_hz: tuple[float, float] = (0.3, 4.0),
                 leak_s: float = 0.5, forget_s: float = 120.0, block_n: int | None = None,
                 max_lift_s: float = 6.0) -> None:
        self.rate_hz = rate_hz
        self.r = np.asarray(lever_arm_m, dtype=float).reshape(3)
        self.bias = np.asarray(gyr_bias_rad_s, dtype=float).reshape(3)
        self.v_on_m_s = v_on_m_s
        self.max_lift_n = int(round(max_lift_s * rate_hz))
        self.block_n = block_n or max(1, int(round(1.0 * rate_hz)))
        from scipy.signal import butter  # imported here: scipy.signal costs ~1 s of CLI start-up

        self._bp = butter(2, band_hz, btype="band", fs=rate_hz)
        self._bp_zi = np.zeros(max(len(self._bp[0]), len(self._bp[1])) - 1)
        lam = float(np.exp(-1.0 / (rate_hz * leak_s)))
        self._int = (np.array([1.0 / rate_hz]), np.array([1.0, -lam]))
        self._int_zi = np.zeros(1)
        self._decay = float(np.exp(-self.block_n / (rate_hz * forget_s)))
        self._A = np.zeros((9, 9))
        self._c = np.zeros(9)
        self._w = np.zeros(9)
        self._ridge = 1e-2 * np.eye(9)
        self._prev_w: np.ndarray | None = None
        self._n = 0  # samples seen (block boundaries are global sample counts)
        self._blk_f: list[np.ndarray] = []
        self._blk_y: list[np.ndarray] = []
        self._blk_ok: list[np.ndarray] = []
        # lift state: 0 heel down, 1 lifted (rising or up), 2 lifted and coming down
        self._state = 0
        self._lift_n = 0
        self._quiet_n = 0
        self.refractory_n = int(round(1.0 * rate_hz))
        self.velocity_m_s = np.empty(0)  # last call's vertical velocity, for plots and tuning

    def restart(self) -> None:
        """The sensor restarted: the signal history (filters, last ω, lift state) starts
        again, so the jump in the signals is no lift; the error model, a property of the part
        and its mounting, is kept (a fresh one mistakes the first drives for lifts)."""
        self._bp_zi = np.zeros_like(self._bp_zi)
        self._int_zi = np.zeros_like(self._int_zi)
        self._prev_w = None
        self._state, self._lift_n, self._quiet_n = 0, 0, 0

    def residual_vertical(self, gyr: np.ndarray, acc: np.ndarray, up: np.ndarray) -> np.ndarray:
        """Vertical specific force not explained by rotation about the ankle, minus g."""
        w = gyr - self.bias
        prev = w[:1] if self._prev_w is None else self._prev_w
        alpha = np.diff(np.vstack([prev, w]), axis=0) * self.rate_hz
        self._prev_w = w[-1:].copy()
        r = self.r
        pred = _cross(alpha, r) + _cross(w, _cross(w, r))
        a = acc - pred
        return a[:, 0] * up[:, 0] + a[:, 1] * up[:, 1] + a[:, 2] * up[:, 2] - GRAVITY_M_S2

    def update(self, gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, up: np.ndarray,
               at_rest: np.ndarray | None = None) -> np.ndarray:
        """Heel-lift flags for the next samples (``up``: world up in the sensor frame).

        ``at_rest`` (optional, per sample): the shin is back near vertical, so a lift whose
        rise has settled is over."""
        from scipy.signal import lfilter
        y = self.residual_vertical(np.asarray(gyr_rad_s, float), np.asarray(acc_m_s2, float), up)
        f = _quadratic_features(up)
        n = len(y)
        flags = np.empty(n, dtype=bool)
        vel = np.empty(n)
        rest = np.zeros(n, dtype=bool) if at_rest is None else np.asarray(at_rest, dtype=bool)
        i = 0
        while i < n:  # chunks end on global block boundaries: the fit changes only there
            j = min(n, i + self.block_n - self._n % self.block_n)
            e = y[i:j] - f[i:j] @ self._w
            bp, self._bp_zi = lfilter(*self._bp, e, zi=self._bp_zi)
            v, self._int_zi = lfilter(*self._int, bp, zi=self._int_zi)
            vel[i:j] = v
            flags[i:j] = self._states(v, rest[i:j])
            self._blk_f.append(f[i:j])
            self._blk_y.append(y[i:j])
            self._blk_ok.append(~flags[i:j])
            self._n += j - i
            if self._n % self.block_n == 0:
                self._refit()
            i = j
        self.velocity_m_s = vel
        return flags

    def _refit(self) -> None:
        f, y = np.concatenate(self._blk_f), np.concatenate(self._blk_y)
        ok = np.concatenate(self._blk_ok)
        self._blk_f, self._blk_y, self._blk_ok = [], [], []
        if not ok.all():
            return  # a lift in this block: keep it out of the error model
        self._A = self._decay * self._A + f.T @ f
        self._c = self._decay * self._c + f.T @ y
        self._w = np.linalg.solve(self._A + self._ridge, self._c)

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
            seg = v[i:]
            cond = {0: seg > on, 1: seg < -0.5 * on, 2: seg > -0.2 * on,
                    3: (seg < -on) | at_rest[i:], 4: seg > 0.2 * on, 5: seg < 0.2 * on}[st]
            if st:
                left = max(0, self.max_lift_n - self._lift_n)
                cond = cond.copy()
                if left < len(cond):
                    cond[left] = True
            j = i + int(np.argmax(cond)) if cond.any() else n
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
