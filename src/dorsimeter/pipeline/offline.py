"""Offline re-analysis: the whole recording at once, for a more accurate (non-causal) reading.

With the mounting known for each side, the rotational acceleration about the ankle and the
accelerometer offset the drives found are removed from every sample (calibration phase
included, with a central-difference ω̇), and the
orientation comes from :func:`dorsimeter.core.fusion.smoothed_orientation`. The quaternions
then go through the same :class:`~dorsimeter.pipeline.pipeline.Pipeline` as live data.
"""

from __future__ import annotations

import numpy as np

from dorsimeter.core.fusion import MAX_BRIDGE_S, estimate_orientation, fill_gaps
from dorsimeter.core.lever_arm import flexion_scaled, rotational_acc
from dorsimeter.core.mounting import MountingCalibration
from dorsimeter.core.sensor_cal import SensorCalibration


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
    cut = np.zeros(len(gyr_rad_s), dtype=bool)
    if restart is not None:
        cut[1:] |= np.asarray(restart, dtype=bool)[1:]
    if t_s is not None and len(t_s) > 1:
        cut[1:] |= np.diff(np.asarray(t_s, dtype=float)) - 1.0 / rate_hz > MAX_BRIDGE_S
    starts = np.flatnonzero(cut)
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
