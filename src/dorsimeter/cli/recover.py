"""``dorsimeter recover``: keep what an interrupted session recorded (crash, kill, power cut).

Without arguments it lists the sessions that never ended and recovers them all; with session
ids, only those. A session still recording in another process is left alone.
"""

from __future__ import annotations

import argparse

from dorsimeter.cli.common import add_home_option
from dorsimeter.recovery import interrupted_ids, recover_session
from dorsimeter.store import Store


def register(sub) -> None:
    p = sub.add_parser("recover", help="recover sessions interrupted by a crash or kill")
    p.add_argument("session", nargs="*", type=int, help="session ids (default: all interrupted)")
    p.add_argument("--list", action="store_true", help="only list the interrupted sessions")
    add_home_option(p)
    p.set_defaults(handler=run, no_recovery_notice=True)


def run(args: argparse.Namespace) -> int:
    with Store.open(args.home) as store:
        found = interrupted_ids(store.path)
        if not found and not args.session:
            print("no interrupted sessions")
            return 0
        if args.list:
            for sid, kind, start in found:
                print(f"session {sid}: {kind} started {start}, {store.count_samples(sid)} "
                      "samples stored")
            return 0
        for sid in args.session or [sid for sid, _, _ in found]:
            r = recover_session(store, sid)
            raw = ""
            if r.raw_path:
                raw = (f"; raw CSV {r.raw_path}: {r.raw_rows} rows readable" if r.raw_problem
                       is None else f"; raw CSV unreadable: {r.raw_problem}")
            trials = store.trials(r.session_id)  # stored while recording, and any just scored
            scored = sum(t.counts for t in trials)
            how = (f"{r.trials_added} scored now from the samples" if r.trials_added else
                   "stored while recording")
            print(f"recovered session {r.session_id}: {r.samples} samples, {scored}/"
                  f"{len(trials)} trials scored ({how}){raw}")
    return 0
