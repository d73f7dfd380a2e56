"""``dorsimeter publish``: send this rig's sessions to the clinic's broker (docs/clinic.md).

The history stays the source of truth: sessions go through its outbox, in order, at QoS 1, and
wait there while the broker is unreachable."""

from __future__ import annotations

import argparse

from dorsimeter.cli.clinic_args import add_broker_options, broker, name_arg, need_clinic
from dorsimeter.cli.common import add_home_option


def register(sub) -> None:
    p = sub.add_parser("publish", help="send finished sessions to the clinic's MQTT broker")
    add_broker_options(p, "this rig")
    p.add_argument("--rig", type=name_arg("rig"), required=True,
                   help="this rig's name (its broker user; topics dorsimeter/<clinic>/<rig>/)")
    p.add_argument("--pseudonymous", action="store_true",
                   help="send no athlete names (athletes are known by their UUIDs)")
    p.add_argument("--group", type=name_arg("group"), default=None,
                   help="the group (squad, team) this rig's athletes are in, for the coach "
                        "page's filter")
    p.add_argument("--raw", action="store_true",
                   help="also upload each session's raw CSVs (only files still as recorded: "
                        "SHA-256 checked when sent and by the ingest)")
    p.add_argument("--once", action="store_true",
                   help="send what is waiting, then exit (exit 1 if the broker is unreachable)")
    p.add_argument("--poll-s", type=float, default=1.0, help=argparse.SUPPRESS)
    add_home_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    need_clinic("aiomqtt")
    import asyncio
    import logging
    import signal

    from dorsimeter.clinic.mqtt import publish
    from dorsimeter.clinic.outbox import enqueue, unsent_count
    from dorsimeter.store import Store

    logging.basicConfig(format="dorsimeter publish: %(message)s", level=logging.WARNING)
    cfg = broker(args, args.rig)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        with Store.open(args.home) as store:
            if args.once:
                enqueue(store, args.pseudonymous, args.group, raw=args.raw)
                todo = unsent_count(store)

                def sent(_seq: int) -> None:
                    if unsent_count(store) == 0:
                        stop.set()
                if todo == 0:
                    print("nothing to send")
                    return 0
                task = asyncio.ensure_future(publish(store, cfg, args.clinic, args.rig,
                                                     args.pseudonymous, stop, args.poll_s,
                                                     on_sent=sent, group=args.group,
                                                     raw=args.raw))
                n = await task
                left = unsent_count(store)
                print(f"sent {n} message(s), {left} waiting")
                return 0 if left == 0 else 1
            n = await publish(store, cfg, args.clinic, args.rig, args.pseudonymous, stop,
                              args.poll_s, group=args.group, raw=args.raw)
            print(f"sent {n} message(s), {unsent_count(store)} waiting")
            return 0

    return asyncio.run(main())
