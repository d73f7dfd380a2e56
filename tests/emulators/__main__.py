"""Emulated BLE sensors to try dorsimeter without hardware: ``python -m tests.emulators``.

Starts a private D-Bus system bus, the fake ``org.bluez`` and one sensor of every family in the
sensor registry (each family's emulator, ``tests/emulators/<key>.py``, says which with its
``demo()``) on a Bumble LocalLink, prints the ``DBUS_SYSTEM_BUS_ADDRESS`` to export in another
terminal, and runs until Ctrl-C. Run it from the repository root (the node runs the firmware in
``firmware_bridge/``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import signal
import sys

from tests.emulators.dbus import ENV_VAR, private_system_bus


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.emulators",
                                description="emulated BLE sensors on a private D-Bus bus")
    p.add_argument("--loss", type=float, default=0.0, metavar="FRACTION",
                   help="notifications lost on the emulated radio (0..1)")
    p.add_argument("--drop-every", type=float, default=0.0, metavar="S",
                   help="drop every sensor's link every S seconds (0: never)")
    args = p.parse_args(argv)
    if not 0.0 <= args.loss < 1.0:
        p.error(f"--loss {args.loss}: expected a fraction from 0 to below 1")
    return args


async def serve(args: argparse.Namespace, address: str) -> None:
    from dorsimeter.sources.registry import KINDS
    from tests.emulators.peripheral import Impairments
    from tests.emulators.rig import BleRig

    async with BleRig() as rig:
        sensors = []
        for seed, kind in enumerate(KINDS):
            emulator = importlib.import_module(f"tests.emulators.{kind.key}")
            peripheral, rssi = emulator.demo(rig.link, Impairments(args.loss, seed=seed))
            sensors.append(await rig.add(peripheral, rssi=rssi))
        print("emulated sensors up: " + ", ".join(
            f"{p.name} ({k.name})" for p, k in zip(sensors, KINDS, strict=True)))
        print("in another terminal:")
        print(f"  export {ENV_VAR}='{address}'")
        print("  dorsimeter scan")
        print(f"  dorsimeter monitor --sensor ble:{sensors[0].name}")
        print("Ctrl-C to stop", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.drop_every or None)
            for p in sensors:
                if not stop.is_set() and p.connected:
                    await p.drop_link()
                    print(f"dropped {p.name}'s link", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with private_system_bus() as bus:
        assert bus.address is not None
        asyncio.run(serve(args, bus.address))
    return 0


if __name__ == "__main__":
    sys.exit(main())
