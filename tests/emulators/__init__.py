"""Test rigs that stand in for hardware, as low in the stack as possible.

BLE: a private ``dbus-daemon`` (:mod:`.dbus`), a minimal ``org.bluez`` service (:mod:`.fake_bluez`)
whose radio is a Bumble central on an in-process LocalLink, and Bumble peripherals emulating our
sensor node and a WitMotion BWT901BLE (:mod:`.peripherals`). Real, unmodified bleak talks to it.
"""
