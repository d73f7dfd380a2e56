"""``c`` pressed while a rep is under way: that rep is no trial.

The monitor's ``c`` forgets the side's mounting (``Pipeline.recalibrate``) and the athlete
stands and drives for a new one. A rep under way at the press used to stay open in the rep
tracker through the new stance and drives (their readings are the calibration's own, no rep's)
and end at the first reading after the new calibration: a wall-test trial spanning the wizard,
its end after it (the loaded run of ``test_a_scripted_demo_session…`` stored one starting
4 s before ``c``). Deterministic: ``c`` lands mid-hold of a known rep.
"""

from __future__ import annotations

import numpy as np

from dorsimeter.pipeline import Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.sim import ShankSim

RATE_HZ = 100.0
STEP = 5  # the monitor's sim batches


def test_a_rep_under_way_when_c_is_pressed_is_no_trial():
    # where the third rep holds (the same seed gives the same script)
    scripted = ShankSim(rate_hz=RATE_HZ, seed=3)
    scripted.generate(int(60 * RATE_HZ))
    rep = scripted.counted_reps()[2]
    t_c = rep.t_hold_s + 1.5  # its 1 s hold reached: a trial if it ended
    sim = ShankSim(rate_hz=RATE_HZ, seed=3)
    pipe, res = Pipeline(RATE_HZ), SessionResults()
    events = []
    pressed = False
    while sim.t_s < t_c + 60.0:
        if not pressed and sim.t_s >= t_c:
            pipe.recalibrate()  # what ``c`` does; the athlete stands and drives again
            sim.restart()
            pressed = True
        readings, found = pipe.push(sim.generate(STEP))
        res.add(readings, found)
        events += found
    assert pressed and sum(e.kind == "calibrated" for e in events) == 2
    t_recal = [e.t_s for e in events if e.kind == "calibrated"][1]
    reps = [e.rep for e in events if e.kind == "rep" and e.rep is not None]
    assert not [r for r in reps if r.t_start_s < t_c < (r.t_end_s or np.inf)]
    trials = res.sides["left"].trials
    assert not [r for r in trials if r.t_start_s < t_recal and (r.t_end_s or 0) > t_c]
    # the reps before the press and after the new calibration are trials, numbered on
    before = [r for r in trials if (r.t_end_s or 0) <= t_c]
    after = [r for r in trials if r.t_start_s > t_recal]
    assert len(before) == 2 and after
    assert [r.rep_no for r in trials] == list(range(1, len(trials) + 1))
