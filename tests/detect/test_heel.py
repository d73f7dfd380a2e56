"""Heel-lift detection from the heel switch, the foot IMU and the shank IMU alone."""

import numpy as np
import pytest

from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import Mount, ShankSim
from dorsimeter.sim.motion import ScriptSpec
from tests.detect.simrun import held, paired, rep_events, run

ROT = (10.0, -15.0, 130.0)


def _lifting(script: str, **kw) -> ShankSim:
    spec = ShankSim(script=script).spec.with_(lift_prob=0.4, lift_range_m=(0.010, 0.030))
    return ShankSim(script=spec, mount=Mount(clip_rotation_deg=ROT), **kw)


@pytest.mark.parametrize("channel", ["heel_switch", "foot_imu"])
@pytest.mark.parametrize("script,seed", [("mobilisation", 1), ("lunge", 2), ("wall", 3)])
def test_invalid_reps_are_exactly_those_with_a_lift(channel, script, seed):
    sim = _lifting(script, seed=seed, **{channel: True})
    r, events, _ = run(sim, 150.0)
    assert set(r.heel_source[r.t_s > 10]) == {channel}
    pairs = paired(held(rep_events(events)), sim, r.t_s[-1])
    assert sum(not t.valid for _, t in pairs) >= 3  # the session really has lifts to find
    assert [f.valid for f, _ in pairs] == [t.valid for _, t in pairs]
    assert all(f.heel_source == channel for f, _ in pairs)


@pytest.mark.parametrize("script,seed", [("wall", 5), ("lunge", 6), ("mobilisation", 7)])
def test_shank_imu_alone_finds_lifts_and_only_lifts(script, seed):
    sim = _lifting(script, seed=seed)
    r, events, pipe = run(sim, 200.0)
    assert np.any(pipe.calibrations["left"].lever_arm != 0.0)  # the lever arm came from calibration
    assert set(r.heel_source[r.t_s > 30]) == {"shank_imu"}
    pairs = paired(held(rep_events(events)), sim, r.t_s[-1])
    found = np.array([not f.valid for f, _ in pairs])
    lifted = np.array([not t.valid for _, t in pairs])
    assert lifted.sum() >= 5
    assert found[lifted].mean() >= 0.9  # lifts ≥ 10 mm detected
    assert not found[~lifted].any()  # no heel-down rep flagged


def test_heel_down_movement_raises_no_alert():
    sim = ShankSim(script="lunge", seed=11, mount=Mount(clip_rotation_deg=ROT))
    r, events, _ = run(sim, 180.0)
    assert not r.heel_lift.any()
    assert not [e for e in events if e.kind == "heel_lift"]


def test_alert_event_comes_soon_after_the_lift_and_names_the_source():
    spec = ScriptSpec("mobilisation", reps=(10, 10), up_s=1.0, hold_s=2.0, down_s=1.0,
                      rest_s=1.0, lifts_m=(0.0, 0.02, 0.0, 0.03))
    sim = ShankSim(script=spec, seed=3, mount=Mount(clip_rotation_deg=ROT))
    r, events, _ = run(sim, 60.0, step=5)
    alerts = [e for e in events if e.kind == "heel_lift"]
    lifts = [t for t in sim.counted_reps(until_s=60.0) if t.lift_m > 0]
    assert len(alerts) == len(lifts) >= 4
    for a, t in zip(alerts, lifts, strict=True):
        assert 0.0 < a.t_s - t.lift_start_s < 0.3
        assert "shank_imu" in a.message


def test_best_source_wins_and_batches_split_anyhow_give_the_same_flags():
    sim = _lifting("mobilisation", seed=4, heel_switch=True, foot_imu=True)
    b = sim.generate(6000)
    out = []
    for step in (6000, 7, 64):
        pipe = Pipeline(100.0)
        parts = [pipe.push(b.slice(i, i + step))[0] for i in range(0, len(b), step)]
        out.append(np.concatenate([p.heel_lift for p in parts]))
        assert {s for p in parts for s in p.heel_source} == {"heel_switch"}
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])
    assert out[0].any()


def test_shank_only_flags_are_identical_for_any_batch_split():
    sim = _lifting("wall", seed=8)
    b = sim.generate(7000)
    flags = []
    for step in (7000, 10, 33):
        pipe = Pipeline(100.0)
        parts = [pipe.push(b.slice(i, i + step))[0] for i in range(0, len(b), step)]
        flags.append(np.concatenate([p.heel_lift for p in parts]))
    assert flags[0].any()
    np.testing.assert_array_equal(flags[0], flags[1])
    np.testing.assert_array_equal(flags[0], flags[2])


