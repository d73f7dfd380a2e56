"""Per-side session results, asymmetry and the wall against simulator truth."""

import math

import numpy as np
import pytest

from dorsimeter.session.asymmetry import asymmetry, band_of
from dorsimeter.session.results import SessionResults, SessionSettings
from dorsimeter.session.wall import AthleteGeometry, cm_by_rule
from dorsimeter.sim import ShankSim
from tests.detect.simrun import run


def _both_sides(seed=2, lift_prob=0.3, ends=None, with_events=False):
    spec = ShankSim().spec.with_(lift_prob=lift_prob, reps=(8, 8))
    sim = ShankSim(script=spec, seed=seed, heel_switch=True,
                   end_angle_deg=ends or {"left": 38.0, "right": 31.0})
    r, events, _ = run(sim, 190.0, side_changes=(90.0,))
    return (sim, r, events) if with_events else (sim, r)


def _in_pieces(res, r, events, step=25):
    """Readings in pieces, each with the pipeline's events up to its last sample."""
    pending = sorted(events, key=lambda e: e.t_s)
    for i in range(0, len(r), step):
        piece = _cut(r, i, i + step)
        t_last = piece.t_s[-1]
        now = [e for e in pending if e.t_s <= t_last]
        pending = pending[len(now):]
        res.add(piece, now)
    res.add(_cut(r, 0, 0), pending)


@pytest.fixture(scope="module")
def session():
    sim, r, events = _both_sides(with_events=True)
    res = SessionResults(athlete=AthleteGeometry(0.45, 0.19))
    _in_pieces(res, r, events)
    return sim, r, res


def _cut(r, a, b):
    from dorsimeter.types import Readings

    return Readings(*(getattr(r, f)[a:b] for f in (
        "t_s", "tibia_angle_deg", "knee_track_deg", "side", "heel_lift", "heel_source", "rep",
        "rep_valid")))


def test_best_valid_angle_and_mean_of_best_three_per_side(session):
    sim, r, res = session
    for side in ("left", "right"):
        truth = [t for t in sim.counted_reps(until_s=r.t_s[-1], side=side)]
        valid = sorted((t.end_angle_deg for t in truth if t.valid), reverse=True)
        assert len(valid) >= 3 and any(not t.valid for t in truth)
        assert abs(res.best_valid_deg[side] - valid[0]) < 0.5
        assert abs(res.mean_best3_deg[side] - np.mean(valid[:3])) < 0.5
        v = res.sides[side]
        assert len(v.scored) == len(valid)
        assert len(v.invalid) == sum(not t.valid for t in truth)
        # the best rep with a heel lift is not what was scored
        lifted_best = max((t.end_angle_deg for t in truth if not t.valid), default=-1)
        if lifted_best > valid[0] + 0.6:
            assert res.best_valid_deg[side] < lifted_best - 0.1
        assert len(v.trials) == len(truth)  # attempts: the scripted drives
        # the calibration drives are no trials, no reps: trials are numbered 1.. per leg, each
        # its own (automatic trials), all of them after the calibration
        assert res.trials[side] == len(v.reps) == len(truth)
        assert [t.rep_no for t in v.trials] == list(range(1, len(truth) + 1))
        assert [t.set_no for t in v.trials] == list(range(1, len(truth) + 1))
        assert all(abs(t.t_start_s - s.t_start_s) < 1.5 for t, s in zip(v.trials, truth,
                                                                       strict=True))


def test_without_events_the_session_segments_the_readings_itself(session):
    sim, r, res = session
    alone = SessionResults()
    for i in range(0, len(r), 25):
        alone.add(_cut(r, i, i + 25))
    for side in ("left", "right"):
        assert ([(t.rep_no, round(t.end_range_deg, 6)) for t in alone.sides[side].trials]
                == [(t.rep_no, round(t.end_range_deg, 6)) for t in res.sides[side].trials])


def test_asymmetry_degrees_percent_cm_and_flags(session):
    sim, r, res = session
    a = res.asymmetry
    best = {s: max(t.end_angle_deg for t in sim.counted_reps(until_s=r.t_s[-1], side=s)
                   if t.valid) for s in ("left", "right")}
    diff = best["left"] - best["right"]
    assert abs(a.diff_deg - diff) < 0.7
    assert abs(a.percent - 100 * abs(diff) / max(best.values())) < 2.0
    assert a.beyond_mdc == (abs(diff) > 4.6) and a.beyond_mdc
    assert a.band == band_of(a.percent)
    assert a.cm_method == "geometry"
    sin = {s: math.sin(math.radians(v)) for s, v in best.items()}
    geo = 100 * 0.45 * (sin["left"] - sin["right"])
    assert abs(a.cm - geo) < 0.6
    assert abs(a.cm_rule - abs(a.diff_deg) / 3.6) < 1e-9
    assert a.weaker_side == "right"
    lines = res.summary_lines()
    assert lines[0].startswith(" left: max tibia angle")
    assert any("beyond the MDC" in ln for ln in lines)


def test_small_difference_is_within_the_mdc():
    a = asymmetry(40.0, 37.0)
    assert not a.beyond_mdc and a.band == "<10 %" and a.cm_method == "rule"
    assert a.cm == pytest.approx(3.0 / 3.6)
    assert asymmetry(40.0, 37.0, mdc_deg=2.5).beyond_mdc  # configurable MDC
    assert band_of(9.99) == "<10 %" and band_of(10.0) == "10–25 %"
    assert band_of(25.0) == "10–25 %" and band_of(25.01) == ">25 %"
    assert asymmetry(40.0, 28.0).band == ">25 %" and asymmetry(40.0, 34.0).band == "10–25 %"


