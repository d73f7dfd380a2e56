"""The two-sensor monitor (one sensor on each shin) under textual's pilot, fed by two simulated
rigs: each leg's shown angle, trace and best against that leg's ground truth, the live asymmetry
against the truth-derived one, a heel lift alerting only its own leg, one sensor dropping out
while the other streams on, and the calibration wizard per leg."""

from __future__ import annotations

import asyncio
import re

import numpy as np

from dorsimeter.errors import DeviceError
from dorsimeter.pipeline import Pipeline
from dorsimeter.session.asymmetry import asymmetry
from dorsimeter.session.wall import DEG_PER_CM_RULE as DEG_PER_CM
from dorsimeter.sources import LinkStats
from dorsimeter.tui.app import MonitorApp
from dorsimeter.tui.screens import CalibrateScreen
from tests.tui.rig import ScriptedSource, frozen_clock, sim_batches, wait_for

END_DEG = {"left": 38.0, "right": 28.0}  # the simulated athlete's end range per leg
LIFT = (21.0, 21.6)  # the right heel switch unloads here (end range of a drive)


def legs(seconds: float = 22.4, heel_off_right=(LIFT,), **right_kw):
    """A simulated rig per shin (different seeds: two sensors, two clips)."""
    left, _ = sim_batches(seconds, side="left", seed=3, end_angle_deg=END_DEG)
    right, _ = sim_batches(seconds, side="right", seed=4, end_angle_deg=END_DEG,
                           heel_off=list(heel_off_right), **right_kw)
    return left, right


def truth(batches):
    t = np.concatenate([b.t_s for b in batches])
    return t, np.concatenate([b.truth["tibia_angle_deg"] for b in batches])


def true_hold_deg(rep, t, a) -> float:
    """The truth over the rep's best hold (the one its end-range angle is the median of)."""
    t0, t1, _ = max(rep.holds, key=lambda h: h[2])
    return float(np.median(a[(t >= t0) & (t <= t1)]))


def text_of(app, selector: str) -> str:
    return str(app.query_one(selector).render())


class DroppingSource(ScriptedSource):
    """Streams ``n`` batches, then the link is gone for good (as a BLE source gives up)."""

    def __init__(self, batches, n: int, **kw) -> None:
        super().__init__(batches, **kw)
        self.n = n

    async def stream(self):
        for b in self.batches[:self.n]:
            await asyncio.sleep(0)
            self.sent += 1
            yield b
        raise DeviceError("dorsi-0b02: lost (no reconnection in 30 s)")


def both_app(left_src, right_src, **kw) -> MonitorApp:
    return MonitorApp(left_src, Pipeline(100.0), clock=frozen_clock, right_source=right_src,
                      right_pipeline=Pipeline(100.0), **kw)


async def test_both_legs_follow_their_truth_and_the_asymmetry_updates_live():
    lb, rb = legs(heel_off_right=())
    gate = asyncio.Event()  # the right leg starts once the left has been measured
    ls, rs = ScriptedSource(lb, name="dorsi-0a01"), ScriptedSource(rb, name="dorsi-0b02",
                                                                    gate=gate)
    app = both_app(ls, rs)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: ls.sent == len(lb))
        await pilot.pause()
        app.refresh_view()
        sides = text_of(app, "#sides")
        assert "asymmetry: test both legs" in sides and "left − right" not in sides
        assert "RIGHT" in text_of(app, "#label-right") and app.legs["right"].latest is None
        assert app.query_one("#angle-right").value == "--.-"
        gate.set()
        await wait_for(pilot, lambda: rs.sent == len(rb))
        await pilot.pause()
        app.refresh_view()
        sides = text_of(app, "#sides")
        true_best = {}
        for side, batches in (("left", lb), ("right", rb)):
            leg = app.legs[side]
            t, a = truth(batches)
            # the big digits: the leg's latest reading, at the truth of that instant
            shown = float(app.query_one(f"#angle-{side}").value)
            assert shown == round(leg.shown_angle_deg, 1)
            assert abs(shown - np.interp(leg.shown_t_s, t, a)) < 1.0, side
            # the trace: every drawn sample of the last 10 s within 1° of the truth
            tt, ta, _ = app.query_one(f"#trace-{side}").data
            assert len(tt) > 900 and np.max(np.abs(ta - np.interp(tt, t, a))) < 1.0, side
            # the leg's best: its end-range holds with the heel down, from the truth
            scored = app.session.sides[side].scored
            assert scored, side
            true_best[side] = max(true_hold_deg(r, t, a) for r in scored)
            best = float(re.search(rf"{side}\s+(-?\d+\.\d)°", sides).group(1))
            assert abs(best - true_best[side]) < 1.0, (side, best, true_best)
            assert f"best {best:.1f}°" in text_of(app, f"#alert-{side}")
        want = asymmetry(true_best["left"], true_best["right"])  # from the truth
        assert 12 < want.percent < 23 and want.diff_deg > 5.6  # clear of band edges and the MDC
        diff = float(re.search(r"left − right\s+([+-]\d+\.\d)°", sides).group(1))
        assert abs(diff - want.diff_deg) < 1.0
        pct = float(re.search(r"left − right\s+[+-]\d+\.\d°\s+(\d+\.\d) %", sides).group(1))
        assert abs(pct - want.percent) < 3.0 and f"● {want.band}" in sides
        cm = float(re.search(r"● [^ ]+ %\s+(\d+\.\d) cm", sides).group(1))
        assert abs(cm - abs(want.diff_deg) / DEG_PER_CM) < 0.3  # 3.6°/cm, no lengths known
        assert want.beyond_mdc and "beyond MDC" in sides
        # two legs side by side: 32 columns, short headings explained by a legend line
        assert max(len(line) for line in sides.split("\n")) <= 32
        assert "n trials · lift: heel lifted" in sides
        lines = text_of(app, "#sensors").split("\n")
        assert len(lines) == 2
        assert "dorsi-0a01" in lines[0] and "LEFT" in lines[0] and "calibrated" in lines[0]
        assert "dorsi-0b02" in lines[1] and "RIGHT" in lines[1] and "calibrated" in lines[1]
        assert "both legs" in text_of(app, "#status")