def test_shank_imu_alone_with_a_realistic_sensor_and_its_calibration():
    from dorsimeter.core.sensor_cal import calibrate_sensor
    from dorsimeter.sim import SensorErrors
    from dorsimeter.sim.errors import still_pose_recording

    errors = SensorErrors.realistic("lsm6dso", 100.0, seed=3)
    _, pa, pg = still_pose_recording(errors, 100.0, 7, n_random=6)
    spec = ShankSim(script="lunge").spec.with_(lift_prob=0.5, lift_range_m=(0.012, 0.030))
    sim = ShankSim(script=spec, seed=9, errors=errors, mount=Mount(clip_rotation_deg=ROT))
    pipe = Pipeline(100.0, sensor_cal=calibrate_sensor(pa, pg, 100.0, "lsm6dso"))
    r, events, _ = run(sim, 150.0, step=10, pipe=pipe)
    pairs = paired(held(rep_events(events)), sim, r.t_s[-1])
    found = np.array([not f.valid for f, _ in pairs])
    lifted = np.array([not t.valid for _, t in pairs])
    assert lifted.sum() >= 5
    assert found[lifted].mean() >= 0.9 and not found[~lifted].any()


SESSION_S = 112.0


def test_shank_imu_alone_on_realistic_shins():
    """Every shin effect on (sway, an oblique ankle, tibial rotation, the clip's soft-tissue
    wobble after each jolt, an uncalibrated consumer part; issue 11), a wall test, lunges and
    band mobilisation: each lifting session finds its lifts of 10 mm or more (≥ 90 % of each
    session's, ≥ 95 % of all), and false alerts (flag rises after calibration in the heel-down
    sessions, heel-down reps flagged in the lifting ones) stay within issue 11's target of 1 per
    10 min over the sessions (each ``SESSION_S``, so that together they span the target's 10
    min after calibration). The detector once integrated each wobble's broadband leak into
    lift-sized velocities. Known near miss (session 11): the lunge athlete's heel-down rep at
    23.1 s, 1.2 s after two lifts of 23-29 mm, peaks at 1.004 × ``v_on`` (0.998 × before the
    fusion's warm start): one false alert, which the target allows."""
    from dorsimeter.sim.shin import ShinEffects

    false_alerts, minutes, found_all, lifted_all = 0, 0.0, 0, 0
    for script, seed in (("wall", 0), ("lunge", 4), ("mobilisation", 8)):
        quiet = ShankSim(script=script, seed=seed, mount=Mount(clip_rotation_deg=ROT),
                         effects=ShinEffects())
        r, events, _ = run(quiet, SESSION_S, step=10)
        cal_t = next(e.t_s for e in events if e.kind == "calibrated")
        after = r.heel_lift[r.t_s > cal_t].astype(np.int8)
        false_alerts += int(np.count_nonzero(np.diff(after, prepend=0) > 0))
        minutes += (r.t_s[-1] - cal_t) / 60.0
        spec = ShankSim(script=script).spec.with_(lift_prob=0.5, lift_range_m=(0.010, 0.030))
        sim = ShankSim(script=spec, seed=seed, mount=Mount(clip_rotation_deg=ROT),
                       effects=ShinEffects())
        r, events, _ = run(sim, SESSION_S, step=10)
        cal_t = next(e.t_s for e in events if e.kind == "calibrated")
        pairs = paired(held(rep_events(events)), sim, r.t_s[-1])
        found = np.array([not f.valid for f, _ in pairs])
        lifted = np.array([not t.valid for _, t in pairs])
        assert lifted.sum() >= 3, script
        assert found[lifted].mean() >= 0.9, (script, found[lifted].mean())
        found_all += int(found[lifted].sum())
        lifted_all += int(lifted.sum())
        false_alerts += int(found[~lifted].sum())
        minutes += (r.t_s[-1] - cal_t) / 60.0
    assert minutes >= 10.0  # the target's span
    assert found_all / lifted_all >= 0.95, found_all / lifted_all
    assert false_alerts / minutes * 10.0 <= 1.0, (false_alerts, minutes)


@pytest.mark.parametrize("rate_hz", [10.0, 25.0, 50.0])
def test_below_the_soft_tissue_band_the_shank_imu_does_not_judge_the_heel(rate_hz):
    """The clip's 12–25 Hz wobble after each jolt (a consumer part, which averages over each
    sample interval as real parts do) aliases into the bone band of a 10 or 25 Hz
    stream, where the shank detector called every heel-down rep a lift (bench rates): there the
    heel is not checked (``none``), never judged wrongly; from 50 Hz on it is judged."""
    from dorsimeter.detect.heel import SHANK_MIN_RATE_HZ
    from dorsimeter.sim.shin import ShinEffects

    sim = ShankSim(rate_hz=rate_hz, script="wall", seed=1, mount=Mount(clip_rotation_deg=ROT),
                   effects=ShinEffects.only("wobble", "consumer_parts"))
    r, events, _ = run(sim, 45.0, step=max(1, int(0.05 * rate_hz)))
    cal_t = next(e.t_s for e in events if e.kind == "calibrated")
    reps = held(rep_events(events))
    assert len(reps) >= 4 and all(rep.valid for rep in reps) and not r.heel_lift.any()
    want = "shank_imu" if rate_hz >= SHANK_MIN_RATE_HZ else "none"
    assert set(r.heel_source[r.t_s > cal_t]) == {want}
    assert {rep.heel_source for rep in reps} == {want}
