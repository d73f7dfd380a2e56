"""``dorsimeter scan``: supported BLE sensors nearby, with signal strength and battery."""

from __future__ import annotations

import argparse
import asyncio


def register(sub) -> None:
    p = sub.add_parser("scan", help="list nearby BLE sensors (dorsimeter node, WitMotion)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to listen (default 5)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dorsimeter.errors import DorsimeterError
    from dorsimeter.sources.ble import scan_sensors

    if args.timeout <= 0:
        raise DorsimeterError(f"--timeout {args.timeout:g}: expected a positive number of seconds")
    found = asyncio.run(scan_sensors(args.timeout))
    if not found:
        print(f"no supported BLE sensors found in {args.timeout:g} s")
        return 0
    print(f"{'address':<17}  {'name':<20}  {'kind':<20}  {'RSSI':>8}  {'battery':>7}")
    for s in found:
        battery = f"{s.battery_pct} %" if s.battery_pct is not None else "-"
        print(f"{s.address:<17}  {s.name:<20}  {s.kind:<20}  {s.rssi_dbm:>4} dBm  {battery:>7}")
    print(f"use one with: --sensor ble:{found[0].name}")
    return 0
