"""A real unplug on the serial path whose gap ends inside the first rep's end-range hold (issue 18).

The node's firmware runs as ``python -m firmware_bridge --pty --link PATH --replug-after S`` (its
own process), real pyserial reads it through ``SerialSource``, and ``kill -USR1`` unplugs it in
the calibration drives. The calibration is solved with the drives before the gap, so the rep
tracker starts after it; the link comes back in the first rep's hold. Before the fix the tracker
never saw the gap and counted a trial starting mid-hold ("trial at 14.1 s not scripted").

The gap's length is set by the source's reopen backoff, not by the replug alone: the port is
replugged midway between two reopen tries, so the source reopens at the later one whatever the
scheduling jitter (``bench.bench_gaps.first_hold_case``), and the test checks the measured gap
did end inside the hold before it judges the session.
"""

from __future__ import annotations

import pytest

from bench.bench_gaps import (
    HOLD_CASE_REPLUG_S,
    HOLD_CASE_SPEED,
    RATE_HZ,
    first_hold_case,
    reopen_after_s,
    serial_session,
)
from dorsimeter.sim import Mount, ShankSim


def test_the_reopen_backoff_is_the_sources():
    """The tries the case is timed against: at once, then 0.1 s doubling to 2 s between."""
    assert [reopen_after_s(x) for x in (0.0, 0.05, 0.2, 1.0, 2.3, 3.2, 6.0)] == \
        pytest.approx([0.0, 0.1, 0.3, 1.5, 3.1, 5.1, 7.1])


@pytest.mark.slow
def test_a_real_unplug_from_the_drives_into_the_first_hold_adds_no_trial():
    seed = 1
    truth = ShankSim(rate_hz=RATE_HZ, seed=seed, mount=Mount())  # the bridge's own shank
    truth.generate(int(40 * RATE_HZ))
    first = truth.counted_reps()[0]
    unplug_at_s, gap_s = first_hold_case(truth)
    assert gap_s == pytest.approx(6.2)
    assert unplug_at_s < truth.reps[1].t_end_s  # in the drives: the second one's return
    # to 34 s of device time (17 s of wall time at 2×): the three reps after the first
    run = serial_session(seed, "drives", gap_s, HOLD_CASE_SPEED, process=True,
                         unplug_at_s=unplug_at_s, replug_after_s=HOLD_CASE_REPLUG_S,
                         seconds=34.0)
    # the case is the one meant: the outage began in the drives and the link came back in the
    # first rep's hold, early enough that the rest of the hold holds for hold_s (1 s)
    assert run.gap_before_s < truth.reps[1].t_end_s + 0.1, run
    assert first.t_hold_s < run.gap_after_s < first.t_return_s - 1.2, run
    assert not run.restarted  # the calibration was solved with the drives before the gap
    assert run.outcome == "right", run.why
