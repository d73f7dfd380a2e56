"""The monitor's session model under textual's pilot, fed by the real simulated rig
(``SimSource``, paced faster than real time): trial counts after ``t``, calibration drives never
marked or counted, and an athlete change that asks first and numbers reps from 1 again.
Every wait polls a condition (counted reps, samples), never the wall clock."""

from __future__ import annotations

import contextlib
import io
import re

from dorsimeter.cli.monitor import print_sessions
from dorsimeter.pipeline import Pipeline
from dorsimeter.sources.sim import SimSource
from dorsimeter.store import Store
from dorsimeter.tui.app import MonitorApp
from dorsimeter.tui.services import StoreClient
from tests.tui.rig import frozen_clock, wait_for

SPEED = 10.0  # ten times real time: a wall-test rep every ~0.65 s of wall clock


def sim_app(tmp_path=None, seed: int = 3, **kw):
    source = SimSource(speed=SPEED, seed=seed)
    store = None if tmp_path is None else StoreClient(tmp_path)
    return MonitorApp(source, Pipeline(source.rate_hz), clock=frozen_clock, store=store,
                      record_session=store is not None, **kw), source, store


def trials_shown(app) -> dict[str, int]:
    """The per-side table's trial count ``n`` per side, as drawn."""
    app.refresh_view()
    text = str(app.query_one("#sides").render())
    return {s: int(re.search(rf"{s}\s+(?:—|-?\d+\.\d°)\s+(\d+)", text).group(1))
            for s in ("left", "right")}


async def test_trial_counts_stay_right_after_t_and_a_manual_trial_groups_its_reps(tmp_path):
    """Issue 12, item 2: wait for left trials, press r, then t twice with reps in between.
    Before: left jumped by one though the sensor was on the right, right froze while reps
    landed, the store kept fewer. Now: left stays, right counts its automatic trials plus the
    manual one, whose reps share its number; the store holds exactly what was shown."""
    app, source, store = sim_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        left = app.session.sides["left"]
        await wait_for(pilot, lambda: len(left.trials) >= 3, 120)
        await pilot.press("r")
        right = app.session.sides["right"]
        await wait_for(pilot, lambda: len(right.trials) >= 2, 120)
        # read once the right leg streams (a left batch made before the key may still end a rep)
        n_left = app.session.trials["left"]
        await pilot.press("t")
        # an automatic trial may still land while the key is on its way: count them after it
        trial = app.session.open_trial("right")
        auto_right = sum(r.set_no != trial for r in right.trials)
        assert trial == auto_right + 1 and auto_right >= 2 and "right trial" in app.message
        await wait_for(pilot, lambda: sum(r.set_no == trial for r in right.trials) >= 2, 120)
        await pilot.press("t")
        assert app.session.open_trial("right") is None
        inside = [r for r in right.trials if r.set_no == trial]
        assert f"{len(inside)} reps in it" in app.message
        assert app.session.trials == {"left": n_left, "right": auto_right + 1}
        assert trials_shown(app) == {"left": n_left, "right": auto_right + 1}
        assert app.session.trials["left"] == len(left.trials)  # no reps on the left meanwhile
        # numbered 1.. per leg, the manual trial's reps following on from the automatic ones
        assert [r.rep_no for r in right.trials] == list(range(1, len(right.trials) + 1))
        assert [r.set_no for r in right.trials[:auto_right]] == list(range(1, auto_right + 1))
        # after the trial closed nothing counts until t again (manual trials)
        n_after = len(right.trials)
        await wait_for(pilot, lambda: source.sim.t_s > right.trials[-1].t_end_s + 14.0, 120)
        assert len(right.trials) == n_after and app.session.trials["right"] == auto_right + 1
        # the trace marks the right leg's reps with the session's numbers
        shown = {m.rep for m in app.rep_markers(app.model) if m.rep is not None}
        assert shown and shown <= {r.rep_no for r in right.trials}
        # T: back to automatic trials, every held drive a trial of its own again
        await pilot.press("T")
        assert app.session.auto_trials and "automatic trials" in app.message
        await wait_for(pilot, lambda: len(right.trials) > n_after, 120)
        assert right.trials[n_after].set_no == auto_right + 2
        assert right.trials[n_after].rep_no == n_after + 1
        # what the session holds now is what is stored: the store reads it while the loop
        # waits (the sim streams on until the app has shut down, and under load another rep
        # may end before it has: compare with this moment's reps, not later ones)
        records, right_trials = list(app.session.counted), list(right.trials)
        sid = app.finish_session().result()
    store.close()
    with Store.open(tmp_path) as db:
        stored = db.trials(sid)
    assert len(stored) == len(records) == n_left + len(right_trials)
    assert [(t.side, t.set_no, t.rep) for t in stored if t.side == "right"] == [
        ("right", r.set_no, r.rep_no) for r in right_trials]
    assert sum(t.set_no == trial for t in stored if t.side == "right") == len(inside)


