"""``Pipeline.set_rate``: the stream's rate, taken before its first batch, never changed under a
stream whose fusion and detectors hold state at the old rate."""

from __future__ import annotations

import numpy as np
import pytest

from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import ShankSim
from dorsimeter.types import ImuBatch


def test_the_rate_is_taken_before_the_first_batch_and_refused_after_it():
    sim = ShankSim(rate_hz=50.0, seed=2)
    pipe = Pipeline(100.0)
    pipe.push(ImuBatch(np.empty(0), np.empty((0, 3)), np.empty((0, 3))))  # no sample yet
    pipe.set_rate(50.0)  # what the source negotiated, before its first sample
    assert pipe.rate_hz == 50.0 and pipe.detectors.rate_hz == 50.0
    pipe.push(sim.generate(25))
    fusion, detectors = pipe.fusion, pipe.detectors
    pipe.set_rate(50.0)  # the same rate again: nothing to do, nothing dropped
    assert pipe.fusion is fusion and pipe.detectors is detectors
    with pytest.raises(ValueError, match=r"50 Hz since its first batch: a change to 100 Hz "
                                         r"mid-stream is refused"):
        pipe.set_rate(100.0)
    assert pipe.rate_hz == 50.0 and pipe.fusion is fusion and pipe.detectors is detectors
    pipe.push(sim.generate(25))  # the stream goes on as it was
    assert pipe.fusion is fusion and pipe.rate_hz == 50.0
