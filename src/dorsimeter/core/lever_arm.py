"""Lever arm: the ankle-to-sensor vector and the rotational acceleration it adds to the accel.

With the heel down the ankle is a fixed pivot, so the specific force at the clip is
``a = ω̇ × r + ω × (ω × r) + g_sensor`` (plus the accelerometer's offset). Knee drives make ``ω``
and ``ω̇`` vary, which lets a least-squares fit find ``r`` and the offset, with gravity carried
from the stance by the gyro (:func:`fit_lever_arm_and_offset`). Removing
``ω̇ × r + ω × (ω × r)`` before fusion keeps dynamic movements (lunges) from tilting the estimate.

``ω̇`` is a causal three-point backward difference (second-order accurate at the newest sample)
with the last two gyro samples carried between batches, so any split of a stream gives the same
floats. All arithmetic is element-wise (no BLAS), which keeps it bit-identical for any batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np
from scipy.signal import savgol_filter


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise a × b written out element-wise (same floats for any number of rows)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


class AngularAcceleration:
    """Streaming ω̇ (rad/s²) from gyro samples: (3ω_n − 4ω_{n−1} + ω_{n−2}) / 2Δt.

    The first samples of a stream use the samples they have (zero, then a two-point
    difference), so the result depends on the stream only, not on how it was cut. With
    timestamps, a sample right after a gap (lost packets) gets the two-point difference over the
    real time step, and the one after it too: the uniform formula would turn the gap's change of
    rate into a spike of rotational acceleration."""

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = float(rate_hz)
        self._prev = np.empty((0, 3))  # up to the last two samples seen
        self._prev_t = np.empty(0)

    def update(self, gyr_rad_s: np.ndarray, t_s: np.ndarray | None = None) -> np.ndarray:
        """(n,3) ω̇ for the next n gyro samples (``t_s``: their device times, for gaps)."""
        n = len(gyr_rad_s)
        if n == 0:
            return np.empty((0, 3))
        k = len(self._prev)
        g = np.concatenate([self._prev, np.asarray(gyr_rad_s, dtype=float)]) if k else \
            np.asarray(gyr_rad_s, dtype=float)
        if t_s is not None:
            t = np.concatenate([self._prev_t, np.asarray(t_s, dtype=float)])
            self._prev_t = t[-2:].copy()
            out = self._uniform(g, k, n)
            if len(t) == len(g) > 1:
                step = np.diff(t)  # step[j] ends at sample j + 1 of g
                gap = step > 1.5 / self.rate_hz
                if np.any(gap):
                    after = np.flatnonzero(gap) + 1  # first sample after each gap
                    for j in np.unique(np.concatenate([after, after + 1])):
                        if k <= j < len(g) and j >= 1:
                            out[j - k] = (g[j] - g[j - 1]) / (t[j] - t[j - 1])
            return out
        return self._uniform(g, k, n)

    def _uniform(self, g: np.ndarray, k: int, n: int) -> np.ndarray:
        out = np.empty((n, 3))
        h = 0.5 * self.rate_hz
        # sample j of g (j ≥ 2) gets the three-point formula; the stream's first two do not
        first = max(2, k)
        out[first - k:] = (3.0 * g[first:] - 4.0 * g[first - 1:-1] + g[first - 2:-2]) * h
        if k == 0:
            out[0] = 0.0
            if n > 1:
                out[1] = (g[1] - g[0]) * self.rate_hz
        elif k == 1:
            out[0] = (g[1] - g[0]) * self.rate_hz
        self._prev = g[-2:].copy()
        return out


def rotational_acc(gyr_rad_s: np.ndarray, dgyr_rad_s2: np.ndarray, r_m: np.ndarray
                   ) -> np.ndarray:
    """ω̇ × r + ω × (ω × r) = ω̇ × r + ω (ω·r) − r |ω|²: the acceleration of the sensor about a
    fixed pivot (sensor frame). Element-wise with a constant ``r``."""
    rx, ry, rz = (float(v) for v in np.asarray(r_m, dtype=float))
    w = np.asarray(gyr_rad_s, dtype=float)
    d = np.asarray(dgyr_rad_s2, dtype=float)
    w0, w1, w2 = w[:, 0], w[:, 1], w[:, 2]
    d0, d1, d2 = d[:, 0], d[:, 1], d[:, 2]
    wr = w0 * rx + w1 * ry + w2 * rz
    ww = w0 * w0 + w1 * w1 + w2 * w2
    out = np.empty_like(w)
    out[:, 0] = (d1 * rz - d2 * ry) + w0 * wr - rx * ww
    out[:, 1] = (d2 * rx - d0 * rz) + w1 * wr - ry * ww
    out[:, 2] = (d0 * ry - d1 * rx) + w2 * wr - rz * ww
    return out


def smoothed_rates(gyr_rad_s: np.ndarray, rate_hz: float, window_s: float = 0.15
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Savitzky-Golay smoothed ω and ω̇ of a whole recorded stretch (for the fit, not live use).

    Differentiating gyro noise makes ω̇ noisy, and noise in a regressor shrinks a least-squares
    fit toward zero; smoothing over ``window_s`` (quadratic) removes that bias."""
    w = np.asarray(gyr_rad_s, dtype=float)
    win = max(3, int(round(window_s * rate_hz)) | 1)
    if len(w) < win:
        return w, np.zeros_like(w)
    # scipy's stubs widen savgol_filter's result to its array-API union; it is an ndarray here
    return (cast(np.ndarray, savgol_filter(w, win, 2, axis=0)),
            cast(np.ndarray, savgol_filter(w, win, 2, deriv=1, delta=1.0 / rate_hz, axis=0)))


