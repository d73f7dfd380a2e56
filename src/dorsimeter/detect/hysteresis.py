"""Hysteresis flags, vectorised: the switch shared by the rep and heel-lift detectors."""

from __future__ import annotations

import numpy as np


def hysteresis(x: np.ndarray, on: float, off: float, state: bool) -> tuple[np.ndarray, bool]:
    """Flags that turn on when ``x > on`` and off when ``x < off`` (``off <= on``).

    Each sample's two tests are made once, for the whole array; the switch then walks the
    samples where one holds (a binary search per switch), so the work is the samples plus the
    switches, not the samples times the switches. A flag changes at the sample that switched it
    (NaN switches nothing)."""
    x = np.asarray(x)
    n = len(x)
    rises, falls = np.flatnonzero(x > on), np.flatnonzero(x < off)
    switched = np.zeros(n, dtype=bool)
    flag, i = state, 0
    while True:
        where = falls if flag else rises
        p = int(np.searchsorted(where, i))  # the first sample at or after i that switches
        if p == len(where):
            break
        j = int(where[p])
        switched[j] = True
        flag, i = not flag, j + 1
    out = np.logical_xor.accumulate(switched) if n else switched
    return (~out if state else out), flag
