"""``dorsimeter history [ATHLETE]``: the per-side trend over stored sessions."""

from __future__ import annotations

import argparse
import difflib
from typing import TYPE_CHECKING

from dorsimeter.cli.common import add_home_option, text_arg
from dorsimeter.errors import DorsimeterError
from dorsimeter.text import terminal_safe

if TYPE_CHECKING:
    from dorsimeter.store import Store


def register(sub) -> None:
    p = sub.add_parser("history", help="per-side trend over the stored sessions")
    p.add_argument("athlete", nargs="?", type=text_arg(),
                   help="athlete name or id (default: everyone)")
    add_home_option(p)
    p.set_defaults(handler=run)


def norm_lines(points) -> list[str]:
    """Each side's latest best against the published healthy range, with its source."""
    from dorsimeter.export.history import series
    from dorsimeter.export.norms import load_norms

    norms = load_norms()
    latest = [(side, ser[-1][1]) for side in ("left", "right") if (ser := series(points, side))]
    return [f"  latest vs healthy adults: {norms.angle_line(side, v)}" for side, v in latest]


def run(args: argparse.Namespace) -> int:
    from dorsimeter.export.history import format_history, history
    from dorsimeter.store import Store

    with Store.open_for_reading(args.home) as store:
        if args.athlete is not None:
            a = store.find_athlete(args.athlete)
            if a is None:
                raise DorsimeterError(no_such_athlete(store, args.athlete))
            groups = [(a.name, (a.tibia_length_m, a.foot_length_m))]
        else:
            groups: list[tuple[str | None, tuple[float | None, float | None]]] = [
                (a.name, (a.tibia_length_m, a.foot_length_m)) for a in store.athletes()]
            groups.append((None, (None, None)))
        printed = 0
        for name, lengths in groups:
            points = history(store, name)
            if not points and (name is None or args.athlete is None):
                continue
            if printed:
                print()
            for line in format_history(name, points, lengths) + norm_lines(points):
                print(terminal_safe(line))  # names are user text
            printed += 1
        if not printed:
            print(f"no sessions stored yet in {store.path}")
    return 0


def no_such_athlete(store: Store, name: str) -> str:
    """One line: no such athlete, how many there are, and at most three close names."""
    names = [x.name for x in store.athletes()]
    if len(names) <= 5:  # a few: name them all
        known = f"known: {', '.join(terminal_safe(n)[:40] for n in names) or 'none yet'}"
    else:
        close = difflib.get_close_matches(name.strip(), names, n=3, cutoff=0.6)
        known = f"{len(names)} athletes stored" + (
            f"; did you mean {', '.join(repr(terminal_safe(c)[:40]) for c in close)}?"
            if close else "")
    return f"{store.path}: no athlete '{terminal_safe(name)[:80]}' ({known})"
