"""The ``dorsimeter`` command line. Errors the user can cause print one line and exit 2.

Each command is a module of this package with ``register(subparsers)``, which adds its parser and
sets ``handler``; add a command by adding its module to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys

from dorsimeter.errors import DorsimeterError

COMMANDS = ["monitor", "record", "calibrate", "analyze", "scan", "history", "export", "report",
            "recover", "sensors", "sensor_cal"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dorsimeter", description="Knee-to-wall tibia angle from a shin-worn IMU.",
        epilog="Settings come from, in order: options, DORSIMETER_* environment variables "
               "(DORSIMETER_SENSOR, DORSIMETER_ATHLETE, ...), config.toml in the data "
               "directory (top-level keys, or a [command] table), defaults.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    importlib.import_module("dorsimeter.cli.demo").register(sub)
    for name in COMMANDS:
        importlib.import_module(f"dorsimeter.cli.{name}").register(sub)
    return parser


#: options whose value may start with "-" (``--clip-axis -z``): argparse would take it for an option
DASH_VALUE_OPTIONS = ("--clip-axis",)


def join_dash_values(argv: list[str]) -> list[str]:
    """``--clip-axis -z`` as ``--clip-axis=-z``, so a sensor axis is accepted as typed."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if a in DASH_VALUE_OPTIONS and nxt is not None and len(nxt) == 2 and nxt[0] == "-" \
                and nxt[1].lower() in "xyz":
            out.append(f"{a}={nxt}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse twice: the command and --home first, then with settings from the environment and
    the config file as defaults (options still win)."""
    from dorsimeter.cli.settings import apply_settings

    argv = join_dash_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from dorsimeter.cli.demo import monitor_argv

        argv = monitor_argv(args)
        args = parser.parse_args(argv)
    commands = next(a for a in parser._actions
                    if isinstance(a, argparse._SubParsersAction)).choices
    if apply_settings(commands[args.command], args.command, commands,
                      getattr(args, "home", None)):
        args = parser.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(argv)
    except DorsimeterError as e:
        if debug:
            raise
        print(f"dorsimeter: error: {e}", file=sys.stderr)
        return e.exit_code
    if not getattr(args, "no_recovery_notice", False):
        from dorsimeter.recovery import startup_notice

        notice = startup_notice(getattr(args, "home", None))  # after a crash: one line
        if notice:
            print(notice, file=sys.stderr)
    try:
        return args.handler(args)
    except DorsimeterError as e:
        if args.debug:
            raise
        print(f"dorsimeter: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except sqlite3.Error as e:  # the history database: disk full, read-only, damaged
        if args.debug:
            raise
        print(f"dorsimeter: error: history database: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if args.debug:
            raise
        name = f" {e.filename}:" if getattr(e, "filename", None) else ""
        print(f"dorsimeter: error:{name} {e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
