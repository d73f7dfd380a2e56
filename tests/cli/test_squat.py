"""The single-leg squat screen (issue 12 item 10): each rep's peak valgus (knee track toward the
midline) per side, in the monitor's protocol line, the trials export, the report and `history`,
against the simulator's squat script (valgus scripted per rep)."""

import csv

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.sim import ShankSim
from dorsimeter.sources.sim import rig_spec
from dorsimeter.store import Store, Trial


def _truth_valgus(sim: ShankSim, t_s: np.ndarray, t0: float, t1: float) -> float:
    """The largest true knee track between t0 and t1."""
    tt = t_s[(t_s >= t0) & (t_s <= t1)]
    return float(np.max(sim.kinematics(tt)["knee_track_deg"]))


def test_every_trial_carries_its_peak_valgus_in_the_export(tmp_path):
    """Reverse lunges (held 1.2 s: trials of the session, with a scripted knee track)."""
    home = str(tmp_path / "home")
    assert main(["record", "--sensor", "sim:lunge", "--speed", "0", "--duration", "60", "--out",
                 str(tmp_path / "r.csv"), "--home", home]) == 0
    assert main(["export", "latest", "--out", str(tmp_path / "x"), "--home", home]) == 0
    (path,) = (tmp_path / "x").glob("*-trials.csv")
    rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) >= 3
    sim = ShankSim(rate_hz=100.0, seed=0, script=rig_spec("lunge"))  # the rig `record` streamed
    t = np.arange(0.0, 60.0, 0.01)
    spread = []
    for r in rows:
        truth = _truth_valgus(sim, t, float(r["t_start_s"]), float(r["t_end_s"]))
        spread.append(truth)
        assert abs(float(r["peak_valgus_deg"]) - truth) < 1.0, (r, truth)
    assert np.ptp(spread) > 0.5  # the reps differ: each row carries its own


async def test_the_squat_screen_in_the_monitor_gives_each_rep_s_peak_valgus():
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.sources.sim import SimSource
    from dorsimeter.tui.app import MonitorApp
    from tests.tui.rig import wait_for

    source = SimSource(speed=8.0, seed=2, script="squat")
    app = MonitorApp(source, Pipeline(source.rate_hz), refresh_hz=10)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "left" in app.pipeline.calibrations, timeout_s=60)
        await pilot.press("p")
        pro = app.screen
        titles = [p.title for p in pro.protocols]
        pro.query_one("#pro-list").highlighted = titles.index("Single-leg squat")
        await pilot.press("enter")
        # the third rep back up: its peak is in (counted reps carry theirs)
        await wait_for(pilot, lambda: app.protocol.state.counted >= 3
                       and len(app.protocol.state.valgus) >= 3, timeout_s=90)
        app.refresh_view()
        panel = str(app.query_one("#protocol").render())
        state = app.protocol.state
        assert "Single-leg squat" in panel and "peak valgus rep" in panel
        t = np.arange(0.0, app.last_t_s, 0.01)
        for c in app.protocol.counted[:2]:
            rec = c.record
            truth = _truth_valgus(source.sim, t, rec.t_start_s, rec.t_end_s)
            assert truth > 4.0  # the squat drives the knee inward
            # knee track with no box calibration: 0.7° RMSE on the bench (its offset along the
            # knee axis is unobservable, README), so a peak within 2°
            assert abs(rec.peak_valgus_deg - truth) < 2.0
        side, rep, deg = state.valgus[-1]
        assert f"peak valgus rep {rep} {deg:.1f}°" in panel and side == "left"
        # the session counts the squat reps as what they are, and stores each peak valgus
        from dorsimeter.store.recorder import trial_from_rep

        squats = [r for r in app.session.sides["left"].counted
                  if r.exercise == "single_leg_squat"]
        assert len(squats) >= 2
        stored = [trial_from_rep(r) for r in squats]
        assert [t.rep for t in stored] == list(range(1, len(stored) + 1))
        for t, c in zip(stored, app.protocol.counted, strict=False):
            assert t.exercise == "single_leg_squat"
            assert t.peak_valgus_deg == pytest.approx(float(c.record.peak_valgus_deg))
        await pilot.press("q")


def _store_squat(home) -> int:
    with Store.open(home) as store:
        store.athlete("Sam", 0.42, 0.14)
        sid = store.start_session("monitor", "Sam", "simulated rig")
        store.add_trials(sid, [
            Trial("left", 18.0 + k, True, "shank_imu", 3.0 * k, 3.0 * k + 2.5, rep=k + 1,
                  exercise="single_leg_squat", set_no=1, hold_s=0.6, scored=True,
                  peak_valgus_deg=v)
            for k, v in enumerate((6.25, 8.5, 7.0))] + [
            Trial("right", 20.0, True, "shank_imu", 20.0, 22.5, rep=1,
                  exercise="single_leg_squat", set_no=1, hold_s=0.6, scored=True,
                  peak_valgus_deg=3.5)])
        store.end_session(sid)
    return sid


def test_history_and_report_show_the_squat_screen(tmp_path, capsys):
    home = tmp_path / "home"
    sid = _store_squat(home)
    assert main(["history", "Sam", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert (f"single-leg squat, session {sid}: peak valgus left 8.5° (largest of 3 reps), "
            "right 3.5° (largest of 1 reps)") in out
    assert main(["report", str(sid), "--out", str(tmp_path / "r.html"), "--home",
                 str(home)]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Single-leg squat: peak valgus" in page
    left = page[page.index('id="squat-left"'):page.index('id="squat-right"')]
    assert 'class="most"><span data-value="8.5">8.5°' in left
    assert 'rep 1: <span data-value="6.25">6.2°' in left and "rep 3:" in left
