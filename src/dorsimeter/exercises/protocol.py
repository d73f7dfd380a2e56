"""Guided exercise protocols as data: one small TOML file each in ``protocols/data``.

Fields: ``name``, ``title``, ``tracked`` (false: a hold timer only, nothing to measure),
``sets`` and ``reps`` as ``[min, max]``, ``hold_s`` (end-range hold that makes a rep count),
``rest_s`` (between reps, timer-only protocols), ``set_rest_s``, ``per_side`` (every set on
both legs) and a ``[cues]`` table (``start``, ``drive``, ``hold``, ``release``, ``heel``,
``drift``, ``rest``, ``set_rest``, ``side``, ``done``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from dorsimeter.errors import InputError

CUE_NAMES = ("start", "drive", "hold", "release", "heel", "drift", "rest", "set_rest", "side",
             "done")


@dataclass(frozen=True)
class Protocol:
    """One guided exercise (see the module docstring for the fields)."""

    name: str
    title: str
    tracked: bool
    sets: tuple[int, int]
    reps: tuple[int, int]
    hold_s: float
    rest_s: float = 0.0
    set_rest_s: float = 30.0
    per_side: bool = True
    cues: dict[str, str] = field(default_factory=dict)

    def cue(self, key: str) -> str:
        return self.cues.get(key, "")


def _range(doc: dict, key: str, path: str) -> tuple[int, int]:
    v = doc.get(key)
    if (not isinstance(v, list) or len(v) != 2 or not all(isinstance(x, int) for x in v)
            or not 1 <= v[0] <= v[1]):
        raise InputError(path, None, key, "expected [min, max], whole numbers, 1 ≤ min ≤ max")
    return int(v[0]), int(v[1])


def parse_protocol(text: str, path: str = "<protocol>") -> Protocol:
    """A protocol from its TOML text; bad fields raise InputError naming file and field."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = getattr(e, "lineno", None)
        raise InputError(path, line, None, f"not valid TOML ({e})") from None
    for key, typ in (("name", str), ("title", str), ("tracked", bool)):
        if not isinstance(doc.get(key), typ):
            raise InputError(path, None, key, f"expected a {typ.__name__}")
    nums = {}
    for key, default in (("hold_s", None), ("rest_s", 0.0), ("set_rest_s", 30.0)):
        v = doc.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise InputError(path, None, key, "expected a number of seconds ≥ 0")
        nums[key] = float(v)
    cues = doc.get("cues", {})
    if not isinstance(cues, dict) or not all(isinstance(v, str) for v in cues.values()):
        raise InputError(path, None, "cues", "expected a table of strings")
    unknown = set(cues) - set(CUE_NAMES)
    if unknown:
        raise InputError(path, None, f"cues.{sorted(unknown)[0]}",
                         f"unknown cue; expected one of {', '.join(CUE_NAMES)}")
    return Protocol(doc["name"], doc["title"], doc["tracked"], _range(doc, "sets", path),
                    _range(doc, "reps", path), nums["hold_s"], nums["rest_s"],
                    nums["set_rest_s"], bool(doc.get("per_side", True)), dict(cues))


def load_protocol(path: str | Path) -> Protocol:
    """A protocol from a TOML file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), None, None, "no such file") from None
    return parse_protocol(text, str(path))


def list_protocols() -> list[Protocol]:
    """The protocols this version ships, in a fixed order."""
    files = resources.files("dorsimeter.exercises") / "data"
    out = [parse_protocol(f.read_text(encoding="utf-8"), f.name)
           for f in sorted(files.iterdir(), key=lambda f: f.name) if f.name.endswith(".toml")]
    order = ("short_skinny_foot", "band_mobilisation", "clamshell_wall", "reverse_lunge",
             "single_leg_squat")
    return sorted(out, key=lambda p: order.index(p.name) if p.name in order else len(order))


def get_protocol(name: str) -> Protocol:
    """A shipped protocol by name."""
    for p in list_protocols():
        if p.name == name:
            return p
    names = ", ".join(p.name for p in list_protocols())
    raise InputError("protocol", None, "name", f"unknown protocol {name!r}; expected {names}")
