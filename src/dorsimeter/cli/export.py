"""``dorsimeter export SESSION --format csv --out DIR``: a stored session as CSV files."""

from __future__ import annotations

import argparse

from dorsimeter.cli.common import add_home_option
from dorsimeter.export import export_session_csv
from dorsimeter.store import Store


def register(sub) -> None:
    p = sub.add_parser("export", help="write a stored session as CSV (samples + trials)")
    p.add_argument("session", help="session id, or 'latest'")
    p.add_argument("--format", choices=["csv"], default="csv", help="file format (csv)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write into")
    add_home_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with Store.open(args.home) as store:
        samples, trials, n_samples, n_trials = export_session_csv(store, args.session, args.out)
    print(f"wrote {n_samples} samples to {samples}")
    print(f"wrote {n_trials} trials to {trials}")
    return 0
