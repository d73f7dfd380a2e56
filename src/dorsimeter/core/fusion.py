"""Orientation from gyroscope and accelerometer with VQF (6D, no magnetometer).

Only inclination matters for the tibia angle, so what the rest of the core uses is the direction
of "up" in the sensor frame, which does not depend on the (arbitrary) heading.

Fusion is VQF with its published defaults (chosen by its authors on the whole BROAD benchmark;
we tune nothing), fed one correction that follows from how VQF integrates. VQF applies each gyro
sample over the interval that ends at that sample. So its state is the orientation at the *end*
of the interval when samples are interval averages (the chip's decimation filter), and half a
sample after the sample's instant when they are point samples. Either way, the accelerometer
sample sits half a sample earlier than the state. :func:`interval_aligned_acc` turns each
accelerometer sample by the half-step rotation (−ω·Δt/2) so that both refer to the same
instant. It is per-sample (no state), so
batch splits do not matter. On the simulator (which samples that way) it removes most of the
fusion error during movement; on BROAD it lowers the error of the fast trials. Offline
re-analysis is offline VQF (non-causal, with its global bias estimate) on the same aligned data.
"""

from __future__ import annotations

import numpy as np
from vqf import VQF, offlineVQF

#: VQF's published defaults (the fusion's settings; ``warm_start`` switches two off and back)
_VQF_DEFAULTS = VQF(0.01).params


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def estimate_orientation(
    gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, rate_hz: float, offline: bool = False,
    rest_bias: bool = True,
) -> np.ndarray:
    """(N,4) quaternions [w,x,y,z], sensor to an earth frame with z up (heading arbitrary);
    ``rest_bias`` (offline): as in :func:`smoothed_orientation`."""
    gyr, acc = _c(gyr_rad_s), _c(acc_m_s2)
    if offline:
        return smoothed_orientation(gyr, acc, rate_hz, rest_bias)
    return VQF(1.0 / rate_hz).updateBatch(gyr, interval_aligned_acc(gyr, acc, rate_hz))["quat6D"]


def interval_aligned_acc(gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, rate_hz: float
                         ) -> np.ndarray:
    """Accelerometer samples moved from the middle to the end of their sample interval:
    ``a − (ω·Δt/2) × a`` (a world-fixed vector turns by −ω in the body frame). Element-wise."""
    g = np.asarray(gyr_rad_s, dtype=float) * (0.5 / rate_hz)
    a = np.asarray(acc_m_s2, dtype=float)
    if len(a) == 0:
        return _c(a.reshape(0, 3))
    out = np.empty((len(a), 3))  # C order, written column by column
    out[:, 0] = a[:, 0] - (g[:, 1] * a[:, 2] - g[:, 2] * a[:, 1])
    out[:, 1] = a[:, 1] - (g[:, 2] * a[:, 0] - g[:, 0] * a[:, 2])
    out[:, 2] = a[:, 2] - (g[:, 0] * a[:, 1] - g[:, 1] * a[:, 0])
    return out


def smoothed_orientation(gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, rate_hz: float,
                         rest_bias: bool = True) -> np.ndarray:
    """Offline (non-causal) orientation: offline VQF on interval-aligned accelerometer data.
    ``rest_bias`` False: VQF estimates no gyro bias at rest (a clip on a standing person's
    shin, the stance's bias already taken out: every rest sways, see
    ``StreamingFusion.remove_bias``)."""
    gyr = _c(gyr_rad_s)
    acc = interval_aligned_acc(gyr, acc_m_s2, rate_hz)
    if len(gyr) < 2:
        return VQF(1.0 / rate_hz).updateBatch(gyr, acc)["quat6D"]
    params = None if rest_bias else {"restBiasEstEnabled": False}
    return offlineVQF(gyr, acc, None, 1.0 / rate_hz, params)["quat6D"]


