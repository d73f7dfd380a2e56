"""Link faults on the node's wire protocol: loss, duplicates, reordering, wrap, drift, restarts.

The frames carry simulated wall-test samples; after each fault the decoder must count exactly
what happened, never move time backwards, and the pipeline's readings must go on matching the
simulator's ground truth.
"""

from __future__ import annotations

import numpy as np
import pytest

from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import ShankSim
from dorsimeter.types import Readings
from dorsimeter.wire import frames as F
from tests.reliability.streams import cat, decode, gilbert_elliott, node_stream


def _readings(batches, rate_hz):
    pipe = Pipeline(rate_hz)
    return Readings.concat([pipe.push(b)[0] for b in batches]), pipe


def _rmse_vs_truth(r: Readings, t_dev: np.ndarray, truth_deg: np.ndarray, after_s: float = 0.0,
                   keep: np.ndarray | None = None):
    """RMS error of readings against the truth of the sample with the same device time (from
    ``after_s`` on, and only where ``keep``)."""
    idx = np.searchsorted(t_dev, r.t_s - 1e-9)
    assert np.allclose(t_dev[idx], r.t_s, atol=1e-9)
    keep = (r.t_s >= after_s) & (True if keep is None else keep)
    return float(np.sqrt(np.mean((r.tibia_angle_deg[keep] - truth_deg[idx][keep]) ** 2)))


def test_bursty_loss_of_10_percent_is_counted_exactly_and_readings_continue():
    s = node_stream(60.0, rate_hz=100.0, per_frame=2, seq0=65_000, seed=4)
    lost = gilbert_elliott(len(s.frames), loss=0.10, burst_len=4.0, seed=1)
    lost[:5] = lost[-1] = False  # loss at the very ends is invisible to any receiver
    assert 0.07 < lost.mean() < 0.13
    dec = F.FrameDecoder()
    got = decode(dec, [f for f, gone in zip(s.frames, lost, strict=True) if not gone])
    assert dec.stats.lost == int(lost.sum())
    assert dec.stats.lost_samples == int(s.n_per_frame[lost].sum())
    assert dec.stats.duplicates == dec.stats.reordered == dec.stats.restarts == 0
    t = cat(got, "t_s")
    kept = np.repeat(~lost, s.n_per_frame)
    np.testing.assert_allclose(t, s.batch.t_s[kept], atol=1e-6)  # exactly the samples sent
    np.testing.assert_allclose(cat(got, "acc_m_s2"), s.batch.acc_m_s2[kept], atol=0.00125)
    r, pipe = _readings(got, 100.0)
    assert "left" in pipe.calibrations
    assert len(r) > 0.85 * len(s.batch)
    assert np.all(np.isfinite(r.tibia_angle_deg)) and np.all(np.diff(r.t_s) > 0)
    # the fusion bridges the holes (interpolated samples, outputs dropped): 0.43° RMS here; it
    # was ≈ 3° when the samples in the holes were simply missing from the integration
    rmse = _rmse_vs_truth(r, s.batch.t_s, s.batch.truth["tibia_angle_deg"], after_s=15.0)
    assert rmse < 1.0, rmse


def test_duplicated_and_reordered_notifications_deliver_each_sample_once_in_order():
    s = node_stream(30.0, rate_hz=100.0, per_frame=1, seed=5)
    rng = np.random.default_rng(2)
    order = list(range(len(s.frames)))
    swaps = 0
    for j in range(10, len(order) - 2, 20):  # every 20th notification swaps with the next
        if rng.random() < 0.5:
            order[j], order[j + 1] = order[j + 1], order[j]
            swaps += 1
    dups = sorted(rng.choice(np.arange(5, len(order)), size=90, replace=False), reverse=True)
    for j in dups:  # a notification delivered twice (BlueZ doubled callbacks)
        order.insert(int(j), order[int(j) - 1])
    dec = F.FrameDecoder()
    got = decode(dec, [s.frames[i] for i in order])
    seq = cat(got, "seq")
    assert np.all(np.diff(seq) > 0)  # once each, in order
    assert dec.stats.duplicates == len(dups)
    assert dec.stats.reordered == swaps
    assert dec.stats.lost == 0 and dec.stats.restarts == 0
    # a frame overtaken across notifications is dropped and counted; the rest all arrive
    assert len(seq) + dec.stats.late_dropped == len(s.frames)
    assert dec.stats.late_dropped == swaps
    t = cat(got, "t_s")
    assert np.all(np.diff(t) > 0)
    r, _ = _readings(got, 100.0)
    assert _rmse_vs_truth(r, s.batch.t_s, s.batch.truth["tibia_angle_deg"], 15.0) < 1.0


