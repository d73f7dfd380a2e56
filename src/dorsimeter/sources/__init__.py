"""Sources: async iterators of ImuBatch, named on the command line by ``--sensor``.

``sim[:SCRIPT[+lifts]]`` (the virtual rig: wall, lunge, mobilisation or squat, optionally with
heel lifts), ``replay:FILE`` (a raw CSV), ``serial:PORT[@RATE]`` and ``ble:ADDRESS_OR_NAME[@RATE]``.
"""

from __future__ import annotations

from dorsimeter.errors import DorsimeterError
from dorsimeter.rate import check_rate_hz, rate_problem
from dorsimeter.sources.base import Source
from dorsimeter.sources.replay import ReplaySource
from dorsimeter.sources.sim import SimSource


def open_source(spec: str, side: str = "left", speed: float = 1.0, seed: int = 0,
                clip_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
                allowed=None) -> Source:
    """The source named by ``spec`` (``sim``, ``replay:FILE``, ``serial:PORT``, ``ble:NAME``).

    ``allowed``: the user's sensor allow-list (``security.AllowList``); BLE connects only to
    addresses on it.
    """
    kind, _, arg = spec.partition(":")
    if kind == "sim":
        return SimSource(side=side, speed=speed, seed=seed, clip_rotation_deg=clip_rotation_deg,
                         script=arg or "wall")
    if kind == "replay":
        if not arg:
            raise DorsimeterError("--sensor replay:FILE needs a file name")
        return ReplaySource(arg, speed=speed, side=side)
    if kind == "ble":
        target, _, rate = arg.partition("@")
        if not target:
            raise DorsimeterError("--sensor ble:ADDRESS_OR_NAME[@RATE_HZ] needs an address or a "
                                  "name, e.g. ble:dorsi-3f2a (see `dorsimeter scan`)")
        try:
            rate_hz = float(rate) if rate else 100.0
        except ValueError:
            raise DorsimeterError(f"--sensor {spec}: '{rate}' is not a rate in Hz") from None
        check_rate_hz(rate_hz, f"--sensor {spec}")
        from dorsimeter.sources.ble import BleSource

        return BleSource(target, side=side, rate_hz=rate_hz, allowed=allowed)
    if kind == "serial":
        port, _, rate = arg.rpartition("@") if "@" in arg else (arg, "", "")
        if not port:
            raise DorsimeterError("--sensor serial:PORT[@RATE_HZ] needs a port, e.g. "
                                  "serial:/dev/ttyACM0")
        try:
            rate_hz = float(rate) if rate else None
        except ValueError:
            raise DorsimeterError(f"--sensor {spec}: '{rate}' is not a rate in Hz") from None
        if rate_hz is not None:
            check_rate_hz(rate_hz, f"--sensor {spec}")
        from dorsimeter.sources.serial import SerialSource

        source = SerialSource(port, rate_hz=rate_hz, side=side)
        problem = rate_problem(source.rate_hz)  # the rate the device was found streaming at
        if problem is not None:
            source._drop_port()
            raise DorsimeterError(f"--sensor {spec}: {problem}")
        return source
    raise DorsimeterError(f"--sensor '{spec}': expected sim, replay:FILE, serial:PORT or "
                          "ble:ADDRESS_OR_NAME")


__all__ = ["Source", "open_source"]