def up_in_sensor(quat_wxyz: np.ndarray) -> np.ndarray:
    """World "up" (z) expressed in the sensor frame, for unit sensor-to-world quaternions.

    This is the third row of the rotation matrix, written out element-wise: unlike a batched
    ``Rotation.apply`` it gives bit-identical values whatever the batch size, which is what
    makes live and re-analysed readings equal. ``test_fusion`` checks it against scipy.
    """
    w, x, y, z = np.asarray(quat_wxyz, dtype=float).reshape(-1, 4).T
    out = np.empty((len(w), 3))  # C order, written column by column
    out[:, 0] = 2.0 * (x * z - w * y)
    out[:, 1] = 2.0 * (y * z + w * x)
    out[:, 2] = 1.0 - 2.0 * (x * x + y * y)
    return out


def fill_gaps(t_s: np.ndarray, gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, rate_hz: float,
              max_gap_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gyr, acc, index of the original samples) with lost samples (steps over 1.5 intervals)
    filled by linear interpolation, so fusion sees a regular stream.

    Only gaps up to ``max_gap_s`` (default ``MAX_BRIDGE_S``, as live fusion bridges) are
    filled; a longer one (the link was down, the clock jumped) is left as it is, so the filled
    stream is never sized by a time span: memory stays bounded for any timestamp."""
    t = np.asarray(t_s, dtype=float)
    n = len(t)
    if n < 2:
        return gyr_rad_s, acc_m_s2, np.arange(n)
    limit = (MAX_BRIDGE_S if max_gap_s is None else max_gap_s) * rate_hz
    steps = np.diff(t) * rate_hz
    with np.errstate(invalid="ignore"):
        fill = (steps > 1.5) & (steps - 1.0 <= limit + 0.5)
    missing = np.zeros(n - 1, dtype=np.int64)
    missing[fill] = np.maximum(np.round(steps[fill]).astype(np.int64) - 1, 0)
    pos = np.concatenate([[0], np.cumsum(missing + 1)])  # index of each original sample
    if pos[-1] == n - 1:
        return gyr_rad_s, acc_m_s2, np.arange(n)
    grid = np.arange(pos[-1] + 1)
    g = np.column_stack([np.interp(grid, pos, gyr_rad_s[:, k]) for k in range(3)])
    a = np.column_stack([np.interp(grid, pos, acc_m_s2[:, k]) for k in range(3)])
    return g, a, pos


#: Peak angular jerk of the fastest rep the protocols ask for: a minimum-jerk drive of θ in D
#: seconds peaks at 60·θ/D³, and a lunge or band-mobilisation rep reaches 40° in about 1 s.
DRIVE_PEAK_JERK_DEG_S3 = 60.0 * 40.0 / 1.0**3
#: What bridging a gap may cost the orientation: half the live end-range p95 target (0.5°).
BRIDGE_ERROR_DEG = 0.25
#: Gaps up to this long (lost packets) are bridged by interpolated samples; after a longer one
#: the filter restarts from the accelerometer, keeping its gyro bias estimate. A linearly
#: interpolated rate misses ∫(ω − ω_lin) = J·T³/12 of rotation over a gap of T (J the angular
#: jerk), so T = (12·BRIDGE_ERROR_DEG / J)^(1/3) ≈ 0.11 s: one or two lost BLE packets of 5
#: samples at 100 Hz are bridged, a longer loss restarts. A restart costs little (VQF takes
#: "up" from the mean of the accelerometer in its gyro-carried frame, the lever arm taken out),
#: while a bridged 1 s gap in a drive misses up to 20° that VQF's 3 s ``tauAcc`` then carries
#: into the next hold. Measured (all shin effects, 4 athletes, one gap in a rep's rise, worst
#: hold error): wall drives bridged 0.43/0.42/0.72/16.6° after 0.1/0.2/0.3/1 s, restarted
#: 0.45° throughout (1.07° at 1 s); lunges bridged 0.64/0.90/4.5° after 0.1/0.15/0.3 s,
#: restarted 0.59-0.62°.
MAX_BRIDGE_S = float((12.0 * BRIDGE_ERROR_DEG / DRIVE_PEAK_JERK_DEG_S3) ** (1.0 / 3.0))


#: The stance's gyro bias (``mounting.stance_gyro_bias``: the drift of gravity de-rotated by the
#: gyro, fitted over the 1.5 s of stance the calibrator keeps) has a noise of
#: d·√(6/T³) per axis: a slope over N = rate·T samples of direction noise d·√(rate/2). For the
#: loosest accelerometer we support (MPU-6500, d = 300 µg/√Hz) that is 0.023 °/s; twice that
#: is how far VQF's rest estimate may differ from it and still be a still stance's.
STANCE_BIAS_NOISE_RAD_S = 2.0 * 300e-6 * float(np.sqrt(6.0 / 1.5**3))


class StreamingFusion:
    """VQF fed batch by batch; any split of the same stream gives identical quaternions.

    With timestamps, samples missing from the stream (lost BLE packets: a step of more than 1.5
    sample intervals) are bridged before the sample after the gap: linearly interpolated gyro
    and accelerometer samples are fused and their outputs dropped, so the rotation during the
    gap is not simply lost. Gaps are found against the carried last timestamp, so the result
    does not depend on how the stream was split."""

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self._vqf = VQF(1.0 / rate_hz)
        self._last: tuple[float, np.ndarray, np.ndarray] | None = None
        self.bridged_samples = 0
        self.restarts = 0  # fresh starts: after a long gap, or told by ``restart``
        self.rest_bias = True  # VQF estimates gyro bias at rest (until ``remove_bias``)

    def remove_bias(self, bias_rad_s: np.ndarray) -> None:
        """From the next sample on, the gyro comes with ``bias_rad_s`` already removed: the
        stance's bias, fitted so that gravity stays still once the gyro de-rotates it
        (``mounting.stance_gyro_bias``), which a swaying stance does not fool.

        VQF's own estimate is set to zero (its uncertainty kept) rather than shifted: VQF
        estimates bias at rest, and a "still" stance that sways at 0.05-0.6 Hz passes its rest
        test, so what it learned there is partly the sway's rate. A bias beyond what VQF can
        estimate (its estimate is clipped at ``biasClip``, 2 °/s) has tilted the orientation so
        far, so then VQF starts afresh (orientation from the next accelerometer sample). When
        VQF's own estimate agrees with the stance's within ``STANCE_BIAS_NOISE_RAD_S`` (a still
        stance), VQF keeps its finer estimate instead.

        From then on VQF does not estimate bias at rest (``rest_bias``): the clip is on a
        standing person's shin, and every standing rest sways like the stance did. Over a
        rest between sets VQF's rest estimator took the sway's mean rate as bias (0.4 °/s on
        a simulated athlete: a tilt of about bias · tauAcc, 1.2°, for the rest of the session).
        Its motion estimator, which the accelerometer's tilt corrects, follows the drift."""
        self.rest_bias = False
        self._vqf.setRestBiasEstEnabled(False)
        b = np.asarray(bias_rad_s, dtype=float)
        clip = np.radians(float(self._vqf.params["biasClip"]))
        if np.max(np.abs(b)) > 0.75 * clip:
            self._vqf.resetState()
            return
        # A stance that was really still: VQF's rest estimate (over every rest so far) agrees
        # with the stance's within the stance fit's own noise, and is the finer one; keep what
        # it knows beyond the stance's. A swaying stance moves it further than that.
        learnt, _ = self._vqf.getBiasEstimate()
        residual = np.asarray(learnt, dtype=float) - b
        agree = bool(np.max(np.abs(residual)) <= STANCE_BIAS_NOISE_RAD_S)
        self._vqf.setBiasEstimate(residual if agree else np.zeros(3), -1.0)

    def restart(self) -> None:
        """The orientation is unknown from the next sample on (the sensor rebooted, or the link
        was down too long): VQF starts afresh from the next accelerometer sample, keeping its
        gyro bias estimate (the same part, the same bias), and nothing is bridged to the
        samples before. Call it between two ``update`` calls; the split stays irrelevant."""
        self.reset_orientation()
        self._last = None
        self.restarts += 1

    def reset_orientation(self) -> None:
        """VQF's orientation taken afresh from the next accelerometer sample, its gyro bias
        estimate kept; gaps are still bridged against the samples before. For when the inputs
        change meaning (the accelerometer's offset is found): a filter that has settled on the
        old inputs would take 10 s or more to drift to the new ones."""
        bias, sigma = self._vqf.getBiasEstimate()
        self._vqf.resetState()
        self._vqf.setBiasEstimate(bias, sigma)

    def warm_start(self, gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, t_s: np.ndarray) -> None:
        """Like ``reset_orientation``, but the fresh filter is first run over the given samples
        (the ones just before the next, with the inputs as they are fused from now on; outputs
        dropped), so it starts settled on them instead of on the next sample alone.

        A freshly reset VQF takes "up" from a running mean of its first accelerometer samples,
        weighing the first fully: started on a sample in a drive, or on a clip still wobbling
        after the knee met the wall (up to 5 g at 12-25 Hz), it is tens of degrees off and
        takes several ``tauAcc`` (3 s) to settle. The gyro bias estimate is held through the
        warm-up (VQF's bias estimation off there, the estimate and its uncertainty as before,
        then at rest only if ``rest_bias``):
        the samples are the stance and drives, and a swaying stance passes VQF's rest test,
        so what it would learn there is partly the sway's rate (``remove_bias``). Counters
        (restarts, bridged samples) are the stream's and stay as they were; no samples: the
        same as ``reset_orientation``."""
        restarts, bridged = self.restarts, self.bridged_samples
        self.reset_orientation()
        if len(t_s):
            vqf = self._vqf
            bias, sigma = vqf.getBiasEstimate()
            vqf.setMotionBiasEstEnabled(False)
            vqf.setRestBiasEstEnabled(False)
            self._last = None
            self.update(gyr_rad_s, acc_m_s2, t_s)
            vqf.setMotionBiasEstEnabled(_VQF_DEFAULTS["motionBiasEstEnabled"])
            vqf.setRestBiasEstEnabled(self.rest_bias)
            vqf.setBiasEstimate(bias, sigma)
        self.restarts, self.bridged_samples = restarts, bridged

    def _step(self, gyr: np.ndarray, acc: np.ndarray) -> np.ndarray:
        if len(gyr) == 0:
            return np.empty((0, 4))
        return self._vqf.updateBatch(gyr, interval_aligned_acc(gyr, acc, self.rate_hz))["quat6D"]

    def update(self, gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray,
               t_s: np.ndarray | None = None) -> np.ndarray:
        """(n,4) quaternions [w,x,y,z] for the next n samples (``t_s``: device times)."""
        if len(gyr_rad_s) == 0:
            return np.empty((0, 4))
        gyr, acc = _c(gyr_rad_s), _c(acc_m_s2)
        if t_s is None:
            return self._step(gyr, acc)
        t = np.asarray(t_s, dtype=float)
        prev = self._last
        last = (float(t[-1]), gyr[-1].copy(), acc[-1].copy())
        dt = 1.0 / self.rate_hz
        steps = np.diff(t) if prev is None else np.diff(np.concatenate([[prev[0]], t]))
        gaps = np.flatnonzero(steps > 1.5 * dt) + (1 if prev is None else 0)
        if len(gaps) == 0:
            self._last = last
            return self._step(gyr, acc)
        out, start = [], 0
        for i in gaps:  # a gap before sample i of this batch
            out.append(self._step(gyr[start:i], acc[start:i]))
            if i > 0:
                t0, g0, a0 = float(t[i - 1]), gyr[i - 1], acc[i - 1]
            else:
                # a gap before sample 0 is only found against the previous batch's last sample
                assert prev is not None
                t0, g0, a0 = prev
            m = int(round((t[i] - t0) * self.rate_hz)) - 1
            if m * dt <= MAX_BRIDGE_S:
                f = (np.arange(1, m + 1) / (m + 1))[:, None]
                self._step(_c(g0 + f * (gyr[i] - g0)), _c(a0 + f * (acc[i] - a0)))
                self.bridged_samples += m
            else:
                self.restart()
            start = i
        out.append(self._step(gyr[start:], acc[start:]))
        self._last = last
        return np.concatenate(out)
