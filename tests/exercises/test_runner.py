"""Guided protocols run on simulated sessions: counts, holds, heel rule, timers, data files."""

import numpy as np
import pytest

from dorsimeter.errors import InputError
from dorsimeter.exercises import ProtocolRunner, get_protocol, list_protocols, parse_protocol
from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import ShankSim
from dorsimeter.sim.motion import ScriptSpec
from tests.detect.simrun import run


def _feed(runner, r, step=20):
    """Readings alone in ``step``-sample pieces (a timer-only protocol needs no reps)."""
    from dorsimeter.types import Readings

    names = ("t_s", "tibia_angle_deg", "knee_track_deg", "side", "heel_lift", "heel_source",
             "rep", "rep_valid")
    for i in range(0, len(r), step):
        runner.add(Readings(*(getattr(r, f)[i:i + step] for f in names)), [])
        if runner.done:
            return float(r.t_s[min(i + step, len(r)) - 1])
    return None


def _guided(runner, sim, seconds, side_changes=(), step=50, until_s=None):
    """``seconds`` of ``sim`` through the pipeline, which tracks reps with the protocol's hold
    (as the live session has it do), each push's readings, events and rep trackers to the
    runner (the one rep tracker: the pipeline's). Stops at device time ``until_s`` if given.
    Returns the device time the protocol was done (None: it was not)."""
    pipe = Pipeline(sim.rate_hz)
    pipe.detectors.set_rep_hold(runner.protocol.hold_s)
    changes = list(side_changes)
    n_total = int(round(seconds * sim.rate_hz))
    while sim._n < n_total:
        if changes and sim.t_s >= changes[0]:
            changes.pop(0)
            sim.set_side("right" if sim.side == "left" else "left")
        b = sim.generate(min(step, n_total - sim._n))
        keep = len(b) if until_s is None else int(np.searchsorted(b.t_s, until_s, "right"))
        r, events = pipe.push(b.slice(0, keep))
        runner.add(r, events, pipe.detectors.reps.trackers)
        if runner.done:
            return float(b.t_s[keep - 1])
        if keep < len(b):
            break
    return None


def test_the_shipped_protocols():
    got = {p.name: p for p in list_protocols()}
    assert list(got) == ["short_skinny_foot", "band_mobilisation", "clamshell_wall",
                         "reverse_lunge", "single_leg_squat"]
    assert (got["short_skinny_foot"].sets, got["short_skinny_foot"].reps) == ((1, 2), (3, 5))
    assert not got["short_skinny_foot"].tracked and got["short_skinny_foot"].hold_s == 10
    assert (got["band_mobilisation"].sets, got["band_mobilisation"].reps) == ((1, 1), (10, 10))
    assert got["band_mobilisation"].hold_s == 2
    assert (got["clamshell_wall"].sets, got["clamshell_wall"].reps) == ((2, 3), (4, 6))
    assert got["clamshell_wall"].hold_s == 5
    assert (got["reverse_lunge"].sets, got["reverse_lunge"].reps) == ((2, 3), (4, 6))
    assert all(p.cue("done") for p in got.values())


def test_band_mobilisation_both_legs_counts_only_heel_down_holds():
    spec = ShankSim(script="mobilisation").spec.with_(lifts_m=(0.0, 0.0, 0.02, 0.0, 0.0, 0.0,
                                                               0.0, 0.025, 0.0, 0.0, 0.0, 0.0))
    sim = ShankSim(script=spec, seed=1, heel_switch=True)
    runner = ProtocolRunner("band_mobilisation")  # two lifted reps: a few more needed
    t_done = _guided(runner, sim, 190.0, side_changes=(92.0,))
    assert runner.done and t_done is not None
    for side in ("left", "right"):
        counted = [c for c in runner.counted if c.side == side]
        assert len(counted) == 10 and [c.rep_no for c in counted] == list(range(1, 11))
        truth = [t for t in sim.counted_reps(side=side) if t.valid][:10]
        # each counted rep is the next heel-down rep, counted 2 s into its hold
        for c, t in zip(counted, truth, strict=True):
            assert abs(c.t_s - (t.t_hold_s + 2.0)) < 0.35
            assert abs(c.end_range_deg - t.end_angle_deg) < 0.5
    heel_missed = [rep for rep, why in runner.missed if why == "heel lifted"]
    assert len(heel_missed) == 4  # two lifted reps per leg
    assert runner.state.done and runner.state.counted == 20 and runner.cue == "Done"