#: knee drives and lunges move below 2 Hz; a clip on skin wobbles at 12-25 Hz after jolts
#: (the knee meeting the wall, a landing), 0.3-2 mm and 0.2-1.5°: tens of m/s² and hundreds of
#: °/s that have nothing to do with rotation about the ankle. Fits over whole recorded
#: stretches see them through this zero-phase low-pass.
FIT_LOWPASS_HZ = 4.0
#: Below 50 Hz that wobble is above Nyquist: the chip's interval average passes about a tenth
#: of it, aliased to 0-5 Hz where no low-pass can tell it from the drives (at 10 Hz it made a
#: 21 cm lever arm 28-31 cm and added 60 mg to the offset). It comes in episodes after jolts,
#: so the fit is made robust: Huber weights on each sample's residual (3-vector) norm, full
#: weight within ``HUBER_K`` times the residuals' median (about 3σ for Gaussian residuals, whose
#: norm has a median of 1.54σ: noise alone keeps full weight) and less beyond.
ROBUST_ITERATIONS = 3
HUBER_K = 2.0


def lowpassed(x: np.ndarray, rate_hz: float, cutoff_hz: float = FIT_LOWPASS_HZ) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth low-pass along axis 0 (a whole stretch at once, for
    fits; unchanged when too short to filter or the cutoff is above Nyquist)."""
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(x, dtype=float)
    if cutoff_hz >= 0.45 * rate_hz:
        return x
    # butter's return type covers every output=; "sos" always gives the (n, 6) array
    sos = cast(np.ndarray, butter(2, cutoff_hz, fs=rate_hz, output="sos"))
    if len(x) <= 3 * (2 * len(sos) + 1):
        return x
    return sosfiltfilt(sos, x, axis=0)


def flexion_scaled(gyr_rad_s: np.ndarray, axis: np.ndarray | tuple[float, float, float],
                   gain: float) -> np.ndarray:
    """``gyr`` with its component along the unit ``axis`` multiplied by ``gain`` (element-wise,
    so the same floats for any batch split)."""
    g = np.asarray(gyr_rad_s, dtype=float)
    ax, ay, az = (float(v) for v in axis)
    d = (g[:, 0] * ax + g[:, 1] * ay + g[:, 2] * az) * (gain - 1.0)
    return np.column_stack([g[:, 0] + d * ax, g[:, 1] + d * ay, g[:, 2] + d * az])


def _skew(v: np.ndarray) -> np.ndarray:
    """(N,3,3) matrices K with K @ r = v × r."""
    k = np.zeros(v.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2] = -v[..., 2], v[..., 1]
    k[..., 1, 0], k[..., 1, 2] = v[..., 2], -v[..., 0]
    k[..., 2, 0], k[..., 2, 1] = -v[..., 1], v[..., 0]
    return k


@dataclass(frozen=True)
class LeverArmFit:
    """Result of the lever-arm fit: ``r`` and the accelerometer offset (sensor frame)."""

    r_m: np.ndarray
    offset_m_s2: np.ndarray
    residual_m_s2: float  # RMS of what rotation about a fixed pivot does not explain
    explained: float  # share of the dynamic acceleration's variance the fit explains (0..1)
    n: int
    # the offset's covariance (sensor frame, (m/s²)²) from the residuals, counted as the
    # independent samples they hold (residuals correlated over many samples hold fewer)
    offset_cov: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    r_cov: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))  # the lever arm's

    @property
    def offset_sigma_m_s2(self) -> float:
        """1σ of the offset's size (the larger principal axis of its covariance)."""
        return float(np.sqrt(max(0.0, float(np.linalg.eigvalsh(self.offset_cov)[-1]))))


