"""The private system bus the BLE tests of this folder run the fake BlueZ on: one per module
that asks for it (``pytestmark = pytest.mark.usefixtures("system_bus")``), always stopped."""

from __future__ import annotations

import pytest

from tests.emulators.dbus import private_system_bus


@pytest.fixture(scope="module")
def system_bus():
    with private_system_bus() as bus:
        yield bus
