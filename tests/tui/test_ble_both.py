"""Two BLE sensors, one on each shin, in the monitor: real bleak (BlueZ D-Bus backend) against two
emulated sensor nodes (Bumble). One link drops and comes back; the other leg streams through the
outage, and the dropped one shows its reconnect and the gap on its own line."""

from __future__ import annotations

import re

import pytest

from dorsimeter.pipeline import Pipeline
from dorsimeter.sources.ble import BleSource
from dorsimeter.tui.app import MonitorApp
from tests.emulators.dbus import private_system_bus
from tests.emulators.node import NodePeripheral
from tests.emulators.rig import BleRig
from tests.tui.rig import frozen_clock, wait_for


@pytest.fixture(scope="module")
def system_bus():
    with private_system_bus() as bus:
        yield bus


async def test_one_ble_link_dropping_leaves_the_other_leg_streaming(system_bus):
    async with BleRig() as rig:
        await rig.add(NodePeripheral(rig.link, "dorsi-0a01", "C0:D0:57:00:0a:01", seed=1,
                                     battery_pct=81.0))
        right_node = await rig.add(NodePeripheral(rig.link, "dorsi-0b02", "C0:D0:57:00:0b:02",
                                                  seed=2, battery_pct=12.0))
        left, right = BleSource("dorsi-0a01", side="left"), BleSource("dorsi-0b02", side="right")
        app = MonitorApp(left, Pipeline(100.0), clock=frozen_clock, right_source=right,
                         right_pipeline=Pipeline(100.0))
        async with app.run_test(size=(100, 30)) as pilot:
            legs = app.legs
            received = lambda side: legs[side].model.links[side].received  # noqa: E731
            await wait_for(pilot, lambda: all(s in legs[s].model.links
                                              and received(s) >= 100 for s in legs),
                           timeout_s=30)
            await right_node.drop_link(silent_s=1.0)
            await wait_for(pilot, lambda: right.link.state == "reconnecting", timeout_s=10)
            left_at_drop = received("left")
            app.refresh_view()
            lines = str(app.query_one("#sensors").render()).split("\n")
            assert "RECONNECTING" in lines[1] and "RECONNECTING" not in lines[0]
            # the left leg streams through the right one's outage
            await wait_for(pilot, lambda: received("left") >= left_at_drop + 50, timeout_s=10)
            assert right.link.state == "reconnecting"
            # the right link comes back into the same session, the gap counted on its line
            await wait_for(pilot, lambda: right.link.state == "streaming"
                           and right.link.gaps >= 1, timeout_s=20)
            right_after = received("right")
            await wait_for(pilot, lambda: received("right") >= right_after + 50, timeout_s=10)
            app.refresh_view()
            lines = str(app.query_one("#sensors").render()).split("\n")
            assert "dorsi-0a01" in lines[0] or "C0:D0:57:00:0A:01" in lines[0]
            st = right.link  # the line shows what the source counted
            assert f"gaps {st.gaps}" in lines[1] and f"reconnects {st.reconnects}" in lines[1]
            assert "gaps" not in lines[0] and "reconnects" not in lines[0]
            batt = [int(re.search(r"batt (\d+) %", ln).group(1)) for ln in lines]
            assert 78 <= batt[0] <= 81 and 9 <= batt[1] <= 12  # each node's own battery
            assert not legs["left"].ended and not legs["right"].ended and app.error is None
            assert isinstance(app.legs["right"].source, BleSource)
            # the sides stay bound: every reading of each sensor is on its own leg
            assert set(legs["left"].model.links) == {"left"}
            assert set(legs["right"].model.links) == {"right"}


async def test_record_with_a_ble_sensor_on_each_shin(system_bus, tmp_path):
    """``record --right-sensor`` connects the sensors one after the other too (both at once, the
    second scan missed its sensor on this stack and the recording never started)."""
    from dorsimeter.io.rawcsv import read_raw_csv
    from dorsimeter.store.security import AllowList
    from tests.sources.test_ble import run_cli

    home = tmp_path / "home"
    async with BleRig() as rig:
        for name, addr, seed in (("dorsi-0a01", "C0:D0:57:00:0a:01", 1),
                                 ("dorsi-0b02", "C0:D0:57:00:0b:02", 2)):
            await rig.add(NodePeripheral(rig.link, name, addr, seed=seed))
            AllowList.load(str(home)).add(addr.upper())
        code, out, err = await run_cli(
            system_bus.env(), "record", "--sensor", "ble:dorsi-0a01", "--right-sensor",
            "ble:dorsi-0b02", "--duration", "2", "--out", str(tmp_path / "s.csv"),
            "--home", str(home), timeout_s=60)
    assert code == 0, err
    total = 0
    for side in ("left", "right"):  # --duration is 2 s of each sensor's own device time
        rec = read_raw_csv(tmp_path / f"s-{side}.csv")
        n = len(rec.t_s)
        assert set(rec.side) == {side} and rec.t_s[-1] - rec.t_s[0] < 2.0
        assert abs(n - round(2.0 * rec.rate_hz)) <= 1, (n, rec.rate_hz)  # nothing lost
        total += n
    assert f"wrote {total} samples" in out