def fit_lever_arm_and_offset(gyr_rad_s: np.ndarray, dgyr_rad_s2: np.ndarray,
                             acc_m_s2: np.ndarray, rotations: np.ndarray,
                             acc_stance_m_s2: np.ndarray, basis: np.ndarray,
                             hinge_axis: np.ndarray | None = None,
                             t_since_stance_s: np.ndarray | None = None,
                             max_r_m: float = 0.6, rate_hz: float | None = None,
                             offset_basis: np.ndarray | None = None) -> LeverArmFit:
    """Lever arm ``r`` in the span of ``basis`` and accelerometer offset ``b`` in the span of
    ``offset_basis`` (``basis`` when not given), fitted together.

    Gravity in the sensor frame is not taken from the accelerometer. It is the stance's mean
    reading ``acc_stance`` (frame of the stance's first sample) turned by the gyro's rotations
    ``R_t``; or, per sample ((N,3): drives cut by link gaps), the still reading each sample's
    rotation starts from (a rest after the gap). The offset stays fixed in the sensor frame
    while gravity turns, so
    ``acc_t − R_tᵀ acc_stance = (K(ω̇) + K(ω)²) r + (I − R_tᵀ) b``.
    This is a multi-position calibration with the gyro measuring the positions. Only the offset's
    components across the rotation axis are observable, so ``basis`` is the sagittal plane (tibia
    x and z) and ``offset_basis`` the plane across the flexion axis (tibia x and z made
    perpendicular to the axis: on an oblique ankle the sagittal plane is not that plane, and
    an offset fitted in it would take up part of what the drives cannot see).

    The gyro bias comes from a stance of a second or two. A residual bias ``β`` about the
    ``hinge_axis`` turns the carried gravity by ``β t``, which grows with the time since the
    stance, whereas an offset depends on the angle. Drives forward and back revisit the same
    angles at different times, which tells the two apart. So with ``t_since_stance_s`` given,
    ``β`` is fitted too: its term is ``−β t (y × R_tᵀ acc_stance)``. Otherwise 0.01 °/s of
    residual bias over a 10 s calibration would pass for a 3 mg offset.

    The fit trusts the gyro's scale. Over a 40° drive, a gyro scale error looks almost exactly
    like an offset along gravity, so the data cannot split the two. The datasheets decide. A
    1 % gyro sensitivity error costs 0.4° at 40°. A 20 mg offset costs about 0.7° there, and
    every part we support has sensitivity errors and offsets in about that ratio.

    With ``rate_hz``, both sides are low-passed (``lowpassed``) before the fit. The fit is
    iteratively reweighted (``ROBUST_ITERATIONS``, ``HUBER_K``): samples the rigid model leaves
    far more than the rest (the clip's wobble after a jolt) count less."""
    gyr = np.asarray(gyr_rad_s, dtype=float)
    rt = np.transpose(np.asarray(rotations, dtype=float), (0, 2, 1))
    n = len(gyr)
    bas = np.asarray(basis, dtype=float)
    bas_b = bas if offset_basis is None else np.asarray(offset_basis, dtype=float)
    k, kb = len(bas), len(bas_b)
    if n < 10:
        return LeverArmFit(np.zeros(3), np.zeros(3), float("nan"), 0.0, n)
    anchor = np.asarray(acc_stance_m_s2, dtype=float)
    g_t = rt @ anchor if anchor.ndim == 1 else np.einsum("kij,kj->ki", rt, anchor)
    dyn = np.asarray(acc_m_s2, dtype=float) - g_t
    kw = _skew(gyr)
    cols = [(_skew(np.asarray(dgyr_rad_s2, dtype=float)) + kw @ kw) @ bas.T,
            (np.eye(3)[None] - rt) @ bas_b.T]
    if hinge_axis is not None and t_since_stance_s is not None:
        y = np.broadcast_to(np.asarray(hinge_axis, dtype=float), g_t.shape)
        cols.append((-np.asarray(t_since_stance_s, dtype=float)[:, None]
                     * np.cross(y, g_t))[..., None])
    design = np.concatenate(cols, axis=2)
    if rate_hz is not None:
        # the same linear filter on both sides keeps the rigid model's equation exact and
        # takes out the clip's wobble (``FIT_LOWPASS_HZ``)
        design, dyn = lowpassed(design, rate_hz), lowpassed(dyn, rate_hz)
    design0 = design.reshape(n * 3, -1)
    rhs0 = dyn.reshape(-1)
    wts = np.ones(n)
    sol = np.zeros(design0.shape[1])
    for it in range(ROBUST_ITERATIONS + 1):
        if it:
            e = np.sqrt(np.sum((rhs0 - design0 @ sol).reshape(n, 3) ** 2, axis=1))
            scale = float(np.median(e))
            wts = np.minimum(1.0, HUBER_K * scale / np.maximum(e, 1e-300))
        sw = np.repeat(np.sqrt(wts), 3)
        design, rhs = design0 * sw[:, None], rhs0 * sw
        lhs = design.T @ design
        m = lhs.shape[0]
        for lo, hi in ((0, k), (k, k + kb), (k + kb, m)):  # a light ridge per block
            if hi > lo:
                lhs[lo:hi, lo:hi] += (1e-6 * np.trace(lhs[lo:hi, lo:hi]) / (hi - lo) + 1e-12) * \
                    np.eye(hi - lo)
        sol = np.linalg.solve(lhs, design.T @ rhs)
    r, off = sol[:k] @ bas, sol[k:k + kb] @ bas_b
    norm = float(np.linalg.norm(r))
    if norm > max_r_m:
        r = r * (max_r_m / norm)
    res = rhs - design @ np.concatenate([r @ bas.T, sol[k:]])
    centred = dyn - dyn.mean(axis=0)
    var = float(np.mean(centred**2))
    resid = float(np.sqrt(np.mean(res**2)))
    explained = 0.0 if var <= 0 else max(0.0, 1.0 - resid**2 / var)
    # the offset's uncertainty: residual variance over the independent samples (AR(1) count
    # n (1 − ρ)/(1 + ρ) per axis: what the model does not explain, sway, wobble, a gyro scale
    # error, lasts many samples), through the normal equations
    e = res.reshape(n, 3)
    rho = float(np.clip(np.sum(e[1:] * e[:-1]) / max(np.sum(e * e), 1e-300), 0.0, 0.999))
    n_eff = max(3.0 * n * (1.0 - rho) / (1.0 + rho), m + 1.0)
    sigma2 = float(np.sum(res**2)) / max(3.0 * n - m, 1.0)
    cov_sol = np.linalg.inv(lhs) * sigma2 * (3.0 * n / n_eff)
    off_cov = bas_b.T @ cov_sol[k:k + kb, k:k + kb] @ bas_b
    return LeverArmFit(r, off, resid, explained, n, off_cov, bas.T @ cov_sol[:k, :k] @ bas)
