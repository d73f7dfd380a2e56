"""The connect screen on the emulated BLE world: real bleak (BlueZ D-Bus backend) scanning and
streaming from an emulated sensor node (Bumble) through the fake org.bluez on a private bus.
The connection panel shows what BleSource measured: rate, loss, battery, state; the sensor's
stored box calibration (``dorsimeter sensor-cal``) is applied by the new pipeline."""

from __future__ import annotations

import pytest

from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.io.calfiles import save_sensor_calibration
from dorsimeter.pipeline import Pipeline
from dorsimeter.sources.ble import BleSource
from dorsimeter.store.security import AllowList
from dorsimeter.tui.app import MonitorApp
from dorsimeter.tui.screens import ConnectScreen
from dorsimeter.tui.services import StoreClient
from tests.emulators.dbus import private_system_bus
from tests.emulators.node import NodePeripheral
from tests.emulators.peripheral import Impairments
from tests.emulators.rig import BleRig
from tests.tui.rig import ScriptedSource, frozen_clock, sim_batches, wait_for


@pytest.fixture(scope="module")
def system_bus():
    with private_system_bus() as bus:
        yield bus


async def test_scan_allow_connect_and_link_figures(system_bus, tmp_path):
    async with BleRig(mtu=23) as rig:
        node = await rig.add(NodePeripheral(
            rig.link, "dorsi-07a1", "C0:D0:57:00:07:a1", battery_pct=64.5,
            impairments=Impairments(loss_fraction=0.10, seed=3)), rssi=-61)
        # the box calibration `dorsimeter sensor-cal --id C0:D0:57:00:07:A1` stored for it
        box = SensorCalibration("C0:D0:57:00:07:A1", (0.004, -0.002, 0.001), (0.05, -0.03, 0.08),
                                ((1.004, 0.001, 0.0), (0.0, 0.997, 0.002), (0.0, 0.0, 1.001)),
                                12, 0.0021)
        save_sensor_calibration(box, home=tmp_path)
        store = StoreClient(tmp_path)
        first = ScriptedSource(sim_batches(1)[0])
        app = MonitorApp(first, Pipeline(100.0), store=store, record_session=False,
                         clock=frozen_clock)
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                screen = ConnectScreen(scan_s=1.5)
                await app.push_screen(screen)
                await wait_for(pilot, lambda: any(f.spec.startswith("ble:")
                                                  for f in screen.found))
                i = next(k for k, f in enumerate(screen.found) if f.name == "dorsi-07a1")
                found = screen.found[i]
                assert "-61 dBm" in found.detail and "batt 64 %" in found.detail
                ol = screen.query_one("#con-list")
                ol.highlighted = i
                await pilot.press("enter")  # not one of the user's sensors yet: refused
                assert "press + to add it" in str(screen.query_one("#con-status").render())
                assert app.source is first
                await pilot.press("plus")
                assert AllowList.load(tmp_path).permits("C0:D0:57:00:07:A1")
                ol.highlighted = i
                await pilot.press("enter")
                assert isinstance(app.source, BleSource) and first.closed
                assert app.pipeline.sensor_cal == box  # read back from the data directory
                assert "box calibration C0:D0:57:00:07:A1 in use" in app.message
                await wait_for(pilot, lambda: app.samples >= 150, timeout_s=30)
                app.refresh_view()
                st = app.source.link
                row = app.sensor_rows()[0]
                assert row["state"] == "streaming" and row["battery"] == pytest.approx(0.64, 0.02)
                # what the panel shows is what the node really lost on the link
                assert row["loss"] == pytest.approx(st.loss)
                c = node.counters
                assert abs(row["loss"] - c.dropped / (c.sent + c.dropped)) < 0.03
                assert 0.05 < row["loss"] < 0.15
                assert row["rate_hz"] == st.rate_hz  # the source's own measurement
                assert f"{row['rate_hz']:.0f} Hz" in str(app.query_one("#sensors").render())
                text = str(app.query_one("#sensors").render())
                assert "C0:D0:57:00:07:A1" in text and f"loss {100 * row['loss']:.1f} %" in text
                assert "batt 64 %" in text and "box cal" in text
        finally:
            store.close()