async def test_a_heel_lift_alerts_only_its_own_leg():
    lb, rb = legs()  # the right heel lifts at 21.0–21.6 s; the session ends at 22.4 s
    ls, rs = ScriptedSource(lb), ScriptedSource(rb)
    app = both_app(ls, rs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: ls.sent == len(lb) and rs.sent == len(rb))
        await pilot.pause()
        app.refresh_view()
        right, left = app.query_one("#alert-right"), app.query_one("#alert-left")
        assert right.has_class("on") and "HEEL LIFT" in text_of(app, "#alert-right")
        assert not left.has_class("on") and "HEEL LIFT" not in text_of(app, "#alert-left")
        assert app.legs["right"].model.heel_lifts == 1 and app.legs["left"].model.heel_lifts == 0
        assert app.bells == 1
        # the right rep that held the lift is not scored; the left leg's reps all are
        assert [r.valid for r in app.session.sides["left"].reps if r.is_trial] == [True] * len(
            app.session.sides["left"].trials)
        t_lift = [m for m in app.legs["right"].model.reps if m.valid is False]
        assert t_lift and t_lift[-1].t_s < LIFT[0]
        assert "✗" in text_of(app, "#trace-right") and "✗" not in text_of(app, "#trace-left")


async def test_one_sensor_dropping_does_not_stop_the_other():
    lb, rb = legs(heel_off_right=(), drop_every=10)  # the right link loses 10 % of packets...
    n_right = len(rb) * 3 // 4  # ...and is lost for good at 3/4 (calibrated by then)
    ls, rs = ScriptedSource(lb), DroppingSource(rb, n_right)
    app = both_app(ls, rs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: rs.closed and ls.sent == len(lb))
        await pilot.pause()
        app.refresh_view()
        left = app.legs["left"]
        t, a = truth(lb)
        assert left.latest[0] == float(lb[-1].t_s[-1])  # the left leg streamed to its end
        assert abs(left.shown_angle_deg - np.interp(left.shown_t_s, t, a)) < 1.0
        assert not app.legs["left"].ended and app.legs["right"].ended
        lines = text_of(app, "#sensors").split("\n")
        assert "LOST" in lines[1] and "LOST" not in lines[0]
        # the right link's loss is counted from its sequence numbers; the left one lost none
        loss = app.legs["right"].model.links["right"].loss
        assert re.search(r"loss (\d+\.\d) %", lines[1]).group(1) == f"{100 * loss:.1f}"
        assert abs(loss - 0.1) < 0.01
        assert "loss 0.0 %" in lines[0]
        assert app.query_one("#angle-right").value == "--.-"
        assert "SENSOR LOST" in text_of(app, "#alert-right")
        assert "right sensor" in app.error and "left leg goes on" in app.message
        # the right leg's readings up to the drop are kept; its trace ends there
        tt, _, _ = app.query_one("#trace-right").data
        assert tt[-1] == float(rb[n_right - 1].t_s[-1])
        assert app.session.sides["left"].scored  # the left leg's trials go on being scored


