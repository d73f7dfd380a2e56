"""Hysteresis flags, vectorised: the switch shared by the rep and heel-lift detectors."""

from __future__ import annotations

import numpy as np


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
