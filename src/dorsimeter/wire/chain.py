"""Choosing packets among overlapping candidates, without a Python loop over them."""

from __future__ import annotations

import numpy as np


def greedy_chain(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Indices of the candidates a left-to-right scan accepts: the first one, then the first that
    starts at or after its end, and so on. ``starts`` ascending.

    Pointer doubling: the path of ``next`` pointers is built in log2(n) vectorised steps.
    """
    n = len(starts)
    if n < 2 or not np.any(starts[1:] < ends[:-1]):
        return np.arange(n)
    nxt = np.searchsorted(starts, ends, side="left")
    jump = np.append(nxt, n)  # sentinel n maps to itself
    path = np.array([0], dtype=np.int64)
    while True:
        ext = jump[path]
        ext = ext[ext < n]
        if not len(ext):
            break
        path = np.concatenate([path, ext])
        if ext[-1] == n or len(ext) < len(path) - len(ext):
            # the path ended inside this extension
            break
        jump = jump[jump]
    return path
