"""Bluetooth addresses as users type them: a MAC (Linux, Windows) or a CoreBluetooth UUID
(macOS never shows MACs), normalised to one spelling so a sensor is found however it was typed."""

from __future__ import annotations

import re

from dorsimeter.errors import DorsimeterError

MAC_RE = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
# macOS (CoreBluetooth) never shows MAC addresses: bleak gives each peripheral a UUID instead
UUID_RE = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
ADDRESS_RE = re.compile(f"{MAC_RE.pattern}|{UUID_RE.pattern}")


def normalise_address(address: str) -> str:
    """A MAC address (``aa-bb-…`` or ``aa:bb:…`` -> ``AA:BB:CC:DD:EE:FF``, Linux, Windows) or a
    CoreBluetooth UUID (upper case, macOS); DorsimeterError if neither."""
    a = address.strip().upper()
    if UUID_RE.match(a):
        return a
    a = a.replace("-", ":")
    if not MAC_RE.match(a):
        raise DorsimeterError(f"'{address}' is not a Bluetooth address (expected "
                              "AA:BB:CC:DD:EE:FF, or on macOS a UUID such as "
                              "1F2E3D4C-0000-4000-8000-00805F9B34FB; `dorsimeter scan` lists the "
                              "sensors in range)")
    return a


def is_address(text: str) -> bool:
    """True for a MAC address or a CoreBluetooth UUID (any case), False for a name."""
    try:
        normalise_address(text)
    except DorsimeterError:
        return False
    return True
