"""Simulated sensor-node byte streams with faults injected, for the reliability tests and benches.

The samples come from the shank simulator (with ground truth), framed by the wire encoder exactly
as the node frames them; faults are applied to the list of frames (loss, duplicates, reordering)
or to the device's counters (sequence/clock start, clock rate), never to the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dorsimeter.sim import ShankSim
from dorsimeter.types import ImuBatch
from dorsimeter.wire import frames as F


@dataclass
class NodeStream:
    """Frames of one node and the truth behind them."""

    frames: list[bytes]
    n_per_frame: np.ndarray  # samples in each frame
    seq: np.ndarray  # raw uint16 sequence number of each frame
    batch: ImuBatch  # the simulated samples, host (true) time, with truth


def node_stream(seconds: float, rate_hz: float = 100.0, per_frame: int = 4, seq0: int = 0,
                t0_us: int = 0, clock_ppm: float = 0.0, seed: int = 0, side: str = "left",
                sim: ShankSim | None = None) -> NodeStream:
    """``seconds`` of a wall test framed ``per_frame`` samples a frame (I16 encoding).

    ``clock_ppm``: the device clock runs fast by this many parts per million, so its timestamps
    (and its sample period, as the node measures it) drift against true time.
    """
    sim = sim or ShankSim(rate_hz=rate_hz, seed=seed, side=side)
    b = sim.generate(int(round(seconds * rate_hz)))
    scale = 1.0 + clock_ppm * 1e-6
    t_dev_us = np.rint(b.t_s * 1e6 * scale).astype(np.int64) + t0_us
    dt_us = int(round(1e6 / rate_hz * scale))
    out, n_per, seqs = [], [], []
    for k, i in enumerate(range(0, len(b), per_frame)):
        j = min(i + per_frame, len(b))
        seq = (seq0 + k) & 0xFFFF
        out.append(F.encode_data(seq, int(t_dev_us[i]), b.acc_m_s2[i:j], b.gyr_rad_s[i:j],
                                 dt_us=dt_us))
        n_per.append(j - i)
        seqs.append(seq)
    return NodeStream(out, np.array(n_per), np.array(seqs), b)


def gilbert_elliott(n: int, loss: float = 0.10, burst_len: float = 4.0,
                    seed: int = 0) -> np.ndarray:
    """Bursty loss: True where a packet is lost, ``loss`` on average in bursts of ``burst_len``.

    Two-state Markov chain (good: nothing lost, bad: everything lost), the classic model of a
    fading radio link.
    """
    rng = np.random.default_rng(seed)
    p_bad_to_good = 1.0 / burst_len
    p_good_to_bad = loss * p_bad_to_good / (1.0 - loss)
    u = rng.random(n)
    lost = np.zeros(n, dtype=bool)
    bad = False
    for i in range(n):
        bad = (u[i] >= p_bad_to_good) if bad else (u[i] < p_good_to_bad)
        lost[i] = bad
    return lost


def decode(decoder, chunks) -> list[ImuBatch]:
    """Feed every chunk (a notification, a serial read) and collect the batches."""
    out = []
    for c in chunks:
        out += [b for b in decoder.feed(c) if len(b)]
    return out


def cat(batches: list[ImuBatch], name: str) -> np.ndarray:
    parts = [getattr(b, name) for b in batches]
    return np.concatenate(parts) if parts else np.empty(0)
