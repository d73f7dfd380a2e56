"""Manual trials (``t``) and automatic ones (``T``) give the same trials whatever the batching.

The monitor applies a key between two pushes; under load the pushes arrive in other sizes, so
the same key lands in other batches. Here one simulated stream (wall tests on the left, then the
clip moved to the right, as ``r`` does) is pushed through the real pipeline into the session in
many batchings, each cut exactly where the keys land: ``t`` and ``t`` again and ``T``, each
pressed between a rep's hold and its end (the moment the loaded run of
``test_trial_counts_stay_right_after_t…`` hit). Every batching must give the same trials,
numbers, sets and holds, each hold inside its own rep's time span.
"""

from __future__ import annotations

import numpy as np
import pytest

from dorsimeter.pipeline import Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.sim import ShankSim
from dorsimeter.types import ImuBatch

RATE_HZ = 100.0
LEFT_S, RIGHT_S = 40.0, 80.0  # device seconds on each leg


@pytest.fixture(scope="module")
def stream() -> list[ImuBatch]:
    sim = ShankSim(rate_hz=RATE_HZ, seed=3)
    left = sim.generate(int(LEFT_S * RATE_HZ))
    sim.set_side("right")
    return [left, sim.generate(int(RIGHT_S * RATE_HZ))]


def _pipeline_reps(stream: list[ImuBatch]):
    pipe = Pipeline(RATE_HZ)
    return [e.rep for b in stream for e in pipe.push(b)[1] if e.kind == "rep"]


def _keys(stream: list[ImuBatch]) -> list[tuple[float, str]]:
    """``t``, ``t``, ``T`` on the right leg, each between a held rep's hold and its end."""
    held = [r for r in _pipeline_reps(stream) if r.side == "right" and r.held]
    assert len(held) >= 7
    return [(0.5 * (r.hold_reached_s + r.t_end_s), key)
            for r, key in ((held[2], "t"), (held[4], "t"), (held[6], "T"))]


def _cuts(stream: list[ImuBatch], sizes, keys) -> list[tuple[ImuBatch, list[str]]]:
    """The stream in pushes of the given sizes (cycled), each cut at the keys' times; each push
    with the keys pressed just before it."""
    out: list[tuple[ImuBatch, list[str]]] = []
    pending = sorted(keys)
    k = 0
    for part in stream:
        i = 0
        while i < len(part):
            n = int(sizes[k % len(sizes)])
            k += 1
            stop = min(i + n, len(part))
            pressed = []
            while pending and pending[0][0] <= part.t_s[i]:
                pressed.append(pending.pop(0)[1])
            if pending:  # the next key lands inside this push: cut there
                stop = min(stop, max(i + 1, int(np.searchsorted(part.t_s, pending[0][0]))))
            out.append((part.slice(i, stop), pressed))
            i = stop
    assert not pending
    return out


def _session(pushes) -> SessionResults:
    """The monitor's order: keys, then the batch through the pipeline into the session."""
    pipe, res = Pipeline(RATE_HZ), SessionResults()
    for batch, pressed in pushes:
        for key in pressed:
            side = pipe.side
            if key == "T":
                res.set_auto_trials(True)
            elif res.open_trial(side) is not None:
                res.stop_trial(side)
            else:
                res.start_trial(side)
        res.add(*pipe.push(batch))
    return res


def _trials(res: SessionResults):
    return [(r.side, r.rep_no, r.set_no, r.t_start_s, r.t_end_s, r.end_range_deg, r.hold_s,
             r.hold_reached_s, tuple(r.holds)) for r in res.counted]


BATCHINGS = {
    "5 (the monitor's sim)": [5],
    "1": [1],
    "50": [50],
    "333": [333],
    "loaded (irregular)": np.random.default_rng(7).integers(1, 400, 64),
}


def test_trials_and_holds_do_not_depend_on_the_batching(stream):
    keys = _keys(stream)
    got = {name: _trials(_session(_cuts(stream, sizes, keys)))
           for name, sizes in BATCHINGS.items()}
    first = got["5 (the monitor's sim)"]
    for name, trials in got.items():
        assert trials == first, name
    # what the keys make of the pipeline's reps: left all automatic; right two automatic, the
    # manual trial holds the reps that ended while it was open, nothing until T, then automatic
    (t_open, _), (t_close, _), (t_auto, _) = keys
    right = [r for r in _pipeline_reps(stream) if r.side == "right" and r.is_trial]
    res = _session(_cuts(stream, [5], keys))
    want = [(r.t_start_s, 1 + i) for i, r in enumerate(
        [r for r in right if r.t_end_s < t_open])]
    want += [(r.t_start_s, len(want) + 1) for r in right if t_open < r.t_end_s < t_close]
    n_auto = want[-1][1] if want else 0
    want += [(r.t_start_s, n_auto + 1 + i) for i, r in enumerate(
        [r for r in right if r.t_end_s > t_auto])]
    assert [(r.t_start_s, r.set_no) for r in res.sides["right"].trials] == want
    assert sum(t_open < r.t_end_s < t_close for r in right) >= 2  # the manual trial has reps
    assert any(t_close < r.t_end_s < t_auto for r in right)  # one ended while nothing counted
    assert [r.rep_no for r in res.sides["right"].trials] == list(range(1, len(want) + 1))
    left = res.sides["left"].trials
    assert len(left) >= 3 and [r.set_no for r in left] == list(range(1, len(left) + 1))
    for r in res.counted:  # every hold inside its own rep
        assert r.t_end_s is not None and r.holds
        assert all(r.t_start_s <= t0 < t1 <= r.t_end_s + 1.0 / RATE_HZ for t0, t1, _ in r.holds)
