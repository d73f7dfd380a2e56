"""The monitor screen under textual's pilot, fed by the simulated rig: the numbers it shows
(per-side best, asymmetry band and MDC flag, link figures, heel-lift alert and rep markers)
against the simulator's ground truth."""

from __future__ import annotations

import math
import re

import numpy as np

from dorsimeter.pipeline import Pipeline
from dorsimeter.session.asymmetry import asymmetry
from dorsimeter.sources import LinkStats
from dorsimeter.store.db import Athlete
from dorsimeter.tui.app import LegUpdate, MonitorApp
from dorsimeter.tui.model import band_colour
from tests.tui.rig import ScriptedSource, frozen_clock, sim_batches, wait_for


def truth_per_side(batches, sim):
    t = np.concatenate([b.t_s for b in batches])
    a = np.concatenate([b.truth["tibia_angle_deg"] for b in batches])
    side = np.array([s for b in batches for s in [b.side] * len(b)])
    return t, a, side


def completed_drives(angle_deg, up_deg: float = 8.0, down_deg: float = 4.0,
                     held_s: float = 1.0, rate_hz: float = 100.0) -> int:
    """Attempts in a truth trace: drives above ``up_deg`` and back below ``down_deg`` that stayed
    within 1° of their peak for ``held_s`` (the quick calibration drives do not)."""
    n, start = 0, None
    for i, x in enumerate(angle_deg):
        if start is None and x > up_deg:
            start = i
        elif start is not None and x < down_deg:
            drive = np.asarray(angle_deg[start:i])
            if np.count_nonzero(drive >= drive.max() - 1.0) / rate_hz >= held_s:
                n += 1
            start = None
    return n


def text_of(app, selector: str) -> str:
    return str(app.query_one(selector).render())


async def test_per_side_table_and_asymmetry_follow_the_truth():
    batches, sim = sim_batches(24.4, then_right_s=20.5, end_angle_deg={"left": 38.0, "right": 28.0})
    source = ScriptedSource(batches)
    zoe = Athlete(1, "Zoe", False, 0.42, 0.14)  # tibia, toe-to-ankle (m)
    app = MonitorApp(source, Pipeline(100.0), clock=frozen_clock, athlete=zoe)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: source.sent == len(batches))
        await pilot.pause()
        app.refresh_view()
        _, a, side = truth_per_side(batches, sim)
        true_best = {s: float(a[side == s].max()) for s in ("left", "right")}
        text = text_of(app, "#sides")
        shown = {s: float(re.search(rf"{s}\s+(-?\d+\.\d)°", text).group(1))
                 for s in ("left", "right")}
        for s in ("left", "right"):
            assert abs(shown[s] - true_best[s]) < 1.0, (s, shown, true_best)
        want = asymmetry(true_best["left"], true_best["right"])
        # the truth is clear of the band edges (10 %, 25 %) and of the MDC (4.6°)
        assert 12 < want.percent < 23 and want.diff_deg > 5.6
        diff = float(re.search(r"left − right\s+([+-]\d+\.\d)°", text).group(1))
        assert abs(diff - want.diff_deg) < 1.0
        assert f"● {want.band}" in text and want.band == "10–25 %" and band_colour(want) == "yellow"
        assert "beyond MDC 4.6°" in text
        # trials: one per completed drive of the simulated script, per side
        for s in ("left", "right"):
            drives = completed_drives(a[side == s])
            row = re.search(rf"{s}\s+-?\d+\.\d°\s+(\d+)", text)
            assert int(row.group(1)) == drives, (s, text)
        # centimetres and the hand-width wall by the athlete's geometry (knee = L·sin θ ahead)
        knee_cm = {s: 42.0 * math.sin(math.radians(true_best[s])) for s in true_best}
        cm = float(re.search(r"(\d+\.\d) cm at the wall", text).group(1))
        assert abs(cm - (knee_cm["left"] - knee_cm["right"])) < 0.8
        assert knee_cm["left"] - (14 + 9) > 2.0 and "✓ reaches" in text
        gap = float(re.search(r"✗ (\d+\.\d) cm", text).group(1))
        assert abs(gap - (14 + 9 - knee_cm["right"])) < 0.8
        # the sensor line: name, side, calibration of the current leg
        sensors = text_of(app, "#sensors")
        assert "simulated rig" in sensors and "RIGHT" in sensors and "calibrated" in sensors