async def test_calibration_wizard_calibrates_the_chosen_leg_only():
    lb, _ = sim_batches(11.0, side="left", seed=3)
    rb, _ = sim_batches(11.0, side="right", seed=4)
    gate = asyncio.Event()
    ls, rs = ScriptedSource(lb), ScriptedSource(rb, gate=gate, speed=4.0)
    app = both_app(ls, rs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: ls.sent == len(lb))
        left_cal = app.legs["left"].pipeline.calibrations["left"]
        await pilot.press("r")
        assert app.pipeline is app.legs["right"].pipeline
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CalibrateScreen)
        assert "RIGHT" in text_of(screen, "#cal-title")
        await pilot.press("enter")  # strapped: stance and drives follow
        gate.set()
        await wait_for(pilot, lambda: screen.result == "ok")
        steps = [s for s, _ in screen.seen]
        assert "still" in steps and "drives" in steps and steps[-1] == "ok"
        # the left leg kept its own calibration; the right one now has its own
        assert app.legs["left"].pipeline.calibrations["left"] is left_cal
        assert "right" in app.legs["right"].pipeline.calibrations
        assert "right" not in app.legs["left"].pipeline.calibrations
        await pilot.press("enter")
        app.refresh_view()
        assert "▶ RIGHT" in text_of(app, "#label-right") and "✓ calibrated" in text_of(
            app, "#label-right")
        assert "▶" not in text_of(app, "#label-left")


async def test_a_new_sensor_replaces_the_chosen_leg_only_and_help_explains_two_sensors():
    lb, rb = legs(11.0, heel_off_right=())
    ls, rs = ScriptedSource(lb, name="dorsi-0a01"), ScriptedSource(rb, name="dorsi-0b02")
    app = both_app(ls, rs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: ls.sent == len(lb) and rs.sent == len(rb))
        left_pipeline, session = app.legs["left"].pipeline, app.session
        await pilot.press("r")
        nb, _ = sim_batches(3.0, side="left", seed=5)  # a new clip; it says "left", it is not
        new = ScriptedSource(nb, name="dorsi-0c03")
        await app.switch_source(new)
        await wait_for(pilot, lambda: new.sent == len(nb))
        await pilot.pause()
        app.refresh_view()
        assert rs.closed and not ls.closed
        assert app.legs["left"].pipeline is left_pipeline and app.legs["right"].source is new
        assert app.legs["right"].pipeline.side == "right"  # bound to the right shin
        assert "stand tall" in app.legs["right"].pipeline.progress.text  # its own calibration
        lines = text_of(app, "#sensors").split("\n")
        assert "dorsi-0a01" in lines[0] and "dorsi-0c03" in lines[1] and "RIGHT" in lines[1]
        assert app.session is session  # the session goes on
        await pilot.press("question_mark")
        assert "Two sensors" in str(app.screen.query_one("#help-text").render())


async def test_an_outage_of_one_sensor_is_a_marked_gap_and_the_other_streams_through():
    lb, rb = legs(heel_off_right=())
    outage = (15.0, 17.0)  # the right link is down for 2 s, then comes back
    rb = [b for b in rb if not (b.t_s[0] >= outage[0] and b.t_s[-1] < outage[1])]
    ls = ScriptedSource(lb)
    rs = ScriptedSource(rb, link=LinkStats(gaps=1, reconnects=1))
    app = both_app(ls, rs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: ls.sent == len(lb) and rs.sent == len(rb))
        await pilot.pause()
        app.refresh_view()
        lines = text_of(app, "#sensors").split("\n")
        assert "gaps 1" in lines[1] and "reconnects 1" in lines[1] and "gaps" not in lines[0]
        # the samples missed are counted from the sequence numbers: 2 s at 100 Hz
        assert app.legs["right"].model.links["right"].lost == 200
        assert app.legs["left"].model.links["left"].lost == 0
        # the right trace has the hole (blank columns), the left one none
        for side, hole in (("right", True), ("left", False)):
            tt, _, _ = app.query_one(f"#trace-{side}").data
            assert bool(np.max(np.diff(tt)) > 1.9) is hole, side
        plot = text_of(app, "#trace-right").split("\n")[-2]  # the bottom row of the plot
        cols = plot[4:]
        t_end = float(rb[-1].t_s[-1])
        w = len(cols)
        hole = cols[int((outage[0] + 0.2 - (t_end - 10)) / 10 * w):
                    int((outage[1] - 0.2 - (t_end - 10)) / 10 * w)]
        assert hole.strip() == "" and len(hole) >= 4, plot
        assert "█" in text_of(app, "#trace-left").split("\n")[-2]
        # both legs still end up calibrated; the left rep is scored; the right one, which the
        # 2 s outage fell into, is kept but not scored (its held angle was not seen: issue 18)
        assert all(s in app.legs[s].pipeline.calibrations for s in ("left", "right"))
        assert app.session.sides["left"].scored
        right = app.session.sides["right"].trials
        assert right and all(r.link_lost and not r.scored for r in right)


