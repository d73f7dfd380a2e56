"""Two sensors, one per shin, both live: each bound to its side, one pipeline each.

Each sensor keeps its own fusion, mounting calibration and detectors (a heel lift on the left
is the left sensor's business); the readings of both go to one :class:`SessionResults`, which
keeps reps per side, so asymmetry is available as soon as both sides have a scored rep.
"""

from __future__ import annotations

from dorsimeter.detect.bank import DetectorSettings
from dorsimeter.pipeline.pipeline import Event, Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.types import SIDES, ImuBatch, Readings


class BilateralPipelines:
    """A pipeline per side; ``push(side, batch)`` routes a sensor's batch to its side's."""

    def __init__(self, rate_hz: float, calibrations: dict | None = None,
                 sensor_cals: dict | None = None,
                 detector_settings: DetectorSettings | None = None,
                 session: SessionResults | None = None) -> None:
        cals = calibrations or {}
        self.pipelines: dict[str, Pipeline] = {}
        for side in SIDES:
            kw = {}
            if sensor_cals and side in sensor_cals:
                kw["sensor_cal"] = sensor_cals[side]
            self.pipelines[side] = Pipeline(
                rate_hz, {side: cals[side]} if side in cals else None, side=side,
                detector_settings=detector_settings, **kw)
        self.session = session if session is not None else SessionResults(rate_hz=rate_hz)

    def push(self, side: str, batch: ImuBatch) -> tuple[Readings, list[Event]]:
        """One batch from the sensor on ``side``; the readings also go to the session."""
        if side not in self.pipelines:
            raise ValueError(f"side must be one of {SIDES}")
        batch.side = side  # a sensor bound to a shin stays there
        r, events = self.pipelines[side].push(batch)
        self.session.add(r, events)
        return r, events

    @property
    def status(self) -> dict[str, str]:
        """Calibration state per side, for the UI."""
        return {s: p.status for s, p in self.pipelines.items()}

    @property
    def calibrations(self) -> dict:
        return {s: p.calibrations[s] for s, p in self.pipelines.items() if s in p.calibrations}
