"""The fake org.bluez, exercised by real bleak: scan data, read, write, notify, disconnect."""

from __future__ import annotations

import asyncio
import os

import pytest
from bleak import BleakClient, BleakScanner
from bumble.core import AdvertisingData
from bumble.gatt import Characteristic, Service

from tests.emulators.dbus import private_system_bus
from tests.emulators.peripheral import (
    NOTIFY,
    READ,
    Impairments,
    Peripheral,
    advertising_data,
)
from tests.emulators.rig import BleRig

SVC = "6e400001-0000-4000-8000-00000000d0c5"
DATA = "6e400002-0000-4000-8000-00000000d0c5"
CMD = "6e400003-0000-4000-8000-00000000d0c5"
LABEL = "6e400004-0000-4000-8000-00000000d0c5"


@pytest.fixture(scope="module", autouse=True)
def system_bus():
    with private_system_bus() as bus:
        yield bus


class Echo(Peripheral):
    """Notifies back every write, reversed; a readable label; battery in the advertisement."""

    def services(self):
        self.data = Characteristic(DATA, NOTIFY, Characteristic.READABLE, b"")
        label = Characteristic(LABEL, READ, Characteristic.READABLE, b"left shin")
        cmd = self.writable(CMD, lambda v: self.spawn(self.notify(self.data, v[::-1])))
        return [Service(SVC, [self.data, label, cmd])]

    def advertisement(self):
        uuid128 = bytes.fromhex(SVC.replace("-", ""))[::-1]
        return (advertising_data((AdvertisingData.FLAGS, b"\x06"),
                                 (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                                  uuid128),
                                 (AdvertisingData.SERVICE_DATA_16_BIT_UUID, b"\x0f\x18\x4d")),
                advertising_data((AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode())))


async def test_scan_sees_name_rssi_uuid_and_service_data_and_honours_uuid_filter():
    async with BleRig() as rig:
        await rig.add(Echo(rig.link, "Echo-1", "C0:00:00:00:00:01"), rssi=-61)
        await rig.add(Peripheral(rig.link, "Other", "C0:00:00:00:00:02"), rssi=-40)
        found = await BleakScanner.discover(timeout=1.0, return_adv=True, service_uuids=[SVC])
        assert len(found) == 1
        dev, adv = next(iter(found.values()))
        assert dev.address == "C0:00:00:00:00:01"
        assert adv.local_name == "Echo-1"
        assert adv.rssi == -61
        assert SVC in adv.service_uuids
        assert adv.service_data["0000180f-0000-1000-8000-00805f9b34fb"] == b"\x4d"
        everyone = await BleakScanner.discover(timeout=1.0)
        assert {d.address for d in everyone} == {"C0:00:00:00:00:01", "C0:00:00:00:00:02"}


async def test_read_write_notify_and_peripheral_drop_reach_bleak():
    async with BleRig(mtu=23) as rig:
        echo = await rig.add(Echo(rig.link, "Echo-2", "C0:00:00:00:00:03"))
        dev = await BleakScanner.find_device_by_name("Echo-2", timeout=3)
        assert dev is not None
        dropped = asyncio.Event()
        got: list[bytes] = []
        async with BleakClient(dev, disconnected_callback=lambda c: dropped.set()) as client:
            assert client.services.get_characteristic(CMD).max_write_without_response_size == 20
            assert await client.read_gatt_char(LABEL) == b"left shin"
            await client.start_notify(DATA, lambda c, d: got.append(bytes(d)))
            await client.write_gatt_char(CMD, b"abc", response=True)
            await client.write_gatt_char(CMD, b"0123456789", response=True)
            async def echoed():
                while len(got) < 2:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(echoed(), 30)
            assert got == [b"cba", b"9876543210"]
            assert echo.counters.writes == [b"abc", b"0123456789"]
            await echo.drop_link()
            await asyncio.wait_for(dropped.wait(), 3)
            assert not client.is_connected


async def test_injected_loss_is_seeded_and_counted():
    async with BleRig() as rig:
        echo = await rig.add(Echo(rig.link, "Echo-3", "C0:00:00:00:00:04",
                                  Impairments(loss_fraction=0.25, seed=3)))
        dev = await BleakScanner.find_device_by_name("Echo-3", timeout=3)
        got: list[bytes] = []
        async with BleakClient(dev) as client:
            await client.start_notify(DATA, lambda c, d: got.append(bytes(d)))
            await echo.subscribed.wait()
            for i in range(400):
                await echo.notify(echo.data, i.to_bytes(2, "little"))

            async def delivered():  # every notification the link kept has arrived
                while len(got) < echo.counters.sent:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(delivered(), 30)
        assert echo.counters.sent + echo.counters.dropped == 400
        assert 60 < echo.counters.dropped < 140
        assert len(got) == echo.counters.sent


async def test_pairing_encrypts_the_link_now_and_after_a_reconnect():
    async with BleRig() as rig:
        echo = await rig.add(Echo(rig.link, "Echo-4", "C0:00:00:00:00:05"))
        dev = await BleakScanner.find_device_by_name("Echo-4", timeout=3)
        async with BleakClient(dev) as client:
            await client.write_gatt_char(CMD, b"x", response=True)
            assert echo.last_write_encrypted is False
        async with BleakClient(dev, pair=True) as client:
            await client.write_gatt_char(CMD, b"y", response=True)
            assert echo.last_write_encrypted is True
        async with BleakClient(dev) as client:  # bonded: encrypted without pairing again
            await client.write_gatt_char(CMD, b"z", response=True)
            assert echo.last_write_encrypted is True


def test_private_bus_points_the_system_bus_variable_at_itself_and_restores_it(monkeypatch):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
    with private_system_bus() as bus:
        assert os.environ["DBUS_SYSTEM_BUS_ADDRESS"] == bus.address
        assert bus.address.startswith("unix:path=")
        assert bus.env()["DBUS_SYSTEM_BUS_ADDRESS"] == bus.address
        proc = bus._proc
        assert proc is not None and proc.poll() is None
    assert proc.poll() is not None  # the daemon is gone
    assert os.environ["DBUS_SYSTEM_BUS_ADDRESS"] == "unix:path=/nonexistent"
