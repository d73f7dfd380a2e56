"""``dorsimeter demo``: the monitor on the simulated rig (wall test, some heel lifts).

It is ``monitor --sensor sim:wall+lifts``; ``--both`` adds a second simulated sensor on the
right shin (the next seed: another leg, its own calibration and heel lifts), so both legs and
their asymmetry show live.
"""

from __future__ import annotations

import argparse

SIM = "sim:wall+lifts"


def register(sub) -> None:
    p = sub.add_parser("demo", help="live monitor on the simulated rig (wall test, some heel "
                       "lifts)")
    p.add_argument("--both", action="store_true",
                   help="a simulated sensor on each shin: both legs live side by side")


def monitor_argv(args: argparse.Namespace) -> list[str]:
    """The ``monitor`` command line the demo runs."""
    argv = ["monitor", "--sensor", SIM]
    # without --both, one simulated leg, whatever DORSIMETER_RIGHT_SENSOR or the config say
    # (an option given beats them; an empty one means no right sensor)
    argv += ["--right-sensor", SIM if getattr(args, "both", False) else ""]
    return argv
