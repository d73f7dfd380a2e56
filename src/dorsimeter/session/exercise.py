"""The exercises a session can hold, by the names the store, exports and protocols use.

The knee-to-wall test is the measurement (its reps are trials, scored, trended in history);
the guided exercises (``protocols/data``) and the single-leg squat are training or screening:
their reps are listed with their own figures and never enter the wall-test trend.
"""

from __future__ import annotations

from dorsimeter.wire.sensorspec import SensorSpec

WALL_TEST = "wall_test"

#: Stored name → the words a physio reads.
EXERCISES: dict[str, str] = {
    WALL_TEST: "wall test",
    "band_mobilisation": "band mobilisation",
    "clamshell_wall": "clamshell",
    "reverse_lunge": "reverse lunge",
    "single_leg_squat": "single-leg squat",
    "short_skinny_foot": "short foot",
}

#: The simulator's scripts and the exercise they perform (``sim:lunge`` is reverse lunges).
SIM_SCRIPT_EXERCISE = {"wall": WALL_TEST, "lunge": "reverse_lunge",
                       "mobilisation": "band_mobilisation", "squat": "single_leg_squat"}


def exercise_title(name: str | None) -> str:
    """``reverse_lunge`` → ``reverse lunge``; an unknown name as it is, None as the wall test."""
    name = name or WALL_TEST
    return EXERCISES.get(name, name.replace("_", " "))


def exercise_of_sensor(sensor: SensorSpec | None) -> str:
    """The exercise a ``--sensor`` spec performs: a simulator script's, else the wall test."""
    if sensor is not None and sensor.kind == "sim":
        return SIM_SCRIPT_EXERCISE.get(sensor.target.partition("+")[0], WALL_TEST)
    return WALL_TEST
