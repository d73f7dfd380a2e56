"""SVG snapshots of the layouts at 80×24 and 120×40 (pytest-textual-snapshot).

Deterministic: a fixed simulated session (seed 3) is fed batch by batch from a scripted source,
the pipeline's output for it is played back from a recording (``tests/tui/recorded.py``: the
layout must not change when fusion is retuned), the wall clock is frozen, and the snapshot is
taken once every batch went through. Update with
``pytest tests/tui/test_snapshots.py --snapshot-update`` after a deliberate layout change and look
at the SVGs before committing them.
"""

from __future__ import annotations

import asyncio

import pytest

from dorsimeter.sources import LinkStats
from dorsimeter.store.db import Athlete
from dorsimeter.tui.app import MonitorApp
from dorsimeter.tui.screens import CalibrateScreen
from tests.tui.recorded import RecordedPipeline, batches_of
from tests.tui.rig import ScriptedSource, frozen_clock, wait_for


def recorded_app(name: str, gate=None, **kw) -> tuple[MonitorApp, ScriptedSource]:
    batches, _ = batches_of(name)
    source = ScriptedSource(batches, gate=gate)
    return MonitorApp(source, RecordedPipeline(name), clock=frozen_clock, **kw), source


def until_all_sent(source: ScriptedSource):
    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: source.sent == len(source.batches))
        await pilot.pause()
        pilot.app.refresh_view()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_monitor_layout(snap_compare, size):
    # left leg, then the right; ends holding the end range 0.6 s after a heel lift (banner up);
    # the athlete's lengths give the hand-width wall verdicts, the target is set by hand
    zoe = Athlete(1, "Zoe", False, 0.42, 0.14)
    app, source = recorded_app("both_legs", target_deg=35.0, athlete=zoe)
    assert snap_compare(app, terminal_size=size, run_before=until_all_sent(source))


def test_monitor_layout_without_alert_120x40(snap_compare):
    app, source = recorded_app("one_leg")
    assert snap_compare(app, terminal_size=(120, 40), run_before=until_all_sent(source))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_two_sensor_layout(snap_compare, size):
    # one sensor on each shin: the left holding its end range, the right 0.8 s after a heel
    # lift (its alert line red, the left's not), the live asymmetry in the per-side table
    left, _ = batches_of("two_left")
    right, _ = batches_of("two_right")
    ls = ScriptedSource(left, name="dorsi-0a01", link=LinkStats(battery_pct=81))
    rs = ScriptedSource(right, name="dorsi-0b02", link=LinkStats(battery_pct=12))
    app = MonitorApp(ls, RecordedPipeline("two_left"), clock=frozen_clock, target_deg=35.0,
                     right_source=rs, right_pipeline=RecordedPipeline("two_right"))

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: ls.sent == len(left) and rs.sent == len(right))
        await pilot.pause()
        pilot.app.refresh_view()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_calibration_wizard_result_80x24(snap_compare):
    gate = asyncio.Event()
    app, source = recorded_app("calibration", gate=gate)

    async def run_before(pilot) -> None:
        await pilot.press("c", "enter")  # strapped: stance and drives follow
        screen = pilot.app.screen
        assert isinstance(screen, CalibrateScreen)
        gate.set()
        await wait_for(pilot, lambda: source.sent == len(source.batches)
                       and screen.result == "ok")
        screen.follow()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help_80x24(snap_compare):
    app, source = recorded_app("one_leg")
    assert snap_compare(app, terminal_size=(80, 24), press=["question_mark"],
                        run_before=until_all_sent(source))