async def test_link_figures_count_lost_packets_exactly():
    batches, _ = sim_batches(12, drop_every=10)  # every 10th batch of 5 samples lost
    source = ScriptedSource(batches, link=LinkStats(battery_pct=42))
    app = MonitorApp(source, Pipeline(100.0), clock=frozen_clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: source.sent == len(batches))
        app.refresh_view()
        link = app.model.links["left"]
        assert link.lost == 5 * (240 // 10 - 1)  # the last dropped batch is not yet seen
        sensors = text_of(app, "#sensors")
        assert re.search(r"loss (\d+\.\d) %", sensors).group(1) == f"{100 * link.loss:.1f}"
        assert abs(link.loss - 0.1) < 0.005
        rate = float(re.search(r"(\d+) Hz", sensors).group(1))
        assert 88 <= rate <= 92  # 90 % of 100 Hz arrives
        assert "batt 42 %" in sensors and "streaming" not in sensors.lower()


async def test_reconnecting_state_and_stall_are_shown():
    batches, _ = sim_batches(2)
    source = ScriptedSource(batches, link=LinkStats(state="reconnecting", reconnects=2,
                                                    rate_hz=0.0))
    app = MonitorApp(source, Pipeline(100.0), clock=frozen_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: source.sent == len(batches))
        app.refresh_view()
        sensors = text_of(app, "#sensors")
        assert "RECONNECTING" in sensors and "reconnects 2" in sensors and " 0 Hz" in sensors
    # a source that says nothing: no batch for longer than STALL_S is shown as stalled
    now = [0.0]
    source = ScriptedSource(batches)
    app = MonitorApp(source, Pipeline(100.0), clock=lambda: now[0])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: source.sent == len(batches))
        app.refresh_view()
        assert "STALLED" not in text_of(app, "#sensors")
        now[0] = 5.0
        app.refresh_view()
        assert "STALLED" in text_of(app, "#sensors")


async def test_heel_lift_banner_bell_and_invalid_rep():
    # the heel switch unloads for 0.6 s at the end range of the drive that starts at 19.3 s
    lift = (21.0, 21.6)
    batches, sim = sim_batches(22.4, heel_off=[lift])
    source = ScriptedSource(batches)
    app = MonitorApp(source, Pipeline(100.0), clock=frozen_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: source.sent == len(batches))
        app.refresh_view()
        banner = app.query_one("#banner")
        assert banner.has_class("on") and not banner.has_class("warn")
        assert "HEEL LIFT" in str(banner.render())
        assert app.bells == 1 and app.model.heel_lifts == 1
        assert "heel switch" in text_of(app, "#status")
        # the rep that contains the lift is marked invalid, the earlier ones valid
        t, a, _ = truth_per_side(batches, sim)
        lifted = [m for m in app.model.reps if m.t_s <= lift[0]]
        assert lifted[-1].valid is False
        assert all(m.valid for m in lifted[:-1])
        start = t[np.flatnonzero((t < lift[0]) & (a < 5))[-1]]  # truth: the drive's start
        assert abs(lifted[-1].t_s - start) < 1.0
        assert "✗" in text_of(app, "#trace")
        # 2 s of device time after the heel is down again the banner goes
        more, _ = sim_batches(0.1)
        for b in more:
            b.t_s = b.t_s + 24.0
        leg = app.chosen  # one batch through the live session, shown
        app.on_leg_update(LegUpdate(leg, app.live.step(leg, more[0])))
        app.model._expire(24.1)
        app.refresh_view()
        assert not banner.has_class("on")


