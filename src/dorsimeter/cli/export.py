"""``dorsimeter export SESSION… --format csv --out DIR``: stored sessions as CSV files."""

from __future__ import annotations

import argparse

from dorsimeter.cli.common import add_home_option, text_arg
from dorsimeter.errors import DorsimeterError
from dorsimeter.export import export_session_csv
from dorsimeter.export.progress import progress_bar
from dorsimeter.store import Store


def register(sub) -> None:
    p = sub.add_parser("export", help="write stored sessions as CSV (samples + trials)")
    p.add_argument("sessions", nargs="+", metavar="SESSION",
                   help="session id, 'latest', or 'all' (every session, or --athlete's)")
    p.add_argument("--format", choices=["csv"], default="csv", help="file format (csv)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write into")
    p.add_argument("--athlete", metavar="NAME", type=text_arg(),
                   help="with 'all': only this athlete's sessions")
    add_home_option(p)
    p.set_defaults(handler=run)


def _refs(store: Store, args: argparse.Namespace) -> list[int | str]:
    refs: list[int | str] = []
    for ref in args.sessions:
        if ref.strip().lower() == "all":
            if args.athlete is not None and store.find_athlete(args.athlete) is None:
                from dorsimeter.cli.history import no_such_athlete

                raise DorsimeterError(no_such_athlete(store, args.athlete))
            refs += [s.id for s in store.sessions(args.athlete)]
        else:
            refs.append(store.session(ref).id)  # checked before anything is written
    return list(dict.fromkeys(refs))


def run(args: argparse.Namespace) -> int:
    if not args.out.strip():
        raise DorsimeterError("--out '': expected a directory to write into")
    with Store.open_for_reading(args.home) as store:
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
