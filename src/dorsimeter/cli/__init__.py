"""The ``dorsimeter`` command line. Errors the user can cause print one line and exit 2.

Each command is a module of this package with ``register(subparsers)``, which adds its parser and
sets ``handler``; add a command by adding its module to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import importlib
import sqlite3
import sys

from dorsimeter.errors import DorsimeterError
from dorsimeter.text import terminal_safe

COMMANDS = ["monitor", "record", "calibrate", "analyze", "scan", "history", "export", "report",
            "recover", "sensors", "sensor_cal", "publish", "ingest", "team"]


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one ``--help`` away) and the values
    it quotes made terminal-safe (they are the user's, or a script's)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {terminal_safe(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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


_PARSER: list[argparse.ArgumentParser] = []  # built once per process, never given defaults


def _commands(parser: argparse.ArgumentParser) -> dict:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


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
    the config file as defaults (options still win; a fresh parser takes them, so the shared
    one stays as built)."""
    from dorsimeter.cli.settings import settings_defaults

    argv = join_dash_values(list(sys.argv[1:] if argv is None else argv))
    if not _PARSER:
        _PARSER.append(build_parser())
    parser = _PARSER[0]
    args = parser.parse_args(argv)
    if args.command == "demo":
        from dorsimeter.cli.demo import monitor_argv

        argv = monitor_argv(args)
        args = parser.parse_args(argv)
    commands = _commands(parser)
    defaults = settings_defaults(commands[args.command], args.command, commands,
                                 getattr(args, "home", None))
    if defaults:
        fresh = build_parser()
        _commands(fresh)[args.command].set_defaults(**defaults)
        args = fresh.parse_args(argv)
    return args


# What an ASCII or latin-1 terminal shows for the few characters our output uses beyond them
# (everything else it cannot show becomes "?"): output works in any locale.
PLAIN = {"°": " deg", "²": "^2", "±": "+/-", "×": "x", "→": "->", "←": "<-", "—": "-",
         "–": "-", "…": "...", "·": "*", "σ": "sigma", "✓": "v", "≥": ">=", "≤": "<=",
         "π": "pi", "µ": "u", "’": "'", "‘": "'", "“": '"', "”": '"'}


def _plain(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeEncodeError):
        raise err
    return "".join(PLAIN.get(ch, "?") for ch in err.object[err.start:err.end]), err.end


codecs.register_error("dorsimeter-plain", _plain)


def plain_output() -> None:
    """stdout and stderr never fail on a character their encoding lacks (PYTHONIOENCODING=
    ascii, a latin-1 locale): it is shown in plain words or as "?" instead."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) in ("strict",
                                                                       "backslashreplace"):
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="dorsimeter-plain")


def _error(e: object) -> None:
    """The one line for an error the user can fix: its text made terminal-safe (it quotes
    names and paths from outside)."""
    print(f"dorsimeter: error: {terminal_safe(e)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    plain_output()
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    nul = [k for k, a in enumerate(argv or (), 1) if "\x00" in str(a)]
    if nul:  # only in-process: a real command line cannot carry one (C strings)
        _error(f"argument {nul[0]}: a NUL character is not allowed")
        return 2
    try:
        args = _parse(argv)
    except SystemExit as e:  # argparse: --help (0) or its one-line error (2), already printed
        return e.code if isinstance(e.code, int) else 2
    except DorsimeterError as e:
        if debug:
            raise
        _error(e)
        return e.exit_code
    if not getattr(args, "no_recovery_notice", False):
        from dorsimeter.store.locks import startup_notice

        notice = startup_notice(getattr(args, "home", None))  # after a crash: one line
        if notice:
            print(notice, file=sys.stderr)
    try:
        return args.handler(args)
    except DorsimeterError as e:
        if args.debug:
            raise
        _error(e)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except sqlite3.Error as e:  # the history database: disk full, read-only, damaged
        if args.debug:
            raise
        _error(f"history database: {e}")
        return 1
    except OSError as e:
        if args.debug:
            raise
        name = f"{e.filename}: " if getattr(e, "filename", None) else ""
        _error(f"{name}{e.strerror or e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