class StagedSource(ScriptedSource):
    """Streams the first ``k`` batches, then the rest once ``go`` is set."""

    def __init__(self, batches, k: int, go: asyncio.Event, **kw) -> None:
        super().__init__(batches, **kw)
        self.k, self.go = k, go

    async def stream(self):
        for i, b in enumerate(self.batches):
            if i == self.k:
                await self.go.wait()
            await asyncio.sleep(0)
            self.sent += 1
            yield b
        await asyncio.Event().wait()


async def test_one_legs_raw_csv_failing_stops_only_that_recording(tmp_path):
    from dorsimeter.io.rawcsv import RawCsvWriter, read_raw_csv
    from tests.reliability.test_disk import file_size_limit

    lb, rb = legs(heel_off_right=())
    rb = rb[:len(rb) // 3]  # the right leg writes less than the left had when the disk filled
    left_go, right_go = asyncio.Event(), asyncio.Event()
    k = len(lb) // 2
    ls, rs = StagedSource(lb, k, left_go), ScriptedSource(rb, gate=right_go)
    paths = {s: tmp_path / f"raw-{s}.csv" for s in ("left", "right")}
    app = MonitorApp(ls, Pipeline(100.0), RawCsvWriter(paths["left"]), clock=frozen_clock,
                     right_source=rs, right_pipeline=Pipeline(100.0),
                     right_recorder=RawCsvWriter(paths["right"]))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: ls.sent == k)
        # the disk is full just past what the left file holds
        with file_size_limit(paths["left"].stat().st_size + 100):
            left_go.set()
            await wait_for(pilot, lambda: app.legs["left"].raw is None)
            assert app.message.startswith("recording stopped:") and "raw-left.csv" in app.message
            right_go.set()
            await wait_for(pilot, lambda: ls.sent == len(lb) and rs.sent == len(rb))
            await pilot.pause()
        # the left leg's live view went on; the right leg kept recording
        assert app.legs["left"].latest[0] == float(lb[-1].t_s[-1])
        assert app.legs["right"].raw is not None and not app.legs["left"].ended
    app.legs["right"].raw.close()
    left, right = read_raw_csv(paths["left"]), read_raw_csv(paths["right"])
    want = {s: np.concatenate([b.t_s for b in bb]) for s, bb in (("left", lb), ("right", rb))}
    assert np.array_equal(right.t_s, want["right"]) and set(right.side) == {"right"}
    n = len(left.t_s)  # every whole line written before the disk filled
    assert 5 * k <= n < len(want["left"]) and np.array_equal(left.t_s, want["left"][:n])


async def test_the_sensors_connect_one_after_the_other():
    """Two BLE scans or connects at once on one adapter can miss a sensor: the right one starts
    once the left one streams (or has failed)."""
    lb, rb = legs(3.0, heel_off_right=())
    gate = asyncio.Event()
    ls, rs = ScriptedSource(lb, gate=gate), ScriptedSource(rb)
    app = both_app(ls, rs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: ls.streaming)  # the left one is connecting (its gate)
        for _ in range(10):  # the app's turns: a right stream opened now would send at once
            await pilot.pause()
        assert ls.sent == 0 and rs.sent == 0 and not rs.streaming
        gate.set()
        await wait_for(pilot, lambda: ls.sent == len(lb) and rs.sent == len(rb))
    # a sensor that fails to connect does not hold the other one back
    ls = DroppingSource(lb, 0)
    rs = ScriptedSource(rb)
    app = both_app(ls, rs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: rs.sent == len(rb) and app.legs["left"].ended)
        assert app.legs["left"].error and not app.legs["right"].ended


async def test_a_guided_exercise_follows_the_chosen_leg():
    from dorsimeter.tui.screens import ProtocolScreen
    from tests.tui.test_screens import held_drives

    lb, rb = legs(31.0, heel_off_right=())
    gate = asyncio.Event()
    ls, rs = ScriptedSource(lb, gate=gate), ScriptedSource(rb)
    app = both_app(ls, rs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")
        screen = app.screen
        assert isinstance(screen, ProtocolScreen)
        titles = [p.title for p in screen.protocols]
        screen.query_one("#pro-list").highlighted = titles.index("Reverse lunge")
        await pilot.press("enter")
        gate.set()
        await wait_for(pilot, lambda: ls.sent == len(lb) and rs.sent == len(rb))
        app.refresh_view()
        _, a = truth(lb)
        want = held_drives(a, hold_s=app.protocol.protocol.hold_s)
        assert want >= 3
        state = app.protocol.state
        assert state.side == "left" and state.rep == want  # the right leg's drives not counted
        panel = str(app.query_one("#protocol").render())
        assert "LEFT" in panel and f"rep {want}/6" in panel
