"""``dorsimeter export SESSION… --format FMT --out DIR``: stored sessions as files.

Formats: csv (samples + trials), bids (a BIDS-Motion dataset), opensim (OpenSense orientation
.sto + calibration pose), parquet (typed samples + trials, units in the schema), xlsx (a workbook
for coaches). Each writer is imported only when asked for (pyarrow and openpyxl are slow to load).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dorsimeter.cli.common import add_home_option, text_arg
from dorsimeter.errors import DorsimeterError
from dorsimeter.text import terminal_safe

if TYPE_CHECKING:
    from dorsimeter.store import Store

FORMATS = ("csv", "bids", "opensim", "parquet", "xlsx")


def register(sub) -> None:
    p = sub.add_parser("export", help="write stored sessions as CSV, BIDS-Motion, OpenSim, "
                                      "Parquet or Excel files")
    p.add_argument("sessions", nargs="+", metavar="SESSION",
                   help="session id, 'latest', or 'all' (every session, or --athlete's)")
    p.add_argument("--format", choices=FORMATS, default="csv",
                   help="csv (default): samples + trials; bids: a BIDS-Motion dataset in DIR; "
                        "opensim: OpenSense orientation .sto + calibration pose; parquet; xlsx")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write into")
    p.add_argument("--athlete", metavar="NAME", type=text_arg(),
                   help="with 'all': only this athlete's sessions")
    add_home_option(p)
    p.set_defaults(handler=run)


def _refs(store, args: argparse.Namespace) -> list[int | str]:
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


def _one(store: Store, ref: int | str, fmt: str, out: str) -> None:
    if fmt == "csv":
        from dorsimeter.export import export_session_csv

        samples, trials, n_samples, n_trials = export_session_csv(store, ref, out)
        print(f"wrote {n_samples} samples to {samples}")
        print(f"wrote {n_trials} trials to {trials}")
    elif fmt == "opensim":
        from dorsimeter.export.opensim import export_opensim

        for path in export_opensim(store, ref, out):
            print(f"wrote {path}")
    elif fmt == "parquet":
        from dorsimeter.export.parquet import export_parquet

        for path in export_parquet(store, ref, out):
            print(f"wrote {path}")
    else:
        from dorsimeter.export.xlsx import export_xlsx

        print(f"wrote {export_xlsx(store, ref, out)}")


def run(args: argparse.Namespace) -> int:
    from dorsimeter.export.progress import progress_bar
    from dorsimeter.store import Store

    if not args.out.strip():
        raise DorsimeterError("--out '': expected a directory to write into")
    # an existing file where the directory (or a folder above it) would be: refused here,
    # else creating the directory fails with FileExistsError (exit 1) after the store opened
    from dorsimeter.store.security import check_path_length

    check_path_length(args.out, "--out")
    out = Path(args.out)
    blocker = next((q for q in (out, *out.parents) if q.exists() and not q.is_dir()), None)
    if blocker is not None:
        where = "" if blocker == out else f"{terminal_safe(str(blocker))[:200]} "
        raise DorsimeterError(f"--out {terminal_safe(args.out)[:200]}: {where}is a file; "
                              "expected a directory to write into (choose another)")
    with Store.open_for_reading(args.home) as store:
        refs = _refs(store, args)
        if not refs:
            raise DorsimeterError(f"{store.path}: no sessions to export")
        if args.format == "bids":  # one dataset holds every session asked for
            from dorsimeter.export.bids import export_bids

            result = export_bids(store, refs, args.out)
            for sid in result.skipped:
                print(f"dorsimeter: note: session {sid} has no samples: left out of the dataset",
                      file=sys.stderr)
            print(f"wrote a BIDS-Motion dataset of {len(refs)} session"
                  f"{'s' if len(refs) != 1 else ''} ({len(result.files)} motion files, "
                  f"subjects {', '.join(result.subjects) or 'none'}) to {result.root}")
            return 0
        with progress_bar("exporting sessions", len(refs), min_total=2) as advance:
            for ref in refs:
                _one(store, ref, args.format, args.out)
                advance()
    return 0