def test_hand_width_wall_geometry():
    a = AthleteGeometry(tibia_length_m=0.45, toe_to_ankle_m=0.19)
    reach = a.angle_to_reach_deg(0.09)
    assert reach == pytest.approx(math.degrees(math.asin(0.28 / 0.45)))
    assert a.reaches(reach + 0.01, 0.09) and not a.reaches(reach - 0.01, 0.09)
    assert a.knee_to_wall_m(reach, 0.09) == pytest.approx(0.0, abs=1e-12)
    assert a.toe_to_wall_m(40.0) == pytest.approx(0.45 * math.sin(math.radians(40)) - 0.19)
    # the geometric slope vs the empirical rule, and the two ways of turning degrees into cm
    assert a.deg_per_cm(40.0) == pytest.approx(1.66, abs=0.01)
    assert cm_by_rule(7.2) == pytest.approx(2.0)
    d = 1e-4
    assert a.cm_between(40 + d, 40) / d == pytest.approx(1 / a.deg_per_cm(40.0), rel=1e-3)
    assert AthleteGeometry(0.45, 0.19).angle_to_reach_deg(0.40) is None


def test_wall_report_for_the_best_angle(session):
    _, _, res = session
    w = res.wall("left")
    best = res.best_valid_deg["left"]
    assert w["reaches"] == (best >= w["angle_to_reach_deg"])
    assert w["toe_to_wall_cm"] == pytest.approx(100 * (0.45 * math.sin(math.radians(best)) - 0.19))


def test_manual_trials_override_the_automatic_ones():
    sim, r = _both_sides(seed=3, lift_prob=0.0)
    res = SessionResults(settings=SessionSettings(hold_s=1.5))
    half = np.searchsorted(r.t_s, 60.0)
    res.add(_cut(r, 0, half))
    auto_trials = len(res.sides["left"].trials)
    assert auto_trials == res.trials["left"] >= 3
    assert res.start_trial("left") == auto_trials + 1
    assert res.trials["left"] == auto_trials + 1 and not res.auto_trials
    res.stop_trial()
    res.add(_cut(r, half, len(r)))
    assert len(res.sides["left"].trials) == auto_trials  # nothing counted with the trial stopped
    assert "right" not in res.best_valid_deg
    res.set_auto_trials(True)
    assert res.trial_active


def test_a_manual_trial_groups_the_reps_inside_it():
    """``t`` opens trial N+1 on a leg: the trials ending while it is open are its reps (their
    set), numbered on from the automatic ones; closing it stops the counting."""
    sim, r = _both_sides(seed=3, lift_prob=0.0)
    res = SessionResults()
    cut1, cut2 = np.searchsorted(r.t_s, 40.0), np.searchsorted(r.t_s, 75.0)
    res.add(_cut(r, 0, cut1))
    auto = res.trials["left"]
    truth = sim.counted_reps(until_s=r.t_s[cut2 - 1], side="left")
    inside = [t for t in truth if 40.0 <= t.t_end_s < 75.0]  # they end inside the trial
    assert auto >= 2 and len(inside) >= 2
    assert res.start_trial("left") == auto + 1
    res.add(_cut(r, cut1, cut2))
    assert res.stop_trial("left") == auto + 1
    res.add(_cut(r, cut2, len(r)))
    trials = res.sides["left"].trials
    assert res.trials == {"left": auto + 1, "right": 0}
    grouped = [t for t in trials if t.set_no == auto + 1]
    assert len(grouped) == len(inside)
    assert [t.rep_no for t in trials] == list(range(1, len(trials) + 1))
    assert not res.sides["right"].trials  # the right leg came after the trial closed


def test_rep_numbers_restart_per_exercise_and_leg():
    sim, r, events = _both_sides(seed=4, lift_prob=0.0, with_events=True)
    res = SessionResults()
    half = np.searchsorted(r.t_s, 50.0)
    first = [e for e in events if e.t_s <= r.t_s[half - 1]]
    res.add(_cut(r, 0, half), first)
    res.set_exercise("reverse_lunge")
    res.add(_cut(r, half, len(r)), events[len(first):])
    left = res.sides["left"]
    walls, lunges = left.trials, left.exercise_reps("reverse_lunge")
    assert walls and lunges and len(walls) + len(lunges) == len(left.counted)
    assert [t.rep_no for t in walls] == list(range(1, len(walls) + 1))
    assert [t.rep_no for t in lunges] == list(range(1, len(lunges) + 1))
    assert {t.set_no for t in lunges} == {1}
    right = res.sides["right"].exercise_reps("reverse_lunge")
    assert [t.rep_no for t in right] == list(range(1, len(right) + 1)) and right
    assert not res.sides["right"].trials and "right" not in res.best_valid_deg
    lines = res.summary_lines()
    assert any(ln.startswith(" left: reverse lunge, ") for ln in lines)
    assert res.exercises == ["wall_test", "reverse_lunge"]


def test_records_for_store_and_export(session):
    _, _, res = session
    recs = res.trial_records()
    assert len(recs) == sum(len(v.trials) for v in res.sides.values())
    assert {r["heel_source"] for r in recs} == {"heel_switch"}
    assert not any(r["scored"] for r in recs if not r["valid"])  # heel lifted: kept, unscored
    assert sum(not r["valid"] for r in recs) >= 2
    assert [r["side"] for r in recs] == sorted(r["side"] for r in recs)
