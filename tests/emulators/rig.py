"""The emulated BLE world in one object: a LocalLink, the fake BlueZ and some peripherals.

Needs ``DBUS_SYSTEM_BUS_ADDRESS`` pointing at a bus where ``org.bluez`` is free (see
:func:`tests.emulators.dbus.private_system_bus`).
"""

from __future__ import annotations

from typing import TypeVar

from bumble.link import LocalLink

from tests.emulators.fake_bluez import FakeBlueZ
from tests.emulators.peripheral import Peripheral

P = TypeVar("P", bound=Peripheral)


class BleRig:
    """``async with BleRig() as rig: node = await rig.add(NodePeripheral(rig.link, ...))``."""

    def __init__(self, mtu: int = 247, identifiers: dict[str, str] | None = None) -> None:
        """``identifiers``: MAC -> UUID for devices the host sees by a UUID (as on macOS)."""
        self.link = LocalLink()
        self.bluez = FakeBlueZ(self.link, mtu=mtu, identifiers=identifiers)
        self.peripherals: list[Peripheral] = []

    async def __aenter__(self) -> BleRig:
        await self.bluez.start()
        return self

    async def add(self, peripheral: P, rssi: int | None = None) -> P:
        """Power on and start advertising ``peripheral``; ``rssi`` as the host will see it."""
        if rssi is not None:
            self.bluez.set_rssi(peripheral.address, rssi)
        await peripheral.start()
        self.peripherals.append(peripheral)
        return peripheral

    async def __aexit__(self, *exc) -> None:
        for p in self.peripherals:
            await p.stop()
        await self.bluez.stop()
