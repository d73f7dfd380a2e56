"""A protocol started or stopped in the middle of a movement: the movement is counted once.

The protocol runner counts the pipeline's rep (tracked with the protocol's hold) when its hold
is reached; the rep ends later. When the stop lands in between (``x`` pressed mid-rep, whichever
batch it falls in), that rep must not become a wall-test trial as well, and the guided rep the
stop cut short ends when the movement does. The batches are cut where the race is:
deterministic, not by load. Pushed through the live session's own step (pipeline, session,
runner), as the monitor does.
"""

from __future__ import annotations

import pytest

from dorsimeter.exercises import ProtocolRunner
from dorsimeter.pipeline import Pipeline
from dorsimeter.session.live import Leg, LiveSession
from dorsimeter.session.results import SessionResults
from dorsimeter.sources.sim import SimSource
from tests.detect.simrun import run

STEP = 10  # samples per push (0.1 s): the stop lands within a tenth of a second of the hold
SECONDS = 75.0


def _source() -> SimSource:
    return SimSource(script="mobilisation", seed=4)


@pytest.fixture(scope="module")
def recorded():
    """The pipeline's reps of the same stream without a protocol (their times: the movements)."""
    _, events, _ = run(_source().sim, SECONDS, step=STEP)
    return [e.rep for e in sorted(events, key=lambda e: e.t_s) if e.kind == "rep"]


def _replay(start_when, stop_when):
    """The live session's order per push (pipeline, session, the runner reading the pipeline's
    reps, its counted reps handed over), with the protocol started and stopped before the first
    push where the conditions hold."""
    source = _source()
    leg = Leg(source, Pipeline(source.rate_hz))
    live = LiveSession([leg], SessionResults(rate_hz=100.0))
    live.guided = leg
    cut = []
    state = "before"
    while source.sim.t_s < SECONDS:
        batch = source.sim.generate(STEP)
        if state == "before" and start_when(batch):
            live.guide(ProtocolRunner("band_mobilisation"))
            state = "running"
        elif state == "running" and live.protocol is not None and stop_when(live.protocol):
            cut = [c.record for c in live.protocol.counted
                   if c.record is not None and c.record.t_end_s is None]
            live.guide(None)
            state = "after"
        live.step(leg, batch)
    assert state == "after"
    return live.results, cut


def _counted_once(res: SessionResults) -> None:
    side = res.sides["left"]
    guided = [g for g in side.counted if g.exercise == "band_mobilisation"]
    assert guided
    for trial in side.trials:  # no wall-test trial is a guided rep's movement too
        for g in guided:
            g_end = g.t_end_s if g.t_end_s is not None else float("inf")
            assert not (trial.t_start_s < g_end and trial.t_end_s > g.t_start_s), (
                trial.rep_no, trial.t_start_s, trial.t_end_s, g.t_start_s, g.t_end_s)
    assert all(g.t_end_s is not None for g in guided)  # every guided rep ended


def test_a_stop_between_a_guided_reps_hold_and_its_end_counts_the_movement_once(recorded):
    reps = recorded
    first = reps[0]
    res, cut = _replay(
        start_when=lambda b: b.t_s[-1] > first.t_end_s,  # after the first rep
        # stop as soon as the runner counted a rep still under way (its hold just reached)
        stop_when=lambda run_: len(run_.counted) >= 2
        and run_.counted[-1].record.t_end_s is None)
    assert len(cut) == 1  # the stop cut exactly that rep
    _counted_once(res)
    movement = next(p for p in reps if p.t_start_s <= cut[0].t_start_s <= p.t_end_s)
    assert cut[0].t_end_s == movement.t_end_s  # it ends with the pipeline's rep
    after = [t for t in res.sides["left"].trials if t.t_start_s > movement.t_end_s]
    assert after and [t.rep_no for t in res.sides["left"].trials] == list(
        range(1, len(res.sides["left"].trials) + 1))  # the later wall tests go on, 1-based


def test_a_start_inside_a_movement_counts_it_once(recorded):
    second = recorded[1]
    res, _ = _replay(
        start_when=lambda b: b.t_s[-1] > second.t_start_s + 0.5,  # mid-drive
        stop_when=lambda run_: len(run_.counted) >= 3
        and run_.counted[-1].record.t_end_s is not None)
    _counted_once(res)
