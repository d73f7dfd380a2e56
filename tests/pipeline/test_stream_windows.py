"""Offline re-analysis in bounded memory (issue 18): each gap-free stretch fused in overlapping
windows, their middles kept, stitched back in order (``pipeline.offline.offline_chunks``)."""

import numpy as np

from dorsimeter.core.fusion import up_in_sensor
from dorsimeter.io.rawcsv import RawRecording
from dorsimeter.pipeline.offline import (
    WINDOW_KEEP_S,
    WINDOW_OVERLAP_S,
    offline_chunks,
    offline_orientation,
    stretch_starts,
)


def _recording(t: np.ndarray, restart: np.ndarray | None = None, seed: int = 0) -> RawRecording:
    rng = np.random.default_rng(seed)
    n = len(t)
    acc = np.tile([0.0, 0.0, 9.81], (n, 1)) + 0.05 * rng.standard_normal((n, 3))
    return RawRecording(t, acc, 0.01 * rng.standard_normal((n, 3)), None,
                        np.full(n, "left", dtype=object), False, restart=restart)


def _pieces(rec: RawRecording, sizes) -> list[RawRecording]:
    """``rec`` in chunks of the given sizes, cycled (as a reader of any chunk size gives it)."""
    out, i, k = [], 0, 0
    while i < len(rec):
        out.append(rec.slice(i, i + sizes[k % len(sizes)]))
        i += sizes[k % len(sizes)]
        k += 1
    return out


def test_windows_keep_their_middles_stitched_in_order_within_one_stretch():
    """A stand-in fusion that writes each sample's own time and its window's first and last
    time into its "quaternion": every sample comes back once, in order, with its own value
    (no shift), from a window inside its stretch that reaches ``overlap`` beyond it on both
    sides unless its stretch ends first, and no window is longer than keep + 2·overlap."""
    rate = 10.0
    t = np.arange(3000) / rate
    t[1000:] += 5.0  # a link gap longer than the bridge: a new stretch
    t[1003:] += 0.1  # a short loss, bridged: the same stretch
    t[2950:] += 60.0  # a last stretch shorter than a window
    restart = np.zeros(3000, bool)
    restart[1700] = True  # a sensor restart: a new stretch
    rec = _recording(t, restart)
    keep_s, over_s = 13.0, 7.0  # 130 and 70 samples
    windows = []

    def stand_in(gyr, acc, rate_hz, side, cals, sensor_cal, lever_arm, t_s, restart):
        windows.append((t_s[0], t_s[-1], len(t_s)))
        assert len(stretch_starts(len(t_s), rate_hz, t_s, restart)) == 0  # one stretch
        return np.column_stack([t_s, np.full(len(t_s), t_s[0]), np.full(len(t_s), t_s[-1]),
                                np.zeros(len(t_s))])

    out = list(offline_chunks(_pieces(rec, [37, 500, 1, 64]), rate, keep_s=keep_s,
                              overlap_s=over_s, orientation=stand_in))
    q = np.concatenate([p.quat for p in out])
    np.testing.assert_array_equal(np.concatenate([p.t_s for p in out]), t)
    np.testing.assert_array_equal(q[:, 0], t)  # each sample its own window's output
    bounds = [0, *stretch_starts(len(t), rate, t, restart).tolist(), len(t)]
    assert bounds == [0, 1000, 1700, 2950, 3000]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        first, last = t[a], t[b - 1]
        w0, w1 = q[a:b, 1], q[a:b, 2]
        assert np.all(w0 >= first) and np.all(w1 <= last)  # never across a stretch's edge
        ts = t[a:b]
        assert np.all((w0 == first) | (w0 <= ts - over_s + 1e-9))
        assert np.all((w1 == last) | (w1 >= ts + over_s - 1e-9))
    assert max(n for _, _, n in windows) <= int((keep_s + 2 * over_s) * rate)
    # a stretch no longer than keep + overlap is one window: the whole stretch
    assert (t[2950], t[-1], 50) in windows


def test_windowed_offline_fusion_equals_the_whole_stretch():
    """Real offline VQF with the default windows on a 45 min stretch (a shin recording at
    50 Hz, no calibration: three windows) against the whole stretch fused at once: the tibia's
    up direction agrees to 0.01° everywhere (a fiftieth of the 0.5° end-range target; 0.002°
    here). Windows cut too short do not: with 60 s of overlap, VQF's bias estimate still
    remembers the window's edge."""
    from dorsimeter.sim import SensorErrors, ShankSim

    rate = 50.0
    part = ShankSim(rate_hz=rate, errors=SensorErrors.realistic("bmi270", rate, seed=3),
                    seed=3).generate(int(180 * rate))
    reps = 15
    n = reps * len(part)
    t = np.arange(n) / rate
    rec = RawRecording(t, np.tile(part.acc_m_s2, (reps, 1)), np.tile(part.gyr_rad_s, (reps, 1)),
                       None, np.full(n, "left", dtype=object), False)
    assert n / rate > 2 * WINDOW_KEEP_S + WINDOW_OVERLAP_S  # more than one window
    whole = offline_orientation(rec.gyr_rad_s, rec.acc_m_s2, rate, rec.side, t_s=t)
    out = list(offline_chunks(_pieces(rec, [50_000]), rate))
    assert len(out) == 3
    q = np.concatenate([p.quat for p in out])
    assert _angle_deg(q, whole).max() < 0.01
    short = list(offline_chunks([rec], rate, keep_s=WINDOW_KEEP_S, overlap_s=60.0))
    assert _angle_deg(np.concatenate([p.quat for p in short]), whole).max() > 0.01


def _angle_deg(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Angle between the up directions the two orientations give, per sample."""
    cos = np.clip(np.sum(up_in_sensor(q1) * up_in_sensor(q2), axis=1), -1.0, 1.0)
    return np.degrees(np.arccos(cos))
