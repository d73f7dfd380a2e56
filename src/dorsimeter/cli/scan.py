"""``dorsimeter scan``: supported BLE sensors nearby, with signal strength and battery."""

from __future__ import annotations

import argparse
import asyncio

from dorsimeter.cli.common import add_home_option, number_arg


def register(sub) -> None:
    p = sub.add_parser("scan", help="list nearby supported BLE sensors (every family in the "
                       "sensor registry), with signal strength and battery")
    p.add_argument("--timeout", type=number_arg(0, 600, "seconds to listen", above_lo=True),
                   default=5.0, help="seconds to listen (default 5)")
    add_home_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dorsimeter.errors import DorsimeterError
    from dorsimeter.sources.ble import scan_sensors
    from dorsimeter.store.security import AllowList
    from dorsimeter.text import terminal_safe

    if args.timeout <= 0:
        raise DorsimeterError(f"--timeout {args.timeout:g}: expected a positive number of seconds")
    found = asyncio.run(scan_sensors(args.timeout))
    if not found:
        print(f"no supported BLE sensors found in {args.timeout:g} s")
        return 0
    allowed = AllowList.load(getattr(args, "home", None))
    print(f"{'address':<17}  {'name':<20}  {'kind':<20}  {'RSSI':>8}  {'battery':>7}  allowed")
    for s in found:  # names come from the air: nothing in them reaches the terminal as a command
        battery = f"{s.battery_pct} %" if s.battery_pct is not None else "-"
        ok = "yes" if allowed.permits(s.address) else "no"
        print(f"{terminal_safe(s.address):<17}  {terminal_safe(s.name):<20}  {s.kind:<20}  "
              f"{s.rssi_dbm:>4} dBm  {battery:>7}  {ok}")
    first = found[0]
    if allowed.permits(first.address):
        print(f"use one with: --sensor ble:{terminal_safe(first.name)}")
    else:
        print(f"allow one first: dorsimeter sensors add {terminal_safe(first.address)}; then "
              f"--sensor ble:{terminal_safe(first.name)}")
    return 0
