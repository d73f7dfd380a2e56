"""Emulated BLE sensors to try dorsimeter without hardware: ``python -m tests.emulators``.

Starts a private D-Bus system bus, the fake ``org.bluez`` and two sensors (our node and a
WitMotion BWT901BLE) on a Bumble LocalLink, prints the ``DBUS_SYSTEM_BUS_ADDRESS`` to export in
another terminal, and runs until Ctrl-C. Run it from the repository root (the node runs the
firmware in ``firmware_bridge/``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from tests.emulators.dbus import ENV_VAR, private_system_bus


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.emulators",
                                description="emulated BLE sensors on a private D-Bus bus")
    p.add_argument("--node-name", default="dorsi-0001", help="the node's advertised name")
    p.add_argument("--wit-name", default="WT901BLE68", help="the WitMotion's advertised name")
    p.add_argument("--loss", type=float, default=0.0, metavar="FRACTION",
                   help="notifications lost on the emulated radio (0..1)")
    p.add_argument("--drop-every", type=float, default=0.0, metavar="S",
                   help="drop the node's link every S seconds (0: never)")
    args = p.parse_args(argv)
    if not 0.0 <= args.loss < 1.0:
        p.error(f"--loss {args.loss}: expected a fraction from 0 to below 1")
    return args


async def serve(args: argparse.Namespace, address: str) -> None:
    from tests.emulators.node import NodePeripheral
    from tests.emulators.peripheral import Impairments
    from tests.emulators.rig import BleRig
    from tests.emulators.witmotion import WitMotionPeripheral

    async with BleRig() as rig:
        node = await rig.add(NodePeripheral(rig.link, args.node_name, "C0:D0:57:00:00:01",
                                            Impairments(args.loss), wait_for_host=True), rssi=-55)
        await rig.add(WitMotionPeripheral(rig.link, args.wit_name, "C0:57:17:00:00:01",
                                          Impairments(args.loss, seed=1)), rssi=-67)
        print(f"emulated sensors up: {args.node_name} (dorsimeter node), {args.wit_name} "
              "(WitMotion BWT901BLE)")
        print("in another terminal:")
        print(f"  export {ENV_VAR}='{address}'")
        print("  dorsimeter scan")
        print(f"  dorsimeter monitor --sensor ble:{args.node_name}")
        print("Ctrl-C to stop", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.drop_every or None)
            if not stop.is_set() and node.connected:
                await node.drop_link()
                print("dropped the node's link", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with private_system_bus() as bus:
        assert bus.address is not None
        asyncio.run(serve(args, bus.address))
    return 0


if __name__ == "__main__":
    sys.exit(main())
