"""Settings for the command line, in order: options, ``DORSIMETER_*`` environment variables,
``config.toml`` in the data directory, defaults.

The config file has top-level keys for every command and a table per command, named as the
option without its dashes (``target-deg`` → ``target_deg``)::

    athlete = "A-7f3c"
    [monitor]
    sensor = "ble:dorsi-3f2a"
    target_deg = 38

An environment variable is the same name in capitals: ``DORSIMETER_SENSOR=ble:dorsi-3f2a``.
Required options (``--out``, ``--duration``) are always given on the command line.
"""

from __future__ import annotations

import argparse
import os
import re
import tomllib
from pathlib import Path

from dorsimeter.errors import DorsimeterError, InputError
from dorsimeter.text import terminal_safe

CONFIG_NAME = "config.toml"
ENV_PREFIX = "DORSIMETER_"
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
# never from settings: a config line must not make every command overwrite files
NOT_SETTABLE = ("force", "debug")


def settable(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The options of a command that settings may give: named, optional, not --help."""
    return {a.dest: a for a in parser._actions
            if a.option_strings and not a.required and a.dest not in ("help", "home")
            and a.dest not in NOT_SETTABLE and not isinstance(a, argparse._HelpAction)}


def load_config(home: str | None) -> tuple[Path, dict]:
    """The config file's path and its table ({} when there is none)."""
    from dorsimeter.paths import data_dir

    path = data_dir(home, create=False) / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return path, {}
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(path), None, None, f"cannot read the config file ({e})") from None
    try:
        return path, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        line = getattr(e, "lineno", None) or (int(m.group(1)) if m else None)
        raise InputError(str(path), line, None, f"not valid TOML ({e})") from None
    except RecursionError:  # tomllib recurses on nested arrays and inline tables
        raise InputError(str(path), None, None, "nested too deeply: not a dorsimeter config "
                         "(top-level keys and one [command] table level)") from None


def _key_at(path: Path, key: str) -> str:
    """``FILE, line N, key 'K'`` for a config key (``table.key`` for a key in a table): where
    the user looks, in the file's own words (a TOML key, not a "column")."""
    table, _, name = key.rpartition(".")
    line = None
    try:
        current = ""
        for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            s = text.strip()
            if s.startswith("[") and s.endswith("]"):
                current = s.strip("[] ")
            elif current == table and re.match(rf"{re.escape(name)}\s*=", s):
                line = i
                break
    except (OSError, UnicodeDecodeError):
        pass
    return f"{path}" + (f", line {line}" if line else "") + f", key '{key}'"


def _expected(action: argparse.Action) -> str:
    """What an option takes, in our words."""
    if action.type is float:
        return "expected a number, e.g. 38"
    if action.type is int:
        return "expected a whole number, e.g. 3"
    metavar = action.metavar if isinstance(action.metavar, str) else None
    return "expected " + (metavar or "a value like the option's").lower()


def _convert(action: argparse.Action, value, where: str, key: str):
    """``value`` (a TOML value or an environment string) as the option would parse it; a bad
    one is one line naming the file (or variable), the key and what was expected."""
    def bad(problem: str) -> DorsimeterError:
        shown = terminal_safe(repr(value))
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        if where.startswith(ENV_PREFIX):
            return DorsimeterError(f"environment variable {where}={shown}: {problem}")
        return DorsimeterError(f"{where} = {shown}: {problem}")  # where: FILE, line N, key 'K'

    if isinstance(action, argparse._StoreTrueAction):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE | FALSE:
            return text in TRUE
        raise bad("expected true or false")
    if isinstance(value, (dict, list)):
        raise bad("expected a single value, not a table or a list")
    if isinstance(value, str) and "\x00" in value:  # TOML's "\u0000": no path or name holds it
        raise bad("a NUL character is not allowed")
    kind = getattr(action.type, "__name__", "text")
    if kind in ("text", "str") or action.type is None:
        if not isinstance(value, str):  # athlete = 12: quote it
            raise bad(f'expected text in quotes, e.g. {key} = "{value}"')
    elif isinstance(value, bool):
        raise bad("expected a number, not true/false")
    convert = action.type if callable(action.type) else None
    try:
        out = convert(str(value)) if convert is not None else value
    except argparse.ArgumentTypeError as e:  # our own words already
        msg, quoted = str(e), f"'{terminal_safe(str(value))[:40]}': "
        raise bad(msg[len(quoted):] if msg.startswith(quoted) else msg) from None
    except (TypeError, ValueError):  # Python's ("could not convert string to float") are not
        raise bad(_expected(action)) from None
    if action.choices is not None and out not in action.choices:
        raise bad(f"expected one of {', '.join(map(str, action.choices))}")
    return out


def apply_settings(parser: argparse.ArgumentParser, command: str, commands: dict,
                   home: str | None) -> bool:
    """Set ``parser``'s defaults from the environment and the config file; True if any was."""
    defaults = settings_defaults(parser, command, commands, home)
    if defaults:
        parser.set_defaults(**defaults)
    return bool(defaults)


def settings_defaults(parser: argparse.ArgumentParser, command: str, commands: dict,
                      home: str | None) -> dict:
    """The option defaults the environment and the config file give ``command``."""
    options = settable(parser)
    path, config = load_config(home)
    if not isinstance(config, dict):
        config = {}
    known = {dest for p in commands.values() for dest in settable(p)}
    for key, value in config.items():
        if isinstance(value, dict):
            if key.replace("-", "_") not in {c.replace("-", "_") for c in commands}:
                raise DorsimeterError(f"{path}: [{key}]: no command called '{key}' (expected "
                                      f"one of {', '.join(sorted(commands))})")
            sub = commands.get(key) or commands.get(key.replace("_", "-"))
            assert sub is not None  # the names were compared just above
            for k in value:
                if k not in settable(sub):
                    raise DorsimeterError(f"{_key_at(path, f'{key}.{k}')}: the {key} command "
                                          f"has no option --{k.replace('_', '-')}")
        elif key not in known:
            raise DorsimeterError(f"{_key_at(path, key)}: no command has an option "
                                  f"--{key.replace('_', '-')}")
    table = config.get(command) or config.get(command.replace("-", "_")) or {}
    if not isinstance(table, dict):  # `sensor_cal = ...`: other commands' --sensor-cal, a
        # top-level value whose key is also this command's name: not a table; checked as the
        # value of that option (one line naming the file and key), then not applied here
        name = command.replace("-", "_")
        owner = next((o[name] for o in map(settable, commands.values()) if name in o), None)
        if owner is not None:
            _convert(owner, table, _key_at(path, name), name)
        table = {}
    defaults = {}
    for dest, action in options.items():
        env = os.environ.get(ENV_PREFIX + dest.upper())
        if env is not None:
            defaults[dest] = _convert(action, env, ENV_PREFIX + dest.upper(), dest)
        elif dest in table:
            defaults[dest] = _convert(action, table[dest], _key_at(path, f"{command}.{dest}"),
                                      dest)
        elif dest in config and not isinstance(config[dest], dict):
            defaults[dest] = _convert(action, config[dest], _key_at(path, dest), dest)
    return defaults