@pytest.mark.parametrize("sets,reps,seed", [(2, 4, 2), (3, 6, 3)])
def test_reverse_lunge_sets_and_reps(sets, reps, seed):
    sim = ShankSim(script="lunge", seed=seed)
    per_side = 20.0 + sets * reps * 4.4 + (sets + 1) * 10.0
    runner = ProtocolRunner("reverse_lunge", sets=sets, reps=reps)
    _guided(runner, sim, 2 * per_side, side_changes=(per_side,))
    assert runner.done
    for side in ("left", "right"):
        counted = [c for c in runner.counted if c.side == side]
        assert len(counted) == sets * reps
        assert [(c.set_no, c.rep_no) for c in counted] == [
            (s, k) for s in range(1, sets + 1) for k in range(1, reps + 1)]
        truth = sim.counted_reps(side=side)[:sets * reps]
        err = [c.end_range_deg - t.end_angle_deg for c, t in zip(counted, truth, strict=True)]
        assert np.max(np.abs(err)) < 0.5
        assert all(c.record.exercise == "reverse_lunge" for c in counted)


def test_clamshell_needs_five_second_holds():
    short = ShankSim(script="mobilisation", seed=4)  # 2 s holds: never enough
    runner = ProtocolRunner("clamshell_wall", sets=2, reps=4)
    _guided(runner, short, 60.0)
    assert runner.counted == [] and not runner.done
    assert sum(why.startswith("hold shorter") for _, why in runner.missed) >= 8
    spec = ScriptSpec("clamshell", sets=(2, 2), reps=(4, 4), up_s=1.0, hold_s=5.3, down_s=1.0,
                      rest_s=0.8)
    sim = ShankSim(script=spec, seed=5)
    runner = ProtocolRunner("clamshell_wall", sets=2, reps=4)
    _guided(runner, sim, 184.0, side_changes=(92.0,))
    assert runner.done and len(runner.counted) == 16


def test_hold_timer_counts_down_during_the_hold():
    scripted = ShankSim(script="mobilisation", seed=6)
    scripted.generate(int(40.0 * scripted.rate_hz))
    rep = scripted.counted_reps()[2]  # the script's truth: the same for the same seed
    sim = ShankSim(script="mobilisation", seed=6)
    runner = ProtocolRunner("band_mobilisation")
    _guided(runner, sim, 40.0, until_s=rep.t_hold_s + 0.8)
    assert runner.state.hold_remaining_s == pytest.approx(2.0 - 0.8, abs=0.35)
    assert runner.state.cue == get_protocol("band_mobilisation").cue("hold")


def test_short_foot_is_a_timer():
    sim = ShankSim(seed=7)
    r, _, _ = run(sim, 180.0)
    runner = ProtocolRunner("short_skinny_foot", sets=2, reps=5)
    t_done = _feed(runner, r, step=10)
    p = get_protocol("short_skinny_foot")
    t0 = float(r.t_s[9])  # the timer starts with the first readings it gets
    expected = t0 + 2 * 5 * p.hold_s + 2 * 4 * p.rest_s + p.set_rest_s
    assert runner.done and len(runner.counted) == 10
    assert runner.counted[-1].t_s == pytest.approx(expected)
    assert t_done == pytest.approx(expected, abs=0.11)
    assert [c.set_no for c in runner.counted] == [1] * 5 + [2] * 5


def test_bad_protocol_files_name_the_field(tmp_path):
    good = (tmp_path / "p.toml")
    good.write_text('name = "x"\ntitle = "X"\ntracked = true\nsets = [1, 2]\nreps = [3, 1]\n'
                    "hold_s = 2\n")
    from dorsimeter.exercises import load_protocol

    with pytest.raises(InputError, match=r"p\.toml, key 'reps': expected \[min, max\]"):
        load_protocol(good)
    with pytest.raises(InputError, match="column 'hold_s'"):
        parse_protocol('name = "x"\ntitle = "X"\ntracked = true\nsets = [1, 1]\nreps = [1, 1]\n'
                       'hold_s = "long"\n')
    with pytest.raises(InputError, match="line 1"):
        parse_protocol("name = = 1")
