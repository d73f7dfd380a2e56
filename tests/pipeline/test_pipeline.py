"""The pipeline against simulator ground truth."""

import numpy as np
import pytest

from dorsimeter.core.fusion import MAX_BRIDGE_S
from dorsimeter.pipeline import Pipeline
from dorsimeter.types import Readings
from tests.conftest import simulate, truth_at


def _run(batch, step):
    pipe = Pipeline(100.0)
    parts = [pipe.push(batch.slice(i, i + step))[0] for i in range(0, len(batch), step)]
    return Readings.concat(parts), pipe


@pytest.mark.parametrize("rot", [(0.0, 0.0, 0.0), (0.0, 0.0, 95.0), (12.0, -8.0, 200.0),
                                 (-15.0, 18.0, -60.0)])
def test_wall_test_angle_within_1deg_rmse_for_any_clip_rotation(rot):
    batch = simulate(60.0, seed=7, clip_rotation_deg=rot)
    r, pipe = _run(batch, 10)
    assert "left" in pipe.calibrations
    truth = truth_at(batch, r.t_s)
    rmse = np.sqrt(np.mean((r.tibia_angle_deg - truth) ** 2))
    assert rmse < 1.0
    assert abs(r.tibia_angle_deg.max() - batch.truth["tibia_angle_deg"].max()) < 1.0
    track = truth_at(batch, r.t_s, "knee_track_deg")
    assert np.sqrt(np.mean((r.knee_track_deg - track) ** 2)) < 1.0


def test_right_leg_after_left_calibrates_again_and_reads_the_right_side():
    from dorsimeter.sim import ShankSim

    sim = ShankSim(seed=2)
    pipe = Pipeline(100.0)
    left = sim.generate(3000)
    pipe.push(left)
    sim.set_side("right")
    pipe.set_side("right")
    right = sim.generate(4000)
    r, events = pipe.push(right)
    assert [e.kind for e in events if e.kind.startswith("calibrat")] == ["calibrated"]
    assert set(pipe.calibrations) == {"left", "right"}
    assert set(r.side) == {"right"}
    err = r.tibia_angle_deg - truth_at(right, r.t_s)
    assert np.sqrt(np.mean(err[r.t_s > right.t_s[0] + 2.0] ** 2)) < 1.0


def test_any_batch_split_gives_identical_readings():
    batch = simulate(30.0, seed=3, clip_rotation_deg=(0, 0, 45))
    whole, _ = _run(batch, len(batch))
    for step in (1, 7, 10):
        part, _ = _run(batch, step)
        np.testing.assert_array_equal(part.t_s, whole.t_s)
        np.testing.assert_array_equal(part.tibia_angle_deg, whole.tibia_angle_deg)


