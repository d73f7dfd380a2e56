"""``dorsimeter recover``: keep what an interrupted session recorded (crash, kill, power cut).

Without arguments it lists the sessions that never ended and recovers them all; with session
ids, only those. A session still recording in another process is left alone.
"""

from __future__ import annotations

import argparse

from dorsimeter.cli.common import SESSION_ID_ARG, add_home_option
from dorsimeter.store import Store
from dorsimeter.store.locks import interrupted_ids
from dorsimeter.store.summary import summarize
from dorsimeter.text import terminal_safe


def register(sub) -> None:
    p = sub.add_parser("recover", help="recover sessions interrupted by a crash or kill")
    p.add_argument("session", nargs="*", type=SESSION_ID_ARG,
                   help="session ids (default: all interrupted)")
    p.add_argument("--list", action="store_true", help="only list the interrupted sessions")
    add_home_option(p)
    p.set_defaults(handler=run, no_recovery_notice=True)


def run(args: argparse.Namespace) -> int:
    from dorsimeter.store.recovery import recover_session  # the pipeline: not at start-up

    with Store.open(args.home) as store:
        found = interrupted_ids(store.path)
        if not found and not args.session:
            print("no interrupted sessions")
            return 0
        if args.list:
            for sid, kind, start in found:
                print(f"session {sid}: {kind} started {start}, {store.count_samples(sid)} "
                      f"readings stored, {_trials(store, sid)}")
            return 0
        for sid in args.session or [sid for sid, _, _ in found]:
            r = recover_session(store, sid)
            raw = ""
            if r.raw_path:
                raw = (f"; raw CSV {r.raw_path}: {r.raw_rows} rows readable" if r.raw_problem
                       is None else f"; raw CSV unreadable: {r.raw_problem}")
            if r.reanalysed:
                raw += f"; re-analysed {r.reanalysed} readings from the raw CSV"
            elif r.reanalysis_problem:
                raw += f"; the raw CSV could not be re-analysed: {r.reanalysis_problem}"
            # the same counts `history` shows for it (scored/trials per side)
            print(terminal_safe(f"recovered session {r.session_id}: {r.samples} readings, "
                                f"{_trials(store, sid)} ({r.trials_added} trials added now "
                                f"from the readings){raw}"))
    return 0


def _trials(store: Store, session_id: int) -> str:
    """``scored/trials L, R`` as ``history`` prints them."""
    s = summarize(store.trials(session_id))
    return (f"scored/trials left {s['left'].n_scored}/{s['left'].n_trials}, "
            f"right {s['right'].n_scored}/{s['right'].n_trials}")
