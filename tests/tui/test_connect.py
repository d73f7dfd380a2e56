"""The sensor screen edits the user's BLE allow-list (the real ``sensors.json`` in the test's
data directory): ``-`` removes the highlighted sensor after a confirmation, as
``dorsimeter sensors remove`` does; the user's sensors the scan did not see are listed too.
A BLE sensor's stored box calibration is found (by address, or by the name the scan saw) and a
damaged one refuses the connection. (Streaming with it: tests/tui/test_ble_connect.py.)"""

from __future__ import annotations

import json

import pytest

from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.errors import DorsimeterError
from dorsimeter.io.calfiles import save_sensor_calibration
from dorsimeter.pipeline import Pipeline
from dorsimeter.store.security import AllowList
from dorsimeter.tui.app import MonitorApp
from dorsimeter.tui.screens import ConnectScreen
from dorsimeter.tui.screens.connect import NOT_IN_RANGE, ConfirmScreen
from dorsimeter.tui.services import StoreClient, box_calibration_for
from dorsimeter.wire.sensorspec import SensorSpec
from tests.tui.rig import ScriptedSource, frozen_clock, sim_batches, wait_for

LEFT, RIGHT = "C0:D0:57:00:07:A1", "C0:D0:57:00:07:B2"


def status(screen) -> str:
    return str(screen.query_one("#con-status").render())


async def test_minus_removes_the_highlighted_sensor_after_confirmation(tmp_path):
    home = tmp_path / "home"
    allowed = AllowList.load(home)
    allowed.add(LEFT, "left shin")
    allowed.add(RIGHT, "right shin")
    store = StoreClient(home)
    app = MonitorApp(ScriptedSource(sim_batches(1)[0]), Pipeline(100.0), store=store,
                     record_session=False, clock=frozen_clock)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = ConnectScreen(scan_s=0.3)
            await app.push_screen(screen)
            await wait_for(pilot, lambda: not screen.scanning and screen.allowed is not None)
            mine = [f for f in screen.found if f.detail == NOT_IN_RANGE]
            assert [(f.address, f.name, f.spec) for f in mine] == [
                (LEFT, "left shin", f"ble:{LEFT}"), (RIGHT, "right shin", f"ble:{RIGHT}")]
            ol = screen.query_one("#con-list")
            labels = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
            assert sum("✓ yours" in t for t in labels) == 2
            # the simulated rig is nobody's BLE sensor: nothing to remove, no question
            ol.highlighted = 0
            await pilot.press("minus")
            assert not isinstance(app.screen, ConfirmScreen)
            assert "not one of your sensors" in status(screen)
            # answering no keeps the list as it is, on disk too
            ol.highlighted = screen.found.index(mine[0])
            await pilot.press("minus")
            assert isinstance(app.screen, ConfirmScreen)
            assert LEFT in str(app.screen.query_one("#confirm-text").render())
            await pilot.press("n")
            assert app.screen is screen
            assert "left shin kept" in status(screen)
            assert [s.address for s in AllowList.load(home).sensors] == [LEFT, RIGHT]
            # yes removes it from sensors.json; the screen lists what is left
            await pilot.press("delete")
            await pilot.press("y")
            await wait_for(pilot, lambda: "removed" in status(screen))
            on_disk = json.loads((home / "sensors.json").read_text(encoding="utf-8"))
            assert on_disk == {"sensors": [{"address": RIGHT, "label": "right shin"}]}
            assert not AllowList.load(home).permits(LEFT)
            assert status(screen) == (f"left shin removed — your sensors (1): {RIGHT} "
                                      "(right shin)")
            assert [f.address for f in screen.found if f.detail == NOT_IN_RANGE] == [RIGHT]
            assert ol.option_count == len(screen.found)
            # the last one too: the list is then empty, and says how to add one
            ol.highlighted = screen.found.index(next(f for f in screen.found
                                                     if f.address == RIGHT))
            await pilot.press("minus", "y")
            await wait_for(pilot, lambda: "right shin removed" in status(screen))
            assert "your sensors: none" in status(screen)
            assert AllowList.load(home).sensors == []
    finally:
        store.close()


def box(sensor_id: str, bias: float) -> SensorCalibration:
    return SensorCalibration(sensor_id, (bias, 0.0, 0.0), (0.02, 0.0, -0.01), n_poses=9,
                             residual_m_s2=0.003)


def test_box_calibration_is_found_by_address_then_by_the_scanned_name(tmp_path):
    by_addr, by_name = box(LEFT, 0.01), box("dorsi-07b2", 0.02)
    save_sensor_calibration(by_addr, home=tmp_path)
    save_sensor_calibration(by_name, home=tmp_path)
    assert box_calibration_for(SensorSpec.parse(f"ble:{LEFT}"), tmp_path) == by_addr
    assert box_calibration_for(SensorSpec.parse(f"ble:{LEFT.lower()}@50"), tmp_path) == by_addr
    assert box_calibration_for(SensorSpec.parse("ble:dorsi-07b2"), tmp_path) == by_name
    assert box_calibration_for(SensorSpec.parse(f"ble:{RIGHT}"), tmp_path,
                               ("dorsi-07b2",)) == by_name
    assert box_calibration_for(SensorSpec.parse(f"ble:{RIGHT}"), tmp_path) is None
    # sources without a stable id get none (the CLI's --sensor-cal is for them)
    assert box_calibration_for(SensorSpec.parse("sim"), tmp_path) is None
    assert box_calibration_for(SensorSpec.parse("serial:/dev/ttyACM0"), tmp_path,
                               ("dorsi-07b2",)) is None
    (tmp_path / "sensors" / f"{LEFT.replace(':', '_')}.json").write_text("{oops")
    with pytest.raises(DorsimeterError, match="not a sensor calibration"):
        box_calibration_for(SensorSpec.parse(f"ble:{LEFT}"), tmp_path)


async def test_a_damaged_box_calibration_refuses_the_connection(tmp_path):
    home = tmp_path / "home"
    AllowList.load(home).add(LEFT, "left shin")
    path = save_sensor_calibration(box(LEFT, 0.01), home=home)
    path.write_text("{oops")
    store = StoreClient(home)
    first = ScriptedSource(sim_batches(1)[0])
    app = MonitorApp(first, Pipeline(100.0), store=store, record_session=False,
                     clock=frozen_clock)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = ConnectScreen(scan_s=0.3)
            await app.push_screen(screen)
            await wait_for(pilot, lambda: not screen.scanning)
            await screen.connect(f"ble:{LEFT}")
            assert app.screen is screen and app.source is first and not first.closed
            text = status(screen)
            assert text.startswith("cannot connect: box calibration:") and str(path) in text
            assert app.pipeline.sensor_cal is None
    finally:
        store.close()


async def test_a_sensor_switched_on_one_leg_of_two_gets_its_box_calibration(tmp_path):
    cal = box(LEFT, 0.03)
    left, right = ScriptedSource(sim_batches(1)[0]), ScriptedSource(sim_batches(1)[0])
    app = MonitorApp(left, Pipeline(100.0), right_source=right, clock=frozen_clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        new = ScriptedSource(sim_batches(1, side="right")[0], name="dorsi-07a1")
        await app.switch_source(new, sensor_cal=cal)
        assert app.legs["right"].pipeline.sensor_cal is cal and app.legs["right"].source is new
        assert app.legs["left"].pipeline.sensor_cal is None and right.closed
        app.refresh_view()
        lines = str(app.query_one("#sensors").render()).splitlines()
        assert "dorsi-07a1" in lines[1] and "box cal" in lines[1]
        assert "box cal" not in lines[0]
