"""Options shared by ``publish``, ``ingest`` and ``team``: where the broker and the clinic's
database are, with secrets read from owner-only files (never on the command line, where ``ps``
shows them)."""

from __future__ import annotations

import argparse
import os
import re
import stat
from pathlib import Path

from dorsimeter.errors import DorsimeterError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def name_arg(what: str):
    def parse(text: str) -> str:
        if not NAME_RE.match(text):
            raise argparse.ArgumentTypeError(
                f"{what} {text!r}: expected 1-32 lowercase letters, digits, - or _")
        return text
    return parse


def broker_arg(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"broker {text!r}: expected HOST:PORT")
    return host, int(port)


def add_broker_options(p: argparse.ArgumentParser, user_help: str, required: bool = True
                       ) -> None:
    p.add_argument("--broker", type=broker_arg, required=required, metavar="HOST:PORT",
                   help="the clinic's Mosquitto (TLS listener)")
    p.add_argument("--ca", type=Path, required=required, metavar="FILE",
                   help="the clinic CA's certificate (ca.crt from the setup)")
    p.add_argument("--clinic", type=name_arg("clinic"), required=required,
                   help="the clinic's name (topics dorsimeter/<clinic>/...)")
    p.add_argument("--password-file", type=Path, required=required, metavar="FILE",
                   help=f"the broker password of {user_help} (an owner-only file)")


def read_secret(path: Path, what: str) -> str:
    """The first line of an owner-only file."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DorsimeterError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and os.name == "posix":
        raise DorsimeterError(f"{path}: the {what} is readable by others "
                              f"(mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it")
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not line:
        raise DorsimeterError(f"{path}: line 1: expected the {what}, the file is empty")
    return line


def broker(args: argparse.Namespace, username: str):
    from dorsimeter.clinic.mqtt import Broker

    for opt in ("broker", "ca", "clinic", "password_file"):
        if getattr(args, opt) is None:
            raise DorsimeterError(f"--{opt.replace('_', '-')}: required")
    if not args.ca.is_file():
        raise DorsimeterError(f"{args.ca}: no such CA certificate (ca.crt from the setup)")
    host, port = args.broker
    return Broker(host, port, args.ca, username, read_secret(args.password_file,
                                                             "broker password"))


def need_clinic(*modules: str) -> None:
    """The clinic's libraries are an extra: say in one line how to get them."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise DorsimeterError(f"{name} is not installed: this command needs the clinic "
                                  "extra (pip install 'dorsimeter[clinic]')") from None
