"""Sample rates: the range dorsimeter supports, and the rate and regularity of a stream's clock.

Every stage takes its rate from the stream (``Source.rate_hz`` live, the median interval of a
recording); nothing assumes 100 Hz. Rates outside 10 Hz–1 kHz are refused: below 10 Hz a 1 s
hold is under ten samples and the heel detector's band (0.3–4 Hz) no longer fits under the
Nyquist frequency; above 1 kHz no body-worn IMU streams over BLE or our serial link. A clock
whose intervals are not whole multiples of one interval (jitter, host timestamps) is refused
too: hold times, rates of change and gap bridging all count intervals.
"""

from __future__ import annotations

import numpy as np

from dorsimeter.errors import DorsimeterError

MIN_RATE_HZ = 10.0
MAX_RATE_HZ = 1000.0
#: an interval counts as regular within this fraction of a whole number of intervals
JITTER_TOLERANCE = 0.25
#: a clock is irregular when more than this fraction of its intervals are not regular
IRREGULAR_FRACTION = 0.05
#: a step longer than this many intervals is a gap (link lost), not a clock irregularity
GAP_INTERVALS = 20


def rate_problem(rate_hz: float) -> str | None:
    """Why ``rate_hz`` is not supported (None: it is)."""
    if not np.isfinite(rate_hz) or not MIN_RATE_HZ - 0.005 <= rate_hz <= MAX_RATE_HZ + 0.005:
        return (f"sample rate {rate_hz:g} Hz is outside the supported {MIN_RATE_HZ:g}–"
                f"{MAX_RATE_HZ:g} Hz")
    return None


def check_rate_hz(rate_hz: float, what: str) -> float:
    """``rate_hz`` when supported, else a DorsimeterError naming ``what`` (one line)."""
    problem = rate_problem(float(rate_hz))
    if problem is not None:
        raise DorsimeterError(f"{what}: {problem}")
    return float(rate_hz)


def median_interval_s(t_s: np.ndarray) -> float:
    """The stream's sample interval: the median step of its device times."""
    return float(np.median(np.diff(np.asarray(t_s, dtype=float))))


def stream_rate_hz(t_s: np.ndarray) -> float:
    """Sample rate from the median interval, rounded to 0.01 Hz (as recordings state it)."""
    return round(1.0 / median_interval_s(t_s), 2)


def irregular_intervals(t_s: np.ndarray, interval_s: float) -> int:
    """How many steps of ``t_s`` are not a whole number (≥ 1) of ``interval_s`` within
    ``JITTER_TOLERANCE``. Lost samples (steps of 2, 3, … intervals) are regular, and so is any
    step over ``GAP_INTERVALS`` intervals: a link gap, whatever its fraction."""
    return irregular_steps(np.diff(np.asarray(t_s, dtype=float)), interval_s)


def irregular_steps(steps_s: np.ndarray, interval_s: float) -> int:
    """``irregular_intervals`` from the time steps themselves (in blocks: bounded memory)."""
    bad = 0
    for i in range(0, len(steps_s), 1 << 20):
        steps = steps_s[i:i + (1 << 20)] / interval_s
        with np.errstate(over="ignore", invalid="ignore"):
            k = np.maximum(np.round(steps), 1.0)
            off = (np.abs(steps - k) > JITTER_TOLERANCE) & (steps <= GAP_INTERVALS)
        bad += int(np.count_nonzero(off))
    return bad


def clock_problem(t_s: np.ndarray) -> str | None:
    """Why the clock ``t_s`` (strictly increasing) cannot be analysed: an unsupported rate or
    irregular intervals; None when it can."""
    if len(t_s) < 2:
        return None
    steps = np.diff(np.asarray(t_s, dtype=float))
    return steps_problem(steps, float(np.median(steps)))


def steps_problem(steps_s: np.ndarray, interval_s: float) -> str | None:
    """``clock_problem`` from the time steps and their median ``interval_s``."""
    problem = rate_problem(round(1.0 / interval_s, 2))
    if problem is not None:
        return problem
    bad = irregular_steps(steps_s, interval_s)
    if bad > IRREGULAR_FRACTION * len(steps_s):
        return (f"irregular clock: {bad} of {len(steps_s)} sample intervals are not a whole "
                f"number of the median interval {interval_s * 1e3:.4g} ms (device time expected)")
    return None
