"""``dorsimeter sensors``: the BLE sensors this computer may connect to (an allow-list)."""

from __future__ import annotations

import argparse

from dorsimeter.cli.common import add_home_option, text_arg
from dorsimeter.store.security import AllowList
from dorsimeter.text import terminal_safe


def register(sub) -> None:
    p = sub.add_parser("sensors", help="the BLE sensors this computer may connect to")
    ss = p.add_subparsers(dest="action", required=True)
    a = ss.add_parser("add", help="allow a sensor by its address (see `dorsimeter scan`)")
    a.add_argument("address", help="Bluetooth address, AA:BB:CC:DD:EE:FF")
    a.add_argument("--label", type=text_arg(64), help="a name for it, e.g. 'left shin'")
    add_home_option(a)
    r = ss.add_parser("remove", help="forget a sensor (address or label)")
    r.add_argument("sensor", type=text_arg(64))
    add_home_option(r)
    ls = ss.add_parser("list", help="the sensors allowed")
    add_home_option(ls)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    allow = AllowList.load(args.home)
    if args.action == "add":
        s = allow.add(args.address, args.label)
        print(f"added {s.address}" + (f" ({terminal_safe(s.label)})" if s.label else ""))
    elif args.action == "remove":
        s = allow.remove(args.sensor)
        print(f"removed {s.address}" + (f" ({terminal_safe(s.label)})" if s.label else ""))
    else:
        if not allow.sensors:
            print("no sensors added yet: find yours with `dorsimeter scan`, then "
                  "`dorsimeter sensors add ADDRESS`")
        for s in allow.sensors:
            print(terminal_safe(s.address) + (f"  {terminal_safe(s.label)}" if s.label else ""))
    return 0
