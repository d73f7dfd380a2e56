"""``dorsimeter ingest``: store the clinic's messages in PostgreSQL (docs/clinic.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dorsimeter.cli.clinic_args import add_broker_options, broker, need_clinic, read_secret


def register(sub) -> None:
    p = sub.add_parser("ingest", help="store the clinic's MQTT messages in PostgreSQL")
    p.add_argument("--dsn-file", type=Path, required=True, metavar="FILE",
                   help="libpq connection string of the ingest role (owner-only file)")
    p.add_argument("--migrate", action="store_true",
                   help="bring the clinic database's schema up to date (with the owner's "
                        "--dsn-file), then exit")
    add_broker_options(p, "the ingest", required=False)  # not for --migrate
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    need_clinic("aiomqtt", "psycopg")
    import asyncio
    import logging
    import signal

    import psycopg

    from dorsimeter.clinic.ingest import ingest
    from dorsimeter.clinic.pgschema import LATEST, migrate
    from dorsimeter.errors import DorsimeterError

    logging.basicConfig(format="dorsimeter ingest: %(message)s", level=logging.WARNING)
    dsn = read_secret(args.dsn_file, "database connection string")
    if args.migrate:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                was = migrate(conn)
        except psycopg.Error as e:
            raise DorsimeterError(f"clinic database: {str(e).strip().splitlines()[0]}"
                                  ) from None
        print(f"clinic database schema: version {was} -> {LATEST}")
        return 0
    cfg = broker(args, "ingest")

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        def ready() -> None:
            print(f"subscribed to dorsimeter/{args.clinic}/+/session", flush=True)
        n = await ingest(cfg, dsn, args.clinic, stop, on_ready=ready)
        print(f"stored {n} message(s)")
        return 0

    try:
        return asyncio.run(main())
    except psycopg.OperationalError as e:
        raise DorsimeterError(f"clinic database: {str(e).strip().splitlines()[0]}") from None
