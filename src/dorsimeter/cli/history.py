"""``dorsimeter history [ATHLETE]``: the per-side trend over stored sessions."""

from __future__ import annotations

import argparse

from dorsimeter.cli.common import add_home_option
from dorsimeter.errors import DorsimeterError


def register(sub) -> None:
    p = sub.add_parser("history", help="per-side trend over the stored sessions")
    p.add_argument("athlete", nargs="?", help="athlete name or id (default: everyone)")
    add_home_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dorsimeter.export.history import format_history, history
    from dorsimeter.store import Store

    with Store.open(args.home) as store:
        if args.athlete is not None:
            a = store.find_athlete(args.athlete)
            if a is None:
                known = ", ".join(x.name for x in store.athletes()) or "none yet"
                raise DorsimeterError(f"{store.path}: no athlete '{args.athlete}' "
                                      f"(known: {known})")
            groups = [(a.name, (a.tibia_length_m, a.foot_length_m))]
        else:
            groups = [(a.name, (a.tibia_length_m, a.foot_length_m)) for a in store.athletes()]
            groups.append((None, (None, None)))
        printed = 0
        for name, lengths in groups:
            points = history(store, name)
            if not points and (name is None or args.athlete is None):
                continue
            if printed:
                print()
            print("\n".join(format_history(name, points, lengths)))
            printed += 1
        if not printed:
            print(f"no sessions stored yet in {store.path}")
    return 0