def test_ble_sized_batches_with_sensor_and_lever_arm_correction_give_identical_readings():
    """Irregular notification-sized batches (1–12 samples), realistic unit, sensor calibration
    and lever-arm compensation on: the same floats as the whole file in one push."""
    from dorsimeter.core.sensor_cal import SensorCalibration
    from dorsimeter.sim import Mount, SensorErrors, ShankSim

    sim = ShankSim(seed=5, errors=SensorErrors.realistic("bmi270", 100.0, 5),
                   mount=Mount(clip_rotation_deg=(10.0, -5.0, 160.0)))
    batch = sim.generate(2500)
    cal = SensorCalibration("u", (0.002, -0.001, 0.0), (0.1, -0.05, 0.2),
                            ((1.01, 0.001, 0.0), (0.001, 0.99, 0.0), (0.0, 0.0, 1.0)))
    whole_pipe = Pipeline(100.0, sensor_cal=cal)
    whole, _ = whole_pipe.push(batch)
    assert np.linalg.norm(whole_pipe.calibrations["left"].lever_arm) > 0.1
    sizes = np.random.default_rng(0).integers(1, 13, size=len(batch))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    bounds = bounds[bounds < len(batch)].tolist() + [len(batch)]
    pipe = Pipeline(100.0, sensor_cal=cal)
    part = Readings.concat([pipe.push(batch.slice(a, b))[0]
                            for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    np.testing.assert_array_equal(part.t_s, whole.t_s)
    np.testing.assert_array_equal(part.tibia_angle_deg, whole.tibia_angle_deg)
    np.testing.assert_array_equal(part.knee_track_deg, whole.knee_track_deg)


def _lossy(batch, seed=1, start=1500, p_loss=0.08):
    """Bursty BLE-like loss: 5-sample packets, 8 % of packets start a burst of 1-4 lost."""
    from dorsimeter.types import ImuBatch

    rng = np.random.default_rng(seed)
    keep = np.ones(len(batch), bool)
    for k in range(start, len(batch), 5):
        if rng.random() < p_loss:
            keep[k:k + 5 * int(rng.integers(1, 5))] = False
    idx = np.flatnonzero(keep)
    return ImuBatch(batch.t_s[idx], batch.acc_m_s2[idx], batch.gyr_rad_s[idx], side="left",
                    truth={k: v[idx] for k, v in batch.truth.items()})


def test_lost_packets_are_bridged_and_readings_stay_split_invariant():
    from dorsimeter.sim import Mount, ShankSim

    full = ShankSim(seed=3, mount=Mount(clip_rotation_deg=(0.0, 0.0, 60.0))).generate(6000)
    lossy = _lossy(full)
    assert 0.05 < 1 - len(lossy) / len(full) < 0.25
    whole, pipe = _run(lossy, len(lossy))
    # bursts up to the bridge limit are bridged, longer ones restart from the accelerometer
    lost = np.round(np.diff(lossy.t_s) * 100.0).astype(int) - 1
    long = lost > round(MAX_BRIDGE_S * 100.0)
    assert pipe.fusion.restarts == np.count_nonzero(long) > 0
    assert pipe.fusion.bridged_samples == lost[~long].sum() > 0
    err = whole.tibia_angle_deg - truth_at(lossy, whole.t_s)
    # without bridging the lost rotation stays in the estimate (≈ 5° RMSE on this stream)
    assert np.sqrt(np.mean(err[whole.t_s > 15] ** 2)) < 0.4
    for step in (5, 13):
        part, _ = _run(lossy, step)
        np.testing.assert_array_equal(part.tibia_angle_deg, whole.tibia_angle_deg)


def test_after_a_long_link_drop_the_filter_restarts_from_the_accelerometer():
    from dorsimeter.sim import ShankSim
    from dorsimeter.types import ImuBatch

    b = ShankSim(seed=4).generate(6000)
    keep = np.ones(len(b), bool)
    keep[2500:2800] = False  # 3 s with no data
    idx = np.flatnonzero(keep)
    gap = ImuBatch(b.t_s[idx], b.acc_m_s2[idx], b.gyr_rad_s[idx], side="left",
                   truth={k: v[idx] for k, v in b.truth.items()})
    r, pipe = _run(gap, 10)
    assert pipe.fusion.restarts == 1
    err = r.tibia_angle_deg - truth_at(gap, r.t_s)
    assert np.sqrt(np.mean(err[r.t_s > 31.0] ** 2)) < 1.0


def test_reanalysis_with_the_saved_calibration_equals_the_live_readings(tmp_path):
    """Live (calibrating itself) and re-analysis with the calibration file it wrote: every
    reading bit-identical, because the corrections start at the same sample in both."""
    from dorsimeter.io.calfiles import load_calibrations, save_calibrations
    from dorsimeter.sim import Mount, SensorErrors, ShankSim

    batch = ShankSim(seed=8, errors=SensorErrors.realistic("mpu6500", 100.0, 8),
                     mount=Mount(clip_rotation_deg=(5.0, 12.0, 75.0))).generate(4000)
    live, pipe = _run(batch, 10)
    save_calibrations(pipe.calibrations, tmp_path / "cal.json")
    again = Pipeline(100.0, load_calibrations(tmp_path / "cal.json"))
    r = Readings.concat([again.push(batch.slice(i, i + 37))[0] for i in range(0, len(batch), 37)])
    np.testing.assert_array_equal(r.t_s, live.t_s)
    np.testing.assert_array_equal(r.tibia_angle_deg, live.tibia_angle_deg)
    np.testing.assert_array_equal(r.knee_track_deg, live.knee_track_deg)


def test_each_leg_numbers_its_own_reps():
    from dorsimeter.sim import ShankSim

    sim, pipe = ShankSim(seed=4), Pipeline(100.0)
    reps = {"left": [], "right": []}
    for side, n in (("left", 4000), ("right", 4000)):
        sim.set_side(side)
        pipe.set_side(side)
        for _ in range(0, n, 10):
            _, events = pipe.push(sim.generate(10))
            for e in events:
                if e.kind == "rep":
                    reps[e.rep.side].append(e.rep.index)
    assert len(reps["left"]) >= 5 and len(reps["right"]) >= 5
    assert reps["left"] == list(range(len(reps["left"])))
    assert reps["right"] == list(range(len(reps["right"])))  # the right leg starts at rep 1


def _rebooted(sim, pieces, rate_hz=100.0):
    """A stream from ``sim`` with the sensor switched off and on: ``pieces`` are (seconds on,
    seconds off). The shin moves on while the sensor is off; device time goes on one sample
    period after the last sample (as the frame decoder joins a restart), and each batch after
    an off time carries ``restart``. Returns the batches and their truth as one batch."""
    from dorsimeter.types import ImuBatch

    out, t_next = [], 0.0
    for k, (on_s, off_s) in enumerate(pieces):
        b = sim.generate(int(round(on_s * rate_hz)))
        b.t_s = t_next + np.arange(len(b)) / rate_hz
        b.restart = k > 0
        out.append(b)
        t_next = float(b.t_s[-1]) + 1.0 / rate_hz
        if off_s:
            sim.generate(int(round(off_s * rate_hz)))  # the sensor is off: lost for good
    truth = ImuBatch(np.concatenate([b.t_s for b in out]),
                     np.concatenate([b.acc_m_s2 for b in out]),
                     np.concatenate([b.gyr_rad_s for b in out]), side="left",
                     truth={k: np.concatenate([b.truth[k] for b in out]) for k in out[0].truth})
    return out, truth


def _push_all(batches, step=None, pipe=None):
    pipe = pipe or Pipeline(100.0)
    outs = [pipe.push(b.slice(i, i + (step or len(b))))
            for b in batches for i in range(0, len(b), step or len(b))]
    return Readings.concat([o[0] for o in outs]), [e for o in outs for e in o[1]], pipe


def test_a_sensor_restart_restarts_the_fusion_and_readings_are_right_at_once():
    """The shin moves on while the sensor reboots: the stream joins seamlessly in device time,
    but the old orientation is wrong. With the restart the fusion starts again from the first
    accelerometer sample; without it VQF drags the error along for many seconds."""
    from dorsimeter.sim import ShankSim

    batches, truth = _rebooted(ShankSim(seed=9), [(30.0, 3.0), (30.0, 0.0)])
    t_join = float(batches[1].t_s[0])
    r, events, pipe = _push_all(batches)
    assert pipe.restarts == 1 and pipe.fusion.restarts == 1
    err = r.tibia_angle_deg - truth_at(truth, r.t_s)
    first = (r.t_s >= t_join) & (r.t_s < t_join + 3.0)
    rmse = float(np.sqrt(np.mean(err[first] ** 2)))
    assert rmse < 0.3, rmse  # 0.10° here
    assert np.abs(err[first]).max() < 1.0
    # and nothing after it is taken for a heel lift: every rep after the join is scored
    reps = [e.rep for e in events if e.kind == "rep" and e.t_s > t_join]
    assert len(reps) >= 4 and all(rep.valid for rep in reps)
    assert not r.heel_lift[r.t_s >= t_join].any()
    # the same stream with the restart not told: tens of degrees off after the join
    for b in batches:
        b.restart = False
    blind, events, _ = _push_all(batches)
    err = blind.tibia_angle_deg - truth_at(truth, blind.t_s)
    assert np.sqrt(np.mean(err[first] ** 2)) > 10.0
    assert not all(e.rep.valid for e in events if e.kind == "rep" and e.t_s > t_join)


def test_restarts_inside_any_batch_split_give_identical_readings():
    """Two restarts, one during an end-range hold; realistic unit, sensor calibration, lever
    arm: the same floats, rep columns and events for any split, and a restart told by an empty
    batch is kept for the next sample."""
    from dorsimeter.core.sensor_cal import SensorCalibration
    from dorsimeter.sim import Mount, SensorErrors, ShankSim
    from dorsimeter.types import ImuBatch

    sim = ShankSim(seed=5, errors=SensorErrors.realistic("bmi270", 100.0, 5),
                   mount=Mount(clip_rotation_deg=(10.0, -5.0, 160.0)))
    batches, truth = _rebooted(sim, [(15.0, 2.0), (12.0, 1.0), (13.0, 0.0)])
    cal = SensorCalibration("u", (0.002, -0.001, 0.0), (0.1, -0.05, 0.2),
                            ((1.01, 0.001, 0.0), (0.001, 0.99, 0.0), (0.0, 0.0, 1.0)))
    whole, ev_whole, pipe = _push_all(batches, pipe=Pipeline(100.0, sensor_cal=cal))
    assert pipe.restarts == 2 and pipe.fusion.restarts == 2
    assert [e.t_s for e in ev_whole if e.kind == "restart"] == [b.t_s[0] for b in batches[1:]]
    err = whole.tibia_angle_deg - truth_at(truth, whole.t_s)
    assert np.sqrt(np.mean(err[whole.t_s >= 15.0] ** 2)) < 1.0  # 15° without the restarts
    for step in (1, 7, 13):
        part, ev, _ = _push_all(batches, step, Pipeline(100.0, sensor_cal=cal))
        for f in ("t_s", "tibia_angle_deg", "knee_track_deg", "heel_lift", "rep", "rep_valid"):
            np.testing.assert_array_equal(getattr(part, f), getattr(whole, f))
        assert [(e.kind, e.t_s) for e in ev] == [(e.kind, e.t_s) for e in ev_whole]
    # the restart told by an empty batch (a source that had nothing to give yet)
    pipe = Pipeline(100.0, sensor_cal=cal)
    parts = []
    for b in batches:
        if b.restart:
            pipe.push(ImuBatch(np.empty(0), np.empty((0, 3)), np.empty((0, 3)), restart=True))
            b = b.slice(0, len(b))
            b.restart = False
        parts.append(pipe.push(b)[0])
    np.testing.assert_array_equal(Readings.concat(parts).tibia_angle_deg, whole.tibia_angle_deg)


def test_a_restart_during_the_mounting_calibration_starts_it_again():
    """The node reboots halfway through the calibration drives: the stance's "up", carried by
    the gyro through the drives, is broken by the outage, so the calibration starts again (the
    athlete stands still again, here a fresh simulated session on the same clip)."""
    from dorsimeter.sim import Mount, ShankSim

    mount = Mount(clip_rotation_deg=(10.0, -5.0, 160.0))
    a = ShankSim(seed=2, mount=mount).generate(500)  # stance done, drives under way
    b = ShankSim(seed=6, mount=mount).generate(3000)
    truth_b = b.truth["tibia_angle_deg"]
    b.t_s = a.t_s[-1] + 0.01 * np.arange(1, len(b) + 1)
    b.restart = True
    pipe = Pipeline(100.0)
    r_a, ev_a = pipe.push(a)
    assert len(r_a) == 0 and pipe.progress.text.startswith("drive the knee forward")
    r, events = pipe.push(b.slice(0, 1))
    assert [(e.kind, e.t_s) for e in events] == [("restart", 5.0)]
    assert "calibration started again" in events[0].message
    assert pipe.progress.text.startswith("stand tall and still")
    rest, events = pipe.push(b.slice(1, len(b)))
    r = Readings.concat([r, rest])
    assert [e.kind for e in events][0] == "calibrated" and r.t_s[0] == b.t_s[0]
    err = r.tibia_angle_deg - truth_b[np.searchsorted(b.t_s, r.t_s - 1e-9)]
    assert np.sqrt(np.mean(err ** 2)) < 0.3  # 0.13° (1.7° with the calibration spliced)


def test_a_devices_own_orientation_gets_no_accelerometer_offset_fitted():
    """A device that sends its own orientation (WitMotion angles, BNO08x) fused it from its own
    accelerometer processing: the calibration takes the accelerometer as it comes (no offset
    fitted), so a device fused from that same accelerometer reads 0 at stance as before."""
    from vqf import VQF

    from dorsimeter.sim import Mount, SensorErrors, ShankSim

    errors = SensorErrors().with_(acc_offset_m_s2=(0.25, -0.1, 0.2))  # about 34 mg
    b = ShankSim(seed=4, errors=errors, mount=Mount(clip_rotation_deg=(0, 10, 40))).generate(3000)
    device = VQF(0.01).updateBatch(np.ascontiguousarray(b.gyr_rad_s),
                                   np.ascontiguousarray(b.acc_m_s2))["quat6D"]
    plain = Pipeline(100.0)
    plain.push(b.slice(0, 3000))
    assert plain.calibrations["left"].acc_offset_mg > 20.0  # raw data: the offset is fitted
    b.quat = device
    pipe = Pipeline(100.0)
    r, _ = pipe.push(b)
    assert not any(pipe.calibrations["left"].acc_offset_m_s2)
    stance = r.t_s < 2.0
    assert np.max(np.abs(r.tibia_angle_deg[stance])) < 0.3


def _without(batch, t0_s: float, t1_s: float):
    """``batch`` with the rows at t0_s <= t < t1_s removed (a link drop)."""
    from dorsimeter.types import ImuBatch

    i = np.flatnonzero(~((batch.t_s >= t0_s - 1e-9) & (batch.t_s < t1_s - 1e-9)))
    return ImuBatch(batch.t_s[i], batch.acc_m_s2[i], batch.gyr_rad_s[i], side=batch.side,
                    truth={k: v[i] for k, v in batch.truth.items()})


def _worst_rep_error(r, batch, t_from_s: float) -> float:
    keep = r.t_s > t_from_s
    a, ta = r.tibia_angle_deg[keep], truth_at(batch, r.t_s[keep])
    rep = truth_at(batch, r.t_s[keep], "rep")
    return max(abs(float(a[rep == k].max() - ta[rep == k].max())) for k in np.unique(rep[rep >= 0]))


def test_rows_lost_in_the_calibration_drives_restart_it_and_say_so():
    """Rows t = 5.00-8.10 s removed (a 3.1 s link drop in the drives, the defect report's
    case: 'sensor 60 cm from the ankle', 2.3° of max tibia angle for 38° drives). The
    calibration starts again after the gap and the user is told; nothing is calibrated from
    gyro made up across the gap."""
    from dorsimeter.sim import Mount, ShankSim

    full = ShankSim(seed=0, mount=Mount(clip_rotation_deg=(10.0, -15.0, 120.0),
                                        height_m=0.2)).generate(6000)
    b = _without(full, 5.0, 8.1)
    pipe = Pipeline(100.0)
    pushed = [pipe.push(b.slice(i, i + 10)) for i in range(0, len(b), 10)]
    r = Readings.concat([p[0] for p in pushed])
    events = [e for p in pushed for e in p[1]]
    restarted = [e for e in events if e.kind == "calibration_restarted"]
    assert abs(restarted[0].t_s - 8.1) < 0.02
    assert "link lost during calibration" in restarted[0].message
    assert "drive" in restarted[0].message
    # after it a held end range may pass for the stance: dropped, and the user told so
    assert all("not standing tall" in e.message for e in restarted[1:])
    cal = pipe.calibrations.get("left")
    # either no calibration at all, or one within the accuracy target (issue 11: worst ≤ 0.8°)
    if cal is not None:
        assert cal.t_defined_s > 8.1
        assert np.linalg.norm(cal.lever_arm_m) < 0.3
        assert _worst_rep_error(r, b, cal.t_defined_s) <= 0.8


@pytest.mark.parametrize("gap_s", [0.2, 0.5, 1.0, 2.0, 5.0])
def test_a_gap_anywhere_in_the_stance_or_drives_gives_a_right_number_or_a_refusal(gap_s):
    """Gaps of 0.2-5 s swept over the stance (0-3 s) and the calibration drives (3-12 s):
    each run either calibrates and reads every rep within the accuracy target (worst 0.8°,
    issue 11), with a lever arm a shin can have, or refuses (calibration_failed / never
    calibrated): never a wrong number."""
    from dorsimeter.errors import CalibrationError
    from dorsimeter.pipeline import calibrate_recording
    from dorsimeter.sim import Mount, ShankSim

    full = ShankSim(seed=0, mount=Mount(clip_rotation_deg=(10.0, -15.0, 120.0),
                                        height_m=0.2)).generate(6000)
    outcomes = []
    for start in (0.5, 2.0, 3.5, 5.0, 6.5, 8.0, 9.5):
        b = _without(full, start, start + gap_s)
        r, pipe = _run(b, 10)
        cal = pipe.calibrations.get("left")
        try:
            file_cal = calibrate_recording([b], 100.0).get("left")
        except CalibrationError:
            file_cal = None
        if cal is None:
            outcomes.append("refused")
            continue
        assert 0.05 < np.linalg.norm(cal.lever_arm_m) < 0.3, (start, cal.lever_arm_m)
        worst = _worst_rep_error(r, b, cal.t_defined_s)
        assert worst <= 0.8, (start, worst)
        assert r.tibia_angle_deg.max() > 36.0  # the drives reach 38-41°
        if file_cal is not None:  # `calibrate` on the file finds the live calibration
            assert file_cal == cal
        outcomes.append("ok")
    assert "ok" in outcomes  # gaps after the drives' first 45° are solved without them


def test_a_calibration_gap_keeps_every_batch_split_identical():
    """The gap is found against the carried last sample time: any split, same readings."""
    from dorsimeter.sim import ShankSim

    b = _without(ShankSim(seed=3).generate(4000), 6.0, 6.4)
    whole, _ = _run(b, len(b))
    for step in (1, 7, 10):
        part, _ = _run(b, step)
        np.testing.assert_array_equal(part.t_s, whole.t_s)
        np.testing.assert_array_equal(part.tibia_angle_deg, whole.tibia_angle_deg)


def test_calibration_progress_is_data_the_ui_reads_without_parsing():
    """Issue 13 item 4: the phase, the seconds of stance held and needed and the degrees of
    drives come as numbers, in step with the samples pushed; the words say the same, the
    stance's seconds capped at what it asks (issue 12 item 11: not "6.0 s of 5.0 s"; issue 11:
    5 s asked, ``ASKED_STILL_S``, for a surer zero under sway)."""
    from dorsimeter.sim import ShankSim
    from dorsimeter.sim.motion import script_spec

    sim = ShankSim(seed=2, script=script_spec("wall").with_(stance_s=5.5))
    b = sim.generate(3500)
    stance_end = min(r.t_start_s for r in sim.reps if r.index < 0)  # the first drive starts
    pipe = Pipeline(100.0)
    first = pipe.progress
    assert (first.phase, first.still_need_s, first.fraction) == ("stance", 5.0, 0.0)
    seen = []
    for i in range(0, len(b), 10):
        pipe.push(b.slice(i, i + 10))
        seen.append((float(b.t_s[min(i + 9, len(b) - 1)]), pipe.progress))
    stance = [(t, p) for t, p in seen if p.phase == "stance"]
    drives = [(t, p) for t, p in seen if p.phase == "drives"]
    assert stance and drives and seen[-1][1].phase == "calibrated"
    # the still run grows by the batch's 0.1 s while the athlete stands still, is capped in the
    # words and in the fraction, and the drives start once the first one has begun
    held = [p.still_s for t, p in stance if t < 4.9]
    assert np.allclose(np.diff(held), 0.1)
    longest = max(p.still_s for _, p in stance)
    assert longest >= 5.0 and stance[-1][1].fraction == 1.0
    assert all(p.still_need_s == 5.0 for _, p in stance)
    assert "(5.0 s of 5.0 s)" in stance[-1][1].text and pipe.progress.phase == "calibrated"
    assert stance_end < drives[0][0] < stance_end + 1.0
    degrees = [p.drive_deg for _, p in drives]
    assert np.all(np.diff(degrees) >= 0) and degrees[-1] < 90.0 <= drives[-1][1].drive_need_deg
    assert f"({degrees[-1]:.0f}° of 90° of movement)" in drives[-1][1].text
    assert abs(drives[-1][1].fraction - degrees[-1] / 90.0) < 1e-12


def _realistic(seed, rot_deg):
    from dorsimeter.sim import Mount, SensorErrors, ShankSim, ShinEffects

    return ShankSim(seed=seed, effects=ShinEffects(), mount=Mount(height_m=0.2,
                    clip_rotation_deg=rot_deg),
                    errors=SensorErrors.realistic("bmi270", 100.0, seed=seed))


def _feed(pipe, batch, step):
    parts, events = [], []
    for i in range(0, len(batch), step):
        r, e = pipe.push(batch.slice(i, i + step))
        parts.append(r)
        events += e
    return Readings.concat(parts), events


@pytest.mark.parametrize("seed", [0, 1])
def test_a_recording_that_starts_in_an_end_range_hold_calibrates_on_the_next_tall_stance(seed):
    """Issue 18: the hold is taken for the stance, the drives' lever arm shows it was none
    (refused, the athlete told so), and the calibrator goes on to the next stance instead of
    refusing the recording: the same tibia axis as the session's own tall stance gives."""
    from dorsimeter.pipeline import calibrate_recording

    sim = _realistic(seed, (10.0, -15.0, 40.0 * seed))
    b = sim.generate(7000)
    i0 = int(np.searchsorted(b.t_s, sim.counted_reps()[0].t_hold_s - 0.1))
    late = b.slice(i0, len(b))
    r, events = _feed(Pipeline(100.0), late, 10)
    kinds = [(e.kind, e.message) for e in events if e.kind.startswith("calibrat")]
    assert kinds[0][0] == "calibration_restarted" and "not standing tall" in kinds[0][1]
    assert kinds[-1][0] == "calibrated" and len(kinds) == 2
    own = calibrate_recording([b], 100.0)["left"]
    cal = calibrate_recording([late], 100.0)["left"]  # what `calibrate` does with the file
    off = np.degrees(np.arccos(np.clip(np.dot(cal.z_axis, own.z_axis), -1.0, 1.0)))
    assert off < 1.0  # 0.29° and 0.31°; the hold was 35° off
    err = r.tibia_angle_deg - truth_at(late, r.t_s)
    assert np.sqrt(np.mean(err[r.t_s > cal.t_defined_s] ** 2)) < 1.0


def test_bursty_loss_in_the_calibration_drives_keeps_them_and_reads_right():
    """Issue 18: BLE-like bursts (5-sample packets, 8 % start a burst of 1-4 lost) from the
    stance on, on a realistic shin: every gap over 0.1 s in the drives used to start them again,
    so it never calibrated. The drives now go on in gap-free segments, each re-anchored at a
    still rest; the calibration is split-invariant and reads the holds as well as the lossless
    stream's calibration does on the same lossy stream."""
    sim = _realistic(4, (10.0, -15.0, 120.0))
    full = sim.generate(6000)
    lossy = _lossy(full, seed=4, start=0)
    whole, events = _feed(Pipeline(100.0), lossy, len(lossy))
    cal = next(e.calibration for e in events if e.kind == "calibrated")
    part, _ = _feed(Pipeline(100.0), lossy, 7)
    np.testing.assert_array_equal(part.tibia_angle_deg, whole.tibia_angle_deg)
    ref = Pipeline(100.0)
    _feed(ref, full, 10)
    given, _ = _feed(Pipeline(100.0, ref.calibrations), lossy, 10)
    off = np.degrees(np.arccos(np.clip(np.dot(cal.z_axis, ref.calibrations["left"].z_axis),
                                       -1.0, 1.0)))
    assert off < 0.5

    def hold_errors(r):
        out = []
        for rep in sim.counted_reps():
            m = (r.t_s >= rep.t_hold_s) & (r.t_s <= rep.t_return_s)
            if rep.t_start_s > cal.t_defined_s and m.sum() > 50:
                out.append(abs(float(np.mean(r.tibia_angle_deg[m] - truth_at(lossy, r.t_s[m])))))
        return np.array(out)

    ours, theirs = hold_errors(whole), hold_errors(given)
    # as well as the lossless calibration reads the same lossy stream: rep by rep within a
    # degree, the median within 0.1° (what is left is the fusion's across the bursts: a burst
    # over its 0.108 s bridge restarts it from the accelerometer, the wobbling clip's included;
    # and the two calibrations' own difference, their long axes up to 0.5° apart: medians
    # 0.41 and 0.33°, 0.56 and 0.77° while VQF still learnt bias at the rests)
    assert len(ours) >= 5 and np.median(ours) <= np.median(theirs) + 0.1, (ours, theirs)
    assert np.all(ours < theirs + 1.0), (ours, theirs)


def _athlete(seed: int):
    """A simulated athlete with every shin effect and an uncalibrated consumer part, the clip
    placed as ``bench_accuracy`` places it, a 5.5 s stance (calibration ends as the knee is
    back at the stance: the return's jolt sets the clip wobbling)."""
    from dorsimeter.sim import Mount, ShankSim, ShinEffects
    from dorsimeter.sim.motion import script_spec

    rng = np.random.default_rng([seed, 8_000_009])
    rot = (float(rng.uniform(-15, 15)), float(rng.uniform(-15, 15)), float(rng.uniform(0, 360)))
    sim = ShankSim(rate_hz=100.0, seed=seed, effects=ShinEffects(),
                   script=script_spec("wall").with_(reps=(3, 3), stance_s=5.5),
                   mount=Mount(height_m=float(rng.uniform(0.10, 0.30)), clip_rotation_deg=rot))
    return sim.generate(int(30.0 * 100))


def test_taking_the_offset_out_starts_the_fusion_warm_not_on_a_wobbling_sample():
    """The drives find an accelerometer offset; from the sample after the calibration the fusion
    runs on the offset-free accelerometer. A VQF reset there took "up" from that one sample —
    here the clip wobbling after the knee came back (up to 5 g at 12-25 Hz): the live angle
    read -35° at a standing rest and was still 0.6° off 3 s later. Warmed up on the stance and
    drives before it, the reading is right from the first sample; any batch split gives the
    same readings."""
    b = _athlete(5)
    r, pipe = _run(b, 10)
    cal = pipe.calibrations["left"]
    assert any(cal.acc_offset_m_s2)  # the case: an offset taken out as the fusion goes on
    err = r.tibia_angle_deg - truth_at(b, r.t_s)
    after = (r.t_s > cal.t_defined_s) & (r.t_s < cal.t_defined_s + 3.0)
    # the wall test's live end-range worst target (0.8°) holds from the first sample on
    assert np.abs(err[after]).max() < 0.8, np.abs(err[after]).max()
    for step in (7, 33):
        part, _ = _run(b, step)
        np.testing.assert_array_equal(part.tibia_angle_deg, r.tibia_angle_deg)


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_a_swaying_rest_between_sets_is_not_learnt_as_gyro_bias(seed):
    """Issue 11: a standing rest is never still to the gyro: quiet standing sways up to 0.6° at
    0.05-0.6 Hz, which passes VQF's rest test (2 °/s), and VQF's rest estimator takes the sway's
    mean rate over a second or two as gyro bias (0.4 °/s seen: a tilt of about bias · tauAcc =
    1.2°, kept for the rest of the session). After the calibration the live fusion does not
    estimate bias at rest (the stance's bias is taken out, VQF's motion estimator follows the
    drift). Two sets of lunges with 10 s of swaying rest between (largest published sway): every
    held angle of the second set within 0.3° of the truth, as the first set's (these athletes
    read 0.5-1.2° off after the rest before)."""
    from dorsimeter.sim import Mount, ShankSim, ShinEffects
    from dorsimeter.sim.motion import script_spec

    fx = ShinEffects.only("sway").with_(sway_amplitude_deg=(0.6, 0.6))
    sim = ShankSim(seed=seed, effects=fx, mount=Mount(clip_rotation_deg=(10.0, -15.0, 120.0)),
                   script=script_spec("lunge").with_(sets=(2, 2), reps=(3, 3), stance_s=5.5))
    b = sim.generate(6000)
    pipe = Pipeline(100.0)
    r = Readings.concat([pipe.push(b.slice(i, i + 10))[0] for i in range(0, len(b), 10)])
    err = np.asarray(r.tibia_angle_deg) - b.truth["tibia_angle_deg"]  # pyright: ignore[reportOptionalSubscript]
    cal = pipe.calibrations["left"]
    reps = [x for x in sim.counted_reps() if cal.t_defined_s < x.t_hold_s and x.t_return_s <
            b.t_s[-1]]
    held = [float(np.mean(err[(b.t_s >= x.t_hold_s) & (b.t_s <= x.t_return_s)])) for x in reps]
    assert len(held) == 6 and np.max(np.abs(held)) < 0.3, np.round(held, 2)