async def test_target_line_and_colour_when_reached():
    batches, sim = sim_batches(15.5)
    source = ScriptedSource(batches)
    app = MonitorApp(source, Pipeline(100.0), target_deg=30.0, clock=frozen_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: source.sent == len(batches))
        app.refresh_view()
        t_end = app.shown_t_s
        truth = float(sim.kinematics(np.array([t_end]))["tibia_angle_deg"][0])
        assert truth > 31  # the script holds the end range here
        assert abs(app.shown_angle_deg - truth) < 1.0
        assert app.query_one("#angle").has_class("reached")
        assert "target 30°" in text_of(app, "#gauge")
        app.target_option_deg = 45.0
        app.refresh_view()
        assert not app.query_one("#angle").has_class("reached")
        assert "target 45°" in text_of(app, "#gauge")


async def test_knee_drift_banner_is_amber_and_heel_lift_takes_precedence():
    from dorsimeter.pipeline.pipeline import Event
    from dorsimeter.types import Readings

    batches, _ = sim_batches(1)
    source = ScriptedSource(batches)
    app = MonitorApp(source, Pipeline(100.0), clock=frozen_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: source.sent == len(batches))
        drift = Event("knee_drift", 0.9, "left", "knee drifting toward the midline (6°): "
                      "drive the knee straight forward")
        app.model.add(Readings(), [drift])
        app.refresh_view()
        banner = app.query_one("#banner")
        assert banner.has_class("on") and banner.has_class("warn")
        assert "KNEE DRIFT" in str(banner.render()) and app.bells == 1
        lift = Event("heel_lift", 0.95, "left", "heel lifted (shank_imu): rep 2 not scored")
        app.model.add(Readings(), [lift])
        app.refresh_view()
        assert not banner.has_class("warn") and app.bells == 2
        assert "HEEL LIFT — heel lifted (shin sensor)" in str(banner.render())


def test_the_per_side_table_never_wraps_and_reads_in_full():
    """Issue 12 items 11 and 13: rows with heel lifts and a wall verdict wrapped at 80 and 120
    columns; the headings were `n` and `top-3`. Every line fits the width it is drawn in."""
    from dorsimeter.tui.widgets import SIDES_FULL_WIDTH, render_sides

    wall = {"reaches": False, "knee_to_wall_cm": 12.3, "wall_cm": 9.0}
    rows = [{"side": s, "kind": "best", "best_deg": b, "trials": 12, "invalid": 11,
             "wall": wall, "max_deg": b, "mean3_deg": b - 0.4, "best_of": 3}
            for s, b in (("left", -12.5), ("right", 38.2))]
    for width in (SIDES_FULL_WIDTH, 32):
        text = str(render_sides(rows, "right", asymmetry(-12.5, 38.2), width=width))
        lines = text.split("\n")
        assert max(len(line) for line in lines) <= width, (width, lines)
        assert "top-3" not in text and "≈" not in text
    full = str(render_sides(rows, "right", asymmetry(-12.5, 38.2), width=SIDES_FULL_WIDTH))
    assert "trials" in full and "heel lifts" in full and "9 cm wall" in full
    assert "mean of best 3: left -12.9°, right 37.8°" in full


async def test_a_replaced_sensors_last_words_are_not_shown():
    """A batch or the end of a sensor already replaced (its worker was cancelled with the
    message in flight) changes nothing of what the new sensor shows."""
    from dorsimeter.session.live import Step
    from dorsimeter.types import Readings

    batches, _ = sim_batches(2)
    first = ScriptedSource(batches)
    app = MonitorApp(first, Pipeline(100.0), clock=frozen_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: first.sent == len(batches))
        await pilot.pause(0.05)
        old = app.chosen
        more, _ = sim_batches(1, seed=5)
        second = ScriptedSource(more, name="second rig")
        await app.switch_source(second)
        n = sum(len(b) for b in batches + more)  # every sample of both, shown once
        await wait_for(pilot, lambda: second.sent == len(more) and app.samples == n)
        assert first.closed and app.source is second and old.ended
        old.error = "dorsi-0a01: lost (no reconnection in 30 s)"
        app.on_leg_update(LegUpdate(old, Step(old, batches[0], Readings(), [])))
        app.on_leg_update(LegUpdate(old, None))
        assert app.samples == n and app.error is None and not app.source_ended
        app.refresh_view()
        assert "second rig" in text_of(app, "#sensors") and "LOST" not in text_of(app, "#sensors")