def test_device_clock_and_sequence_wrap_in_the_same_stream():
    t0 = (1 << 32) - 7_000_000  # the µs clock wraps 7 s in, the sequence 1 s in
    s = node_stream(20.0, rate_hz=200.0, per_frame=4, seq0=65_536 - 50, t0_us=t0, seed=6)
    # any split of the byte stream
    data = b"".join(s.frames)
    cuts = np.sort(np.random.default_rng(0).integers(0, len(data), 400))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    dec = F.FrameDecoder()
    got = decode(dec, chunks)
    t = cat(got, "t_s")
    assert len(t) == len(s.batch) and t[-1] > 2**32 * 1e-6
    np.testing.assert_allclose(np.diff(t), 0.005, atol=1e-6)
    assert dec.stats.lost == dec.stats.restarts == dec.stats.duplicates == 0


def test_device_clock_100ppm_fast_for_an_hour():
    rate = 50.0
    s = node_stream(3600.0, rate_hz=rate, per_frame=16, clock_ppm=100.0, seed=8,
                    t0_us=(1 << 32) - 600_000_000)  # and one clock wrap on the way
    dec = F.FrameDecoder()
    got = decode(dec, [b"".join(s.frames[i:i + 7]) for i in range(0, len(s.frames), 7)])
    t = cat(got, "t_s")
    assert len(t) == len(s.batch)
    assert dec.stats.lost == dec.stats.restarts == dec.stats.duplicates == 0
    # device time runs 0.36 s ahead after an hour, steadily, and never steps
    span = t[-1] - t[0]
    assert abs(span - (len(t) - 1) / rate * (1 + 100e-6)) < 1e-4
    assert np.all(np.abs(np.diff(t) - 1 / rate * (1 + 100e-6)) < 2e-6)
    # readings at the start and at the end of the hour (the middle is skipped to save time)
    head = [b for b in got if b.t_s[0] < t[0] + 40]
    tail = [b for b in got if b.t_s[0] > t[-1] - 60]
    r, pipe = _readings(head + tail, rate)
    assert "left" in pipe.calibrations and r.t_s[-1] == t[-1]
    assert _rmse_vs_truth(r, t, s.batch.truth["tibia_angle_deg"], after_s=t[-1] - 50) < 1.0


@pytest.mark.parametrize("uptime_s", [30.0, 1.0])
@pytest.mark.parametrize("boot_status", [True, False])
def test_power_cycle_restarts_sequence_and_clock_without_losing_time_or_counting_billions(
        uptime_s, boot_status):
    sim = ShankSim(rate_hz=100.0, seed=9)
    rate = 100.0
    # the node ran ``uptime_s`` (its clock had been up for an hour), then was off while the
    # shin moved on, and restarts: sequence 0 and its clock from zero; the first frame after
    # boot comes 0.35 s into the new uptime. After 1 s the mounting calibration was still
    # under way: it starts again at the restart, so that athlete is still standing after it
    off_s = 3.0 if uptime_s > 10 else 0.2
    a = node_stream(uptime_s, rate, per_frame=4, seq0=4321, t0_us=3_600_000_000, sim=sim)
    sim.generate(int(off_s * rate))  # what the shin did while the node was off
    b = node_stream(40.0, rate, per_frame=4, seq0=0,
                    t0_us=350_000 - int((uptime_s + off_s) * 1e6), sim=sim)
    chunks = list(a.frames)
    if boot_status:
        chunks.append(F.encode_status(0, F.NodeStatus(F.STATUS_BOOT | F.STATUS_STREAMING, 100,
                                                      80, 3900, 0, 0), t_us=300_000))
    chunks += b.frames
    dec = F.FrameDecoder()
    got = decode(dec, chunks)
    t = cat(got, "t_s")
    assert dec.stats.restarts == 1
    assert dec.stats.lost == 0 and dec.stats.lost_samples == 0 and dec.stats.duplicates == 0
    assert len(t) == len(a.batch) + len(b.batch)  # every sample of both lives delivered
    assert np.all(np.diff(t) > 0) and np.diff(t).max() < 0.1  # no step back, no hole
    # the first sample of the new life says so, and only it
    starts = np.cumsum([0] + [len(x) for x in got])[:-1]
    assert [int(i) for i, x in zip(starts, got, strict=True) if x.restart] == [len(a.batch)]
    # readings go on after the restart and match the truth from the join on: the fusion
    # started again from the accelerometer (without that, VQF drags the old orientation
    # along: ≈ 25° RMS over these 3 s, 10-20 s to come back within 1°)
    r, pipe = _readings(got, rate)
    assert pipe.restarts == 1 and "left" in pipe.calibrations
    truth = np.concatenate([a.batch.truth["tibia_angle_deg"], b.batch.truth["tibia_angle_deg"]])
    after = t[len(a.batch)]
    assert r.t_s[-1] > after + 35
    first = r.t_s < after + 3.0
    assert _rmse_vs_truth(r, t, truth, after_s=after, keep=first) < 0.3
    assert _rmse_vs_truth(r, t, truth, after_s=after) < 0.5
    if uptime_s == 30.0:  # calibrated before the reboot: the same stream, restart not told
        for x in got:
            x.restart = False
        blind, _ = _readings(got, rate)
        assert _rmse_vs_truth(blind, t, truth, after_s=after, keep=blind.t_s < after + 3) > 5
