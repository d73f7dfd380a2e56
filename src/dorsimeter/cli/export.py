"""``dorsimeter export SESSION… --format csv --out DIR``: stored sessions as CSV files."""

from __future__ import annotations

import argparse

from dorsimeter.cli.common import add_home_option
from dorsimeter.errors import DorsimeterError


def register(sub) -> None:
    p = sub.add_parser("export", help="write stored sessions as CSV (samples + trials)")
    p.add_argument("sessions", nargs="+", metavar="SESSION",
                   help="session id, 'latest', or 'all' (every session, or --athlete's)")
    p.add_argument("--format", choices=["csv"], default="csv", help="file format (csv)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write into")
    p.add_argument("--athlete", metavar="NAME", help="with 'all': only this athlete's sessions")
    add_home_option(p)
    p.set_defaults(handler=run)


def _refs(store, args: argparse.Namespace) -> list[int | str]:
    refs: list[int | str] = []
    for ref in args.sessions:
        if ref.strip().lower() == "all":
            if args.athlete is not None and store.find_athlete(args.athlete) is None:
                raise DorsimeterError(f"{store.path}: no athlete '{args.athlete}'")
            refs += [s.id for s in store.sessions(args.athlete)]
        else:
            refs.append(store.session(ref).id)  # checked before anything is written
    return list(dict.fromkeys(refs))


def run(args: argparse.Namespace) -> int:
    from dorsimeter.export import export_session_csv
    from dorsimeter.export.progress import progress_bar
    from dorsimeter.store import Store

    with Store.open(args.home) as store:
        refs = _refs(store, args)
        if not refs:
            raise DorsimeterError(f"{store.path}: no sessions to export")
        with progress_bar("exporting sessions", len(refs), min_total=2) as advance:
            for ref in refs:
                samples, trials, n_samples, n_trials = export_session_csv(store, ref, args.out)
                print(f"wrote {n_samples} samples to {samples}")
                print(f"wrote {n_trials} trials to {trials}")
                advance()
    return 0
