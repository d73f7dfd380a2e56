"""Offline re-analysis: the whole recording at once, for a more accurate (non-causal) reading.

With the mounting known for each side, the rotational acceleration about the ankle and the
accelerometer offset the drives found are removed from every sample (calibration phase
included, with a central-difference ω̇), the calibration's flexion gyro gain is applied when
the whole recording agrees with it (:func:`recording_flexion_gain`), and the
orientation comes from :func:`dorsimeter.core.fusion.smoothed_orientation`. The quaternions
then go through the same :class:`~dorsimeter.pipeline.pipeline.Pipeline` as live data.

:func:`offline_chunks` is the data flow for a recording of any length: each gap-free stretch
fused in overlapping windows (their middles kept), memory bounded by one window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
from vqf import VQF

from dorsimeter.core.fusion import MAX_BRIDGE_S, estimate_orientation, fill_gaps
from dorsimeter.core.lever_arm import flexion_scaled, lowpassed, rotational_acc
from dorsimeter.core.mounting import MountingCalibration, carried_rotations
from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.io.rawcsv import RawRecording


def offline_orientation(gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, rate_hz: float,
                        side: np.ndarray | None = None,
                        calibrations: dict[str, MountingCalibration] | None = None,
                        sensor_cal: SensorCalibration | None = None,
                        lever_arm: bool = True, t_s: np.ndarray | None = None,
                        restart: np.ndarray | None = None) -> np.ndarray:
    """(N,4) [w,x,y,z] for a whole recording: sensor correction, lever-arm compensation per
    side (``side``: per-sample side names), gaps filled (with ``t_s``), non-causal fusion.

    ``restart`` (per sample, from the raw CSV): the sensor restarted just before that sample,
    so nothing before it says anything about the orientation after it; each stretch between
    restarts is fused on its own, as live. So is each stretch between link gaps longer than
    the live fusion's bridge limit: gaps are facts, not rotation to interpolate (and a clock
    jump never becomes a grid of made-up samples)."""
    starts = stretch_starts(len(gyr_rad_s), rate_hz, t_s, restart)
    if len(starts):
        bounds = [0, *starts.tolist(), len(gyr_rad_s)]
        return np.concatenate([offline_orientation(
            gyr_rad_s[a:b], acc_m_s2[a:b], rate_hz, None if side is None else side[a:b],
            calibrations, sensor_cal, lever_arm, None if t_s is None else t_s[a:b])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    acc = np.asarray(acc_m_s2, dtype=float)
    gyr = np.asarray(gyr_rad_s, dtype=float)
    if sensor_cal is not None:
        acc, gyr = sensor_cal.apply(acc, gyr)
    n = len(gyr)
    sides = None if side is None else np.asarray(side, dtype=object)
    idx = np.arange(n)
    if t_s is not None:  # a regular stream first, so that ω̇ has no spikes at the gaps
        gyr, acc, idx = fill_gaps(t_s, gyr, acc, rate_hz)
        if sides is not None and len(gyr) != n:
            sides = sides[np.searchsorted(idx, np.arange(len(gyr)))]
    if lever_arm and calibrations and len(gyr) > 2:
        dgyr = np.gradient(gyr, 1.0 / rate_hz, axis=0)
        acc, gyr = acc.copy(), gyr.copy()
        if sides is None:
            sides = np.full(len(gyr), next(iter(calibrations)), dtype=object)
        for name, cal in calibrations.items():
            m = sides == name
            if not np.any(m):
                continue
            if any(cal.lever_arm_m):
                acc[m] -= rotational_acc(gyr[m] - np.asarray(cal.gyr_bias_rad_s), dgyr[m],
                                         cal.lever_arm)
            acc[m] -= np.asarray(cal.acc_offset_m_s2)  # the offset the drives found, as live
            gyr[m] -= np.asarray(cal.gyr_bias_rad_s)  # the stance's bias, as live
            gain = cal.flexion_gyr_gain
            if gain != 1.0 and gain_agrees(gain, recording_flexion_gain(gyr, acc, rate_hz,
                                                                        cal, m)):
                gyr[m] = flexion_scaled(gyr[m], cal.y_axis, gain)
    # with a calibration the clip is on a shin and the stance's bias is out: no bias learnt at
    # the rests, which sway (as live, ``StreamingFusion.remove_bias``)
    return estimate_orientation(gyr, acc, rate_hz, offline=True,
                                rest_bias=not calibrations)[idx]


#: "Still" for the gain check: the low-passed rate below what quiet-stance sway reaches
#: (0.6° at 0.6 Hz: 0.04 rad/s) with margin and far below a drive's (40° in 1-2 s: about
#: 1 rad/s at its peak); sway is rotation, so the gyro and the accelerometer both see it.
STILL_RAD_S = 0.1
#: and its angular acceleration below a drive's start or stop (sway: 0.15 rad/s²)
STILL_RAD_S2 = 1.0
#: a still window long enough that the clip's wobble (12-25 Hz, under 3 % after 3 rise times
#: of at most 1.5 cycles: 0.4 s) has died out in most of it and the window mean averages the rest
MIN_STILL_S = 0.5
#: a transition between two still windows counts when it turned the flexion this far (as the
#: calibration's gain fit asks of its still moments)
MIN_TRANSITION_RAD = float(np.radians(10.0))


def recording_flexion_gain(gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, rate_hz: float,
                           cal: MountingCalibration, mine: np.ndarray | None = None
                           ) -> tuple[float, float] | None:
    """(slope, its standard error) of the accelerometer's flexion change against the gyro's
    between consecutive still windows of the whole recording, or None when fewer than four
    transitions of ``MIN_TRANSITION_RAD`` are found.

    ``gyr_rad_s``: without the stance's bias; ``acc_m_s2``: without the calibration's offset
    and the rotational acceleration about the ankle; ``mine``: the samples of ``cal``'s side
    (a transition with another side's samples in it is not one).
    Every rep moves from a still rest to a still hold and back, so a recording holds tens of
    such transitions where the calibration's drives hold a few still moments. Per window the
    mean flexion reading (``cal.angles_deg``) of the accelerometer and of the previous
    window's gravity carried by the gyro (the same reading of both, so the oblique axis and
    the tibia's axial rotation do not pass for a scale error); the differences of consecutive
    windows are fitted as ``Δθ_acc = s·Δθ_gyr + β·Δt`` (β: what is left of the bias about
    the flexion axis, which adds to up and down transitions alike while the scale changes sign
    with them)."""
    w = np.asarray(gyr_rad_s, dtype=float)
    if len(w) < 3:
        return None
    wl = lowpassed(w, rate_hz)
    dwl = np.gradient(wl, 1.0 / rate_hz, axis=0)
    a = np.asarray(acc_m_s2, dtype=float)
    still = (np.linalg.norm(wl, axis=1) < STILL_RAD_S) & (
        np.linalg.norm(dwl, axis=1) < STILL_RAD_S2)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], still.astype(np.int8), [0]])))
    wins = [(i, j) for i, j in zip(edges[::2], edges[1::2], strict=True)
            if j - i >= MIN_STILL_S * rate_hz]
    if len(wins) < 2:
        return None

    def angle(v: np.ndarray) -> float:  # mean flexion reading of directions (radians)
        u = v / np.linalg.norm(v, axis=1)[:, None]
        return float(np.radians(np.mean(cal.angles_deg(u)[0])))

    da, dg, dt = [], [], []
    for (i0, j0), (i1, j1) in zip(wins[:-1], wins[1:], strict=True):
        if mine is not None and not np.all(mine[i0:j1]):
            continue
        # each sample's frame -> window A's first (only the span of the two windows: memory
        # stays bounded by the longest transition, whatever the recording's length)
        rots = carried_rotations(w[i0:j1], rate_hz)
        na, nb = j0 - i0, i1 - i0
        # window A's gravity, carried by the gyro through both windows
        g0 = np.einsum("kij,kj->i", rots[:na], a[i0:j0])
        carried = np.concatenate([np.einsum("kji,j->ki", rots[:na], g0),
                                  np.einsum("kji,j->ki", rots[nb:], g0)])
        da.append(angle(a[i1:j1]) - angle(a[i0:j0]))
        dg.append(angle(carried[na:]) - angle(carried[:na]))
        dt.append(0.5 * (i1 + j1 - i0 - j0) / rate_hz)
    da, dg, dt = np.asarray(da), np.asarray(dg), np.asarray(dt)
    keep = np.abs(dg) > MIN_TRANSITION_RAD
    n = int(keep.sum())
    if n < 4:
        return None
    design = np.column_stack([dg[keep], dt[keep]])
    sol = np.linalg.lstsq(design, da[keep], rcond=None)[0]
    e = da[keep] - design @ sol
    cov = np.linalg.inv(design.T @ design) * float(e @ e) / (n - 2)
    return float(sol[0]), float(np.sqrt(cov[0, 0]))


def gain_agrees(gain: float, fit: tuple[float, float] | None) -> bool:
    """Whether the calibration's flexion gain stands against the whole recording's ``fit``
    (slope, standard error): it does unless the recording puts it further from its own slope
    than no gain (1.0) is, by more than 1.96 standard errors; with nothing to judge by
    (``fit`` None) it stands.

    The calibration fits the gain on the drives' few still moments, where sway and wobble can
    fake several per cent; a gain 3 % off costs 0.5° at a 40° hold offline, more than the
    gyro's own scale error (about 1 % on the parts we support) costs there (offline VQF carries
    only part of a hold by gyro: about 0.15° at 40°). Of the two candidates the recording's
    tens of transitions pick the nearer, so the check is never worse than not fitting."""
    if fit is None:
        return True
    slope, se = fit
    return abs(gain - slope) <= max(abs(1.0 - slope), 1.96 * se)


def stretch_starts(n: int, rate_hz: float, t_s: np.ndarray | None = None,
                   restart: np.ndarray | None = None) -> np.ndarray:
    """Indices (≥ 1) of the samples that begin a new gap-free stretch of ``n``: right after a
    sensor restart, or after a link gap longer than the live fusion's bridge limit
    (``MAX_BRIDGE_S``). Offline fusion runs on each stretch on its own."""
    cut = np.zeros(n, dtype=bool)
    if restart is not None:
        cut[1:] |= np.asarray(restart, dtype=bool)[1:]
    if t_s is not None and n > 1:
        cut[1:] |= np.diff(np.asarray(t_s, dtype=float)) - 1.0 / rate_hz > MAX_BRIDGE_S
    return np.flatnonzero(cut)


def _vqf_param(name: str) -> float:
    return float(VQF(0.01).params[name])


#: How long offline VQF remembers: its gyro-bias Kalman filter. In motion it settles at the
#: variance (biasSigmaMotion)² that its process noise adds in ``biasForgettingTime``, so its
#: gain is Ts/biasForgettingTime a sample: what it knew of the horizontal bias decays with a
#: time constant of biasForgettingTime (100 s); at rest (biasSigmaRest, 0.03 °/s) 9 s. Its
#: orientation (tauAcc, 3 s: the accelerometer's low-pass, run forwards and backwards) and
#: rest detection (restMinT, 1.5 s) forget faster.
BIAS_TAU_S = _vqf_param("biasForgettingTime")
#: A window's edge starts VQF's passes afresh: its bias estimate may differ by up to twice
#: ``biasClip`` (2 °/s, each estimate is clipped there) from the whole stretch's, and a bias
#: error b tilts the output by about b·tauAcc. Down to 0.001° that takes
#: ln(2·2 °/s · 3 s / 0.001°) = 9.4 time constants: 10, 1000 s, on both sides of what is kept.
#: The bias about the vertical VQF barely estimates in motion (biasVerticalForgettingFactor
#: 1e-4: a time constant of ~11 h; only rests pin it), so there the window and the whole
#: stretch differ by what each makes of an unobserved quantity, tilting the shin only as far
#: as it leans: 0.0034° of tibia angle at most, every rep's score within 0.0016°, in a
#: continuous 60 min realistic shin recording at 200 Hz (``bench_memory --windows``); 500 s of
#: overlap 0.026° of up direction, 1000 s 0.018°, 1500 s 0.015° before the calibration.
WINDOW_OVERLAP_S = 10.0 * BIAS_TAU_S
#: What each window keeps (its middle): every sample is fused (2·overlap + keep)/keep = 4.3
#: times, and a window holds (2·1000 + 600) s · rate of samples (520,000 at 200 Hz, ~180 MB
#: with the fusion's working arrays).
WINDOW_KEEP_S = 600.0

Orientation = Callable[..., np.ndarray]


def offline_chunks(chunks: Iterable[RawRecording], rate_hz: float,
                   calibrations: dict[str, MountingCalibration] | None = None,
                   sensor_cal: SensorCalibration | None = None, lever_arm: bool = True,
                   keep_s: float = WINDOW_KEEP_S, overlap_s: float = WINDOW_OVERLAP_S,
                   orientation: Orientation | None = None) -> Iterator[RawRecording]:
    """A recording read in chunks, out again in pieces with their offline quaternions (``quat``):
    :func:`offline_orientation` in bounded memory, whatever the recording's length.

    Each gap-free stretch (``stretch_starts``) is fused in overlapping windows: a window holds
    ``overlap_s`` before and after the ``keep_s`` it keeps, except at the stretch's own ends
    (there the stretch starts or ends, as in the whole-stretch fusion). A stretch up to
    ``keep_s + overlap_s`` long is one window: exactly the whole-stretch result; a longer one
    differs where VQF's estimators still remember the window's edge (``WINDOW_OVERLAP_S``).
    The pieces come in order, every sample once; memory holds one window's samples.
    ``orientation`` stands in for offline_orientation (tests)."""
    orient = offline_orientation if orientation is None else orientation
    keep = max(1, int(round(keep_s * rate_hz)))
    over = max(0, int(round(overlap_s * rate_hz)))
    buf: RawRecording | None = None  # from the next window's first sample on
    done = 0  # buf[:done] went out already: the next window's context before what it keeps

    def window(stop: int, upto: int) -> RawRecording:
        assert buf is not None
        w = buf.slice(0, stop)
        q = orient(w.gyr_rad_s, w.acc_m_s2, rate_hz, w.side, calibrations, sensor_cal,
                   lever_arm, t_s=w.t_s, restart=w.restart)
        out = buf.slice(done, upto)
        out.quat = np.array(q[done:upto])
        return out

    def drain(final: bool) -> Iterator[RawRecording]:
        nonlocal buf, done
        while buf is not None and len(buf) > done:
            starts = stretch_starts(len(buf), rate_hz, buf.t_s, buf.restart)
            starts = starts[starts >= max(done, 1)]
            end = int(starts[0]) if len(starts) else (len(buf) if final else None)
            if end is not None and end - done <= keep + over:  # the stretch's last window
                if end > done:
                    yield window(end, end)
                buf, done = buf.slice(end, len(buf)), 0  # a new stretch: no context before
                continue
            if end is None and len(buf) - done < keep + over:
                return  # wait for more samples
            upto = done + keep
            yield window(upto + over, upto)
            start = max(0, upto - over)
            buf, done = buf.slice(start, len(buf)), upto - start

    for chunk in chunks:
        buf = chunk if buf is None else RawRecording.concat([buf, chunk])
        yield from drain(final=False)
    yield from drain(final=True)
