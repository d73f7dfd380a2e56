"""Options and output shared by the commands."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from dorsimeter.text import terminal_safe
from dorsimeter.types import SIDES

if TYPE_CHECKING:  # the session (and scipy behind it) is imported by the commands that run
    from dorsimeter.session.results import SessionResults
    from dorsimeter.wire.sensorspec import SensorSpec


def rotation_arg(text: str) -> tuple[float, float, float]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3 or not all(math.isfinite(v) and abs(v) <= 360.0 for v in vals):
        raise argparse.ArgumentTypeError(f"'{terminal_safe(text)}': expected three angles in "
                                         "degrees (-360 to 360), e.g. 0,0,120")
    return vals  # type: ignore[return-value]


def number_arg(lo: float, hi: float, what: str, integer: bool = False,
               above_lo: bool = False):
    """An argparse type: a finite number in [lo, hi] (``above_lo``: lo itself excluded), with
    a message in plain words (``what``: e.g. "seconds of device time")."""
    def fmt(v: float) -> str:
        return str(int(v)) if integer else f"{v:g}"

    rng = (f"{'over' if above_lo else 'from'} {fmt(lo)} {'and at most' if above_lo else 'to'} "
           f"{fmt(hi)}")

    def parse(text: str):
        try:
            v = int(text, 10) if integer else float(text)
        except (TypeError, ValueError):
            v = None
        # a whole number is compared as an int: math.isfinite of a 400-digit int overflows
        if (v is None or (not integer and not math.isfinite(v)) or v < lo or v > hi
                or (above_lo and v == lo)):
            kind = "a whole number" if integer else "a number"
            raise argparse.ArgumentTypeError(f"'{terminal_safe(text)[:40]}': expected {kind} "
                                             f"{rng} ({what})")
        return v

    parse.__name__ = "integer" if integer else "number"
    return parse


def text_arg(max_chars: int = 200):
    """An argparse type: text we store or show, valid Unicode (no unpaired surrogate from
    undecodable bytes) and not absurdly long."""

    def parse(text: str) -> str:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise argparse.ArgumentTypeError(f"'{terminal_safe(text)[:40]}': not valid text "
                                             "(undecodable bytes; use UTF-8)") from None
        if len(text) > max_chars:
            raise argparse.ArgumentTypeError(f"{len(text)} characters: expected at most "
                                             f"{max_chars}")
        return text

    parse.__name__ = "text"
    return parse


def sensor_arg(option: str = "--sensor", empty_is_none: bool = False):
    """An argparse type: ``--sensor`` parsed once into a ``SensorSpec`` (its one-line error
    names ``option``); ``empty_is_none``: an empty value means no sensor (``--right-sensor ""``)."""

    def parse(text: str) -> SensorSpec | None:
        from dorsimeter.errors import DorsimeterError
        from dorsimeter.wire.sensorspec import SensorSpec

        if empty_is_none and not text:
            return None
        try:
            return SensorSpec.parse(text, option)
        except DorsimeterError as e:  # argparse names the option itself
            raise argparse.ArgumentTypeError(terminal_safe(str(e).removeprefix(option + " ")))\
                from None

    parse.__name__ = "sensor"
    return parse


MAX_DURATION_S = 7 * 24 * 3600.0  # a week of device time: beyond any session
SEED_ARG = number_arg(0, 2**32 - 1, "the simulator's random seed", integer=True)
SESSION_ID_ARG = number_arg(1, 2**63 - 1, "a session id", integer=True)  # SQLite's ids


def add_source_options(p: argparse.ArgumentParser, sensor_default: str | None = "sim",
                       with_calibration: bool = True) -> None:
    """``--sensor`` and the options of the sources it names."""
    p.add_argument("--sensor", default=sensor_default, type=sensor_arg(),
                   help="sim[:SCRIPT[+lifts]] | replay:FILE | serial:PORT[@RATE] | "
                   "ble:ADDRESS_OR_NAME[@RATE] (BLE without @RATE: the rate the sensor offers "
                   "nearest 100 Hz, e.g. a Movella DOT 60)"
                   + (f" (default: {sensor_default})" if sensor_default else ""))
    p.add_argument("--side", choices=SIDES, default="left", help="leg the sensor is on")
    p.add_argument("--speed", type=number_arg(0, 1000, "pace: 1 = real time"), default=1.0,
                   help="sim/replay pace: 1 = real time, 0 = as fast as possible")
    p.add_argument("--seed", type=SEED_ARG, default=0, help="simulator random seed")
    p.add_argument("--clip-rotation", type=rotation_arg, default=(0.0, 0.0, 0.0),
                   metavar="X,Y,Z", help="simulated clip rotation on the shin, degrees")
    if with_calibration:
        p.add_argument("--calibration",
                       help="mounting calibration JSON (default: calibrate live)")
    add_sensor_cal_option(p)


def add_sensor_cal_option(p: argparse.ArgumentParser) -> None:
    """``--sensor-cal``: the box calibration (``dorsimeter sensor-cal``) to apply."""
    p.add_argument("--sensor-cal", metavar="ID|FILE",
                   help="sensor calibration (from `dorsimeter sensor-cal`): a sensor id in the "
                        "data directory or a JSON file; live, a BLE sensor's own is found by its "
                        "address or name")


def guard_outputs(args: argparse.Namespace, outputs: dict[str, tuple[list, bool]],
                  inputs=()) -> None:
    """Check every output path of a command before anything is opened (``security.
    guard_output``): ``outputs`` maps an option to (its paths, whether they are raw CSVs). Two
    outputs of one command may not be the same file either."""
    from dorsimeter.errors import DorsimeterError
    from dorsimeter.store.security import guard_output

    force, home = bool(getattr(args, "force", False)), getattr(args, "home", None)
    seen: dict = {}
    for option, (paths, raw) in outputs.items():
        for path in paths:
            if path is not None and raw:
                try:
                    str(path).encode("utf-8")
                except UnicodeEncodeError:
                    raise DorsimeterError(f"{option} {terminal_safe(path)}: the file name is not "
                                          "valid UTF-8 (the history stores it as text)") from None
            resolved = guard_output(path, option, inputs=inputs, home=home, force=force,
                                    raw=raw)
            if resolved is None:
                continue
            if resolved in seen:
                raise DorsimeterError(f"{option} {path}: the same file as {seen[resolved]}")
            seen[resolved] = f"{option} {path}"


def open_source_from_args(args: argparse.Namespace):
    from dorsimeter.sources import open_source

    allowed = None
    if args.sensor.kind == "ble":  # the radio: only the sensors the user has added
        from dorsimeter.store.security import AllowList

        allowed = AllowList.load(getattr(args, "home", None))
    return open_source(args.sensor, side=args.side, speed=args.speed, seed=args.seed,
                       clip_rotation_deg=args.clip_rotation, allowed=allowed)


def say_rate(leg) -> None:
    """One line on stderr when a leg's sensor streams at a rate other than the one asked (a
    BLE family's nearest offered rate, ``Source.rate_note``), at its first sample."""
    if leg.source.rate_note:
        print(f"{leg.side}: {terminal_safe(leg.source.rate_note)}", file=sys.stderr)