async def test_calibration_drives_are_not_marked_numbered_or_counted():
    """Issue 12, item 4: the calibration's drives showed as ▲2✓ ▲3✓ with 0 trials and the
    first real trial was #4. Now the trace has no marker for them and the first trial is ▲1."""
    app, source, _ = sim_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "left" in app.pipeline.calibrations, 120)
        cal_t = source.sim.t_s
        await wait_for(pilot, lambda: source.sim.t_s > cal_t + 2.0, 120)
        assert trials_shown(app)["left"] == 0
        assert not [m for m in app.rep_markers(app.model) if not app.model.in_rep
                    or m is not app.model.reps[-1]]
        left = app.session.sides["left"]
        await wait_for(pilot, lambda: len(left.trials) >= 1, 120)
        assert left.trials[0].rep_no == 1 and left.trials[0].t_start_s > cal_t - 2.0
        marks = app.rep_markers(app.model)
        assert [m.rep for m in marks][:1] == [1]
        app.refresh_view()
        trace = str(app.query_one("#trace").render())
        assert "▲1" in trace and "▲4" not in trace


async def test_changing_the_athlete_asks_first_and_numbers_reps_from_one_again(tmp_path):
    """Issue 12, item 5: ``a`` silently ended the session and the next one started at rep 25.
    Now a y/n question comes first (n keeps the session), the new session's reps are numbered
    from 1, and both sessions are kept for the report on quit."""
    from dorsimeter.tui.screens.connect import ConfirmScreen

    with Store.open(tmp_path) as db:
        ana, ben = db.athlete("Ana", 0.42, 0.14), db.athlete("Ben", 0.44, 0.15)
    app, source, store = sim_app(tmp_path, athlete=ana)
    async with app.run_test(size=(100, 30)) as pilot:
        first = app.session
        await wait_for(pilot, lambda: len(first.sides["left"].trials) >= 3, 120)
        app.change_athlete(ben)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Ana" in app.screen.question and "Ben" in app.screen.question
        await pilot.pause()
        await pilot.press("n")
        assert app.session is first and app.athlete.name == "Ana"
        app.change_athlete(ben)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        n_marks = len(app.model.reps)
        await pilot.press("y")
        assert app.session is not first and app.athlete.name == "Ben"
        assert len(app.model.reps) < n_marks  # the old session's markers are gone
        second = app.session.sides["left"]
        await wait_for(pilot, lambda: len(second.trials) >= 2, 120)
        assert [r.rep_no for r in second.trials] == list(range(1, len(second.trials) + 1))
        assert [r.set_no for r in second.trials] == list(range(1, len(second.trials) + 1))
        assert [m.rep for m in app.rep_markers(app.model)][:2] == [1, 2]
        [(future, results, who)] = app.finished
        assert results is first and who == "Ana"
        ana_id = future.result(timeout=30)
        ben_id = app.finish_session().result()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # what q prints: every session stored
            print_sessions(app, ben_id)
    store.close()
    said = out.getvalue()
    assert f"stored session {ana_id} (Ana):" in said and f"stored session {ben_id} (Ben):" in said
    assert said.rstrip().endswith(f"stored sessions {ana_id}, {ben_id}")
    assert said.count("wall test, trials 1 ") == 2  # each numbered from 1
    with Store.open(tmp_path) as db:
        assert [(s.id, s.athlete, s.ended) for s in db.sessions()] == [
            (ana_id, "Ana", True), (ben_id, "Ben", True)]
        assert [t.rep for t in db.trials(ben_id)] == list(range(1, len(db.trials(ben_id)) + 1))
        assert len(db.trials(ana_id)) == len(first.sides["left"].trials)
