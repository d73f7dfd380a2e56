"""The clip-slip bench: real sessions with every shin effect, a turned clip alerted."""

import numpy as np

from bench import bench_clipslip as bc


def test_a_clip_turned_2_degrees_on_a_real_shin_is_alerted_after_the_turn_a_still_one_not():
    alerts, moved, t = bc.session(0, 0.0)
    assert alerts == []
    assert np.nanmax(np.abs(moved)) < 1.0
    alerts, moved, t = bc.session(0, 2.0)
    assert len(alerts) == 1 and alerts[0] > bc.SLIP_AT_S
    late = moved[np.isfinite(moved) & (t > bc.SLIP_AT_S + 20.0)]
    assert abs(float(np.median(late)) - 2.0) < 0.5
