"""Sources: async iterators of ImuBatch, named on the command line by ``--sensor`` (parsed once
into a ``wire.sensorspec.SensorSpec``).

``sim[:SCRIPT[+lifts]]`` (the virtual rig: wall, lunge, mobilisation or squat, optionally with
heel lifts), ``replay:FILE`` (a raw CSV), ``serial:PORT[@RATE]`` and ``ble:ADDRESS_OR_NAME[@RATE]``.
Which device families the serial and BLE sources understand is the sensor registry's
(``sources.registry``).
"""

from __future__ import annotations

from dorsimeter.errors import DorsimeterError
from dorsimeter.rate import rate_problem
from dorsimeter.sources.base import LinkStats, Source
from dorsimeter.sources.replay import ReplaySource
from dorsimeter.sources.sim import SimSource
from dorsimeter.wire.sensorspec import SensorSpec


def open_source(spec: SensorSpec, side: str = "left", speed: float = 1.0, seed: int = 0,
                clip_rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
                allowed=None) -> Source:
    """The source ``spec`` names.

    ``allowed``: the user's sensor allow-list (``security.AllowList``); BLE connects only to
    addresses on it.
    """
    if spec.kind == "sim":
        return SimSource(side=side, speed=speed, seed=seed, clip_rotation_deg=clip_rotation_deg,
                         script=spec.target)
    if spec.kind == "replay":
        return ReplaySource(spec.target, speed=speed, side=side)
    if spec.kind == "ble":
        from dorsimeter.sources.ble import BleSource

        return BleSource(spec.target, side=side, rate_hz=spec.rate_hz, allowed=allowed)
    from dorsimeter.sources.serial import SerialSource

    source = SerialSource(spec.target, rate_hz=spec.rate_hz, side=side)
    problem = rate_problem(source.rate_hz)  # the rate the device was found streaming at
    if problem is not None:
        source.drop_port()
        raise DorsimeterError(f"--sensor {spec}: {problem}")
    return source


__all__ = ["LinkStats", "SensorSpec", "Source", "open_source"]
