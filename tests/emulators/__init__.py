"""Test rigs that stand in for hardware, as low in the stack as possible.

BLE: a private ``dbus-daemon`` (:mod:`.dbus`), a minimal ``org.bluez`` service (:mod:`.fake_bluez`)
whose radio is a Bumble central on an in-process LocalLink, and one Bumble peripheral per device
family of the sensor registry, in a module named by the family's ``SensorKind.key`` (:mod:`.node`,
:mod:`.witmotion`), each with a ``demo()`` for ``python -m tests.emulators``. Real, unmodified
bleak talks to it.
"""
