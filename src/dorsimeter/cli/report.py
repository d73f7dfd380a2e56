"""``dorsimeter report SESSION --out report.html``: one self-contained HTML report."""

from __future__ import annotations

import argparse

from dorsimeter.cli.common import add_home_option, guard_outputs


def register(sub) -> None:
    p = sub.add_parser("report", help="a stored session as a self-contained HTML report")
    p.add_argument("session", help="session id, or 'latest'")
    p.add_argument("--out", required=True, metavar="HTML", help="report file to write")
    add_home_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from dorsimeter.export.report import write_report
    from dorsimeter.store import Store

    guard_outputs(args, {"--out": ([args.out], False)})
    with Store.open_for_reading(args.home) as store:
        path = write_report(store, args.session, args.out)
    print(f"wrote report to {path}")
    return 0
