"""What ``--sensor`` names, parsed once: ``sim[:SCRIPT[+lifts]]``, ``replay:FILE``,
``serial:PORT[@RATE_HZ]`` or ``ble:ADDRESS_OR_NAME[@RATE_HZ]``.

The command line parses the option into a :class:`SensorSpec` (``cli.common.sensor_arg``); the
sources, the calibration-file lookup, the exercise and the TUI's connect screen read its fields
instead of taking the string apart again. A bad spec is one line naming the option and what was
expected.
"""

from __future__ import annotations

from dataclasses import dataclass

from dorsimeter.errors import DorsimeterError
from dorsimeter.rate import check_rate_hz
from dorsimeter.wire.address import is_address, normalise_address

KINDS = ("sim", "replay", "serial", "ble")


@dataclass(frozen=True)
class SensorSpec:
    """A parsed ``--sensor``: ``kind`` (sim | replay | serial | ble), ``target`` (the simulator
    script, the file, the port, or the BLE address or name), ``rate_hz`` (asked of the device;
    None: none named, serial finds it from the data, BLE asks the family's nearest 100 Hz) and
    ``text`` as typed (``str(spec)``)."""

    kind: str
    target: str
    rate_hz: float | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str, option: str = "--sensor") -> SensorSpec:
        """``text`` parsed; DorsimeterError (one line naming ``option``) when it is not one."""
        text = str(text)
        kind, _, arg = text.partition(":")
        if kind == "sim":
            return cls("sim", arg or "wall", None, text)
        if kind == "replay":
            if not arg:
                raise DorsimeterError(f"{option} replay:FILE needs a file name")
            return cls("replay", arg, None, text)
        if kind == "ble":
            target, _, rate = arg.partition("@")
            if not target:
                raise DorsimeterError(f"{option} ble:ADDRESS_OR_NAME[@RATE_HZ] needs an address "
                                      "or a name, e.g. ble:dorsi-3f2a (see `dorsimeter scan`)")
            rate_hz = _rate(rate, text, option)
            return cls("ble", target, rate_hz, text)
        if kind == "serial":
            port, _, rate = arg.rpartition("@") if "@" in arg else (arg, "", "")
            if not port:
                raise DorsimeterError(f"{option} serial:PORT[@RATE_HZ] needs a port, e.g. "
                                      "serial:/dev/ttyACM0")
            return cls("serial", port, _rate(rate, text, option), text)
        raise DorsimeterError(f"{option} '{text}': expected sim, replay:FILE, serial:PORT or "
                              "ble:ADDRESS_OR_NAME")

    @property
    def ble_keys(self) -> tuple[str, ...]:
        """The ids a BLE sensor's files are stored under: as typed, and an address also in its
        one spelling (AA:BB:…); none for other sources."""
        if self.kind != "ble":
            return ()
        keys = [self.target]
        if is_address(self.target):
            keys.append(normalise_address(self.target))
        return tuple(dict.fromkeys(keys))


def _rate(text: str, spec: str, option: str) -> float | None:
    if not text:
        return None
    try:
        rate_hz = float(text)
    except ValueError:
        raise DorsimeterError(f"{option} {spec}: '{text}' is not a rate in Hz") from None
    check_rate_hz(rate_hz, f"{option} {spec}")
    return rate_hz
