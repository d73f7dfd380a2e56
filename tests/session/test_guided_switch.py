"""A protocol started or stopped in the middle of a movement: the movement is counted once.

The protocol runner counts a guided rep when its hold is reached; the pipeline's own rep of that
movement ends later. When the stop lands in between (``x`` pressed mid-rep, whichever batch it
falls in), that rep must not become a wall-test trial as well, and the guided rep the stop cut
short ends with the pipeline's rep. The batches are cut where the race is: deterministic, not
by load.
"""

from __future__ import annotations

import copy

import pytest

from dorsimeter.exercises import ProtocolRunner
from dorsimeter.session.results import SessionResults
from dorsimeter.sim import ShankSim
from dorsimeter.sim.motion import script_spec
from dorsimeter.types import Readings
from tests.detect.simrun import run

STEP = 10  # samples per push (0.1 s): the stop lands within a tenth of a second of the hold


@pytest.fixture(scope="module")
def recorded():
    sim = ShankSim(script=script_spec("mobilisation"), seed=4)
    r, events, _ = run(sim, 75.0)
    return r, sorted(events, key=lambda e: e.t_s)


def _pieces(r: Readings, events: list):
    """The readings in ``STEP``-sample pushes, each with the pipeline events up to its end."""
    pending = list(events)
    for i in range(0, len(r), STEP):
        piece = Readings(*(getattr(r, f)[i:i + STEP] for f in (
            "t_s", "tibia_angle_deg", "knee_track_deg", "side", "heel_lift", "heel_source",
            "rep", "rep_valid")))
        now = [e for e in pending if e.t_s <= piece.t_s[-1]]
        pending = pending[len(now):]
        yield piece, now


def _replay(r, events, start_when, stop_when):
    """The monitor's order per push (session, then the runner, its counted reps handed over)
    with the protocol started and stopped at the first push where the conditions hold."""
    res = SessionResults(rate_hz=100.0)
    runner, handed, cut = None, 0, []
    state = "before"
    for piece, now in _pieces(r, copy.deepcopy(events)):
        if state == "before" and start_when(piece):
            runner, state = ProtocolRunner("band_mobilisation", rate_hz=100.0), "running"
            res.set_exercise(runner.protocol.name, guided=True)
        elif state == "running" and stop_when(runner):
            cut = [c.record for c in runner.counted if c.record.t_end_s is None]
            runner, state = None, "after"
            res.set_exercise(None)
        res.add(piece, now)
        if runner is not None:
            runner.add(piece, now)
            for c in runner.counted[handed:]:
                res.add_counted(c.side, c.set_no, c.record)
            handed = len(runner.counted)
    assert state == "after"
    return res, cut


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
    r, events = recorded
    reps = [e.rep for e in events if e.kind == "rep"]
    first = reps[0]
    res, cut = _replay(
        r, events, start_when=lambda p: p.t_s[-1] > first.t_end_s,  # after the first rep
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
    r, events = recorded
    reps = [e.rep for e in events if e.kind == "rep"]
    second = reps[1]
    res, _ = _replay(
        r, events, start_when=lambda p: p.t_s[-1] > second.t_start_s + 0.5,  # mid-drive
        stop_when=lambda run_: len(run_.counted) >= 3
        and run_.counted[-1].record.t_end_s is not None)
    _counted_once(res)
