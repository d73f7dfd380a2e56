"""``dorsimeter team``: the coach view of the clinic's database, a web page (docs/clinic.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dorsimeter.cli.clinic_args import (
    add_broker_options,
    broker,
    name_arg,
    need_clinic,
    read_secret,
)
from dorsimeter.cli.common import number_arg


def register(sub) -> None:
    p = sub.add_parser("team", help="serve the coach view of the clinic's database")
    p.add_argument("--coaches", type=Path, required=True, metavar="FILE",
                   help="the coaches' token hashes (owner-only JSON)")
    p.add_argument("--add-coach", type=name_arg("coach"), metavar="NAME",
                   help="print a new login token for NAME (its hash is stored), then exit")
    p.add_argument("--dsn-file", type=Path, metavar="FILE",
                   help="libpq connection string of the team role (owner-only file)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=number_arg(0, 65535, "a TCP port", integer=True),
                   default=8716, help="port (0: any free one, printed)")
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="certificate (PEM) for HTTPS")
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    add_broker_options(p, "the team user (for the live angle; optional)", required=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    need_clinic("psycopg", "aiomqtt")
    import signal
    import sys
    import threading

    from dorsimeter.clinic.team import LiveFeed, add_coach, make_server
    from dorsimeter.errors import DorsimeterError

    if args.add_coach:
        print(add_coach(args.coaches, args.add_coach))
        return 0
    if args.dsn_file is None:
        raise DorsimeterError("--dsn-file: required to serve the page")
    live = None
    if args.broker is not None:  # the live angle: the team user reads the rigs' live topics
        live = LiveFeed(broker(args, "team"), args.clinic)
    server = make_server(args.bind, args.port, read_secret(args.dsn_file, "connection string"),
                         args.coaches, args.tls_cert, args.tls_key, live)
    scheme = "https" if args.tls_cert else "http"
    host, port = server.server_address[:2]
    print(f"team page on {scheme}://{host}:{port}/", flush=True)

    def stop(*_) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.stdout.flush()
    return 0
