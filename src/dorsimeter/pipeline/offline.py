"""Offline re-analysis: the whole recording at once, for a more accurate (non-causal) reading.

With the mounting known for each side, the rotational acceleration about the ankle and the
accelerometer offset the drives found are removed from every sample (calibration phase
included, with a central-difference ω̇), and the
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
from dorsimeter.core.lever_arm import flexion_scaled, rotational_acc
from dorsimeter.core.mounting import MountingCalibration
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
            if cal.flexion_gyr_gain != 1.0:
                gyr[m] = flexion_scaled(gyr[m], cal.y_axis, cal.flexion_gyr_gain)
    return estimate_orientation(gyr, acc, rate_hz, offline=True)[idx]


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