def print_results(results: SessionResults, calibrations: dict) -> None:
    for cal in calibrations.values():
        print(f"calibration {cal.summary()}")
    for line in results.summary_lines():
        print(line)


def add_home_option(p: argparse.ArgumentParser) -> None:
    """``--home``: the data directory (history database), over $DORSIMETER_HOME and the default."""
    p.add_argument("--home", metavar="DIR",
                   help="data directory (default: $DORSIMETER_HOME, else the user data dir)")


def add_store_options(p: argparse.ArgumentParser) -> None:
    """``--home`` and the athlete the stored session belongs to."""
    add_home_option(p)
    from dorsimeter.store.db import FOOT_RANGE_M, TIBIA_RANGE_M

    p.add_argument("--athlete", metavar="NAME", type=text_arg(),
                   help="athlete name or pseudonymous id")
    p.add_argument("--tibia-length-cm", metavar="CM",
                   type=number_arg(100 * TIBIA_RANGE_M[0], 100 * TIBIA_RANGE_M[1],
                                   "a tibia in cm"),
                   help="athlete's tibia length (ankle to knee joint line), stored with them")
    p.add_argument("--foot-length-cm", metavar="CM",
                   type=number_arg(100 * FOOT_RANGE_M[0], 100 * FOOT_RANGE_M[1],
                                   "toe to ankle in cm"),
                   help="athlete's toe-to-ankle length, stored with them")
    p.add_argument("--pseudonymous", action="store_true",
                   help="mark --athlete as a pseudonymous id (no real name stored)")
    p.add_argument("--notes", type=text_arg(2000),
                   help="free-text notes stored with the session")
    p.add_argument("--placement-cm", type=placement_arg, metavar="CM",
                   help="where the sensor sits: the clip's centre this many cm below the "
                        "tibial tuberosity (hardware_docs/mounting.md; standard 15), stored "
                        "with the session")


def placement_arg(text: str) -> float:
    """``--placement-cm``: the clip's centre below the tibial tuberosity, 0–40 cm."""
    from dorsimeter.core.mounting import parse_placement_cm

    try:
        return parse_placement_cm(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def athlete_geometry_from_args(args: argparse.Namespace, store):
    """The athlete's lengths (given now or stored before) for the wall geometry, else None."""
    from dorsimeter.session.wall import AthleteGeometry

    if not getattr(args, "athlete", None):
        return None
    a = store.athlete(args.athlete)
    if not a.tibia_length_m or a.foot_length_m is None:
        return None
    return AthleteGeometry(float(a.tibia_length_m), float(a.foot_length_m))


def session_recorder_from_args(args: argparse.Namespace, kind: str, sensor_name: str,
                               calibrations=None, raw_path=None, session_id: int | None = None,
                               legs: dict | None = None):
    """The store (data directory from ``--home``) and a recorder for this session (or for
    stored session ``session_id``, continued with another leg); ``legs``: side → (sensor
    name, raw CSV)."""
    from dorsimeter.store import Store
    from dorsimeter.store.recorder import SessionRecorder

    store = Store.open(getattr(args, "home", None))
    if args.athlete and (args.tibia_length_cm is not None or args.foot_length_cm is not None
                         or getattr(args, "pseudonymous", False)):
        store.athlete(args.athlete,
                      None if args.tibia_length_cm is None else args.tibia_length_cm / 100.0,
                      None if args.foot_length_cm is None else args.foot_length_cm / 100.0,
                      pseudonymous=True if getattr(args, "pseudonymous", False) else None)
    spec = getattr(args, "sensor", None)
    kind_of_sensor = spec.kind if spec is not None else None
    recorder = SessionRecorder(store, kind, athlete=args.athlete, sensor=sensor_name,
                               sensor_kind=kind_of_sensor, raw_path=raw_path,
                               notes=args.notes, calibrations=calibrations,
                               session_id=session_id, legs=legs)
    if getattr(args, "placement_cm", None) is not None:
        store.set_placement(recorder.session_id, args.placement_cm)
    return store, recorder
