"""The Pipeline: IMU batches in, tibia readings and events out. Pure and synchronous.

The same object serves live monitoring and the re-analysis of a recording; because fusion and
calibration are decided sample by sample, any split of the same stream gives identical readings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dorsimeter.core.fusion import StreamingFusion, up_in_sensor
from dorsimeter.core.mounting import MountingCalibration, MountingCalibrator
from dorsimeter.core.tibia import tibia_angles_deg
from dorsimeter.detect import Detectors, DetectorSettings, RepRecord
from dorsimeter.errors import CalibrationError
from dorsimeter.types import ImuBatch, Readings


@dataclass
class Event:
    """Something the session or UI should know about, at device time ``t_s``."""

    kind: str  # "calibrated" | "calibration_failed" | "rep" | "heel_lift" | "knee_drift"
    t_s: float
    side: str
    message: str
    calibration: MountingCalibration | None = None
    rep: RepRecord | None = None  # kind "rep": the rep that just ended


class Pipeline:
    """Fusion → mounting calibration (per side) → tibia angle and knee track."""

    def __init__(self, rate_hz: float, calibrations: dict[str, MountingCalibration] | None = None,
                 side: str = "left", auto_calibrate: bool = True,
                 detector_settings: DetectorSettings | None = None) -> None:
        self.rate_hz = rate_hz
        self.detectors = Detectors(rate_hz, detector_settings)  # heel lift, reps, knee drift
        self._detector_events: list[Event] = []
        self.fusion = StreamingFusion(rate_hz)
        self.calibrations: dict[str, MountingCalibration] = dict(calibrations or {})
        self.side = side
        self.auto_calibrate = auto_calibrate
        self._calibrator: MountingCalibrator | None = None
        self._pending_t: list[np.ndarray] = []
        self._pending_up: list[np.ndarray] = []

    def set_side(self, side: str) -> None:
        """The sensor is now on ``side``; an uncalibrated side starts a new calibration."""
        if side != self.side:
            self.side = side
            self._reset_calibrator()

    def recalibrate(self) -> None:
        """Forget the current side's mounting (the clip was moved) and calibrate again."""
        self.calibrations.pop(self.side, None)
        self._reset_calibrator()

    def _reset_calibrator(self) -> None:
        self._calibrator = None
        self._pending_t, self._pending_up = [], []

    @property
    def status(self) -> str:
        """Calibration state of the current side, for the UI."""
        if self.side in self.calibrations:
            return "calibrated"
        if self._calibrator is None:
            return "stand tall and still"
        return self._calibrator.progress

    def push(self, batch: ImuBatch) -> tuple[Readings, list[Event]]:
        """Process one batch; returns the readings that became available and any events."""
        if batch.side is not None:
            self.set_side(batch.side)
        if len(batch) == 0:
            return Readings(), []
        quat = batch.quat if batch.quat is not None else self.fusion.update(
            batch.gyr_rad_s, batch.acc_m_s2)
        up = up_in_sensor(quat)
        self.detectors.feed(batch, up)
        side = self.side
        if side in self.calibrations:
            return self._readings(batch.t_s, up, side), self._take_detector_events()
        if not self.auto_calibrate:
            return Readings(), []
        if self._calibrator is None:
            self._calibrator = MountingCalibrator(side, self.rate_hz)
        self._pending_t.append(batch.t_s)
        self._pending_up.append(up)
        try:
            done = self._calibrator.add(batch.t_s, batch.gyr_rad_s, batch.acc_m_s2, up)
        except CalibrationError as e:
            self._reset_calibrator()
            return Readings(), [Event("calibration_failed", float(batch.t_s[-1]), side, str(e))]
        if done is None:
            return Readings(), []
        cal = self._calibrator.result
        self.calibrations[side] = cal
        t, u = np.concatenate(self._pending_t), np.concatenate(self._pending_up)
        self._reset_calibrator()
        event = Event("calibrated", cal.t_defined_s, side, cal.summary(), cal)
        return self._readings(t, u, side), [event, *self._take_detector_events()]

    def _readings(self, t_s: np.ndarray, up: np.ndarray, side: str) -> Readings:
        angle, track = tibia_angles_deg(up, self.calibrations[side].matrix, side)
        r = Readings(t_s, angle, track, np.full(len(t_s), side, dtype=object))
        self._detect(r, side)
        return r

    def _detect(self, r: Readings, side: str) -> None:
        """Heel lift, reps and knee drift for these readings (fills their columns)."""
        done, alerts = self.detectors.annotate(r, self.calibrations.get(side))
        self._detector_events += [Event(kind, t, side, msg) for kind, t, msg in alerts]
        self._detector_events += [
            Event("rep", rep.t_end_s, side, f"rep {rep.index + 1}: {rep.end_range_deg:.1f}°"
                  + ("" if rep.valid else " (heel lifted, not scored)"), rep=rep)
            for rep in done]

    def _take_detector_events(self) -> list[Event]:
        events = sorted(self._detector_events, key=lambda e: e.t_s)
        self._detector_events = []
        return events


def calibrate_recording(batches: list[ImuBatch], rate_hz: float
                        ) -> dict[str, MountingCalibration]:
    """Mounting calibration per side of a recording, exactly as the live pipeline finds it."""
    pipe = Pipeline(rate_hz)
    seen: set[str] = set()
    for b in batches:
        seen.add(b.side or pipe.side)
        _, events = pipe.push(b)
        for e in events:
            if e.kind == "calibration_failed":
                raise CalibrationError(e.message)
    missing = seen - set(pipe.calibrations)
    if missing:
        if pipe._calibrator is not None and pipe._calibrator.side in missing:
            raise CalibrationError(pipe._calibrator.refusal())
        raise CalibrationError(f"{', '.join(sorted(missing))}: no calibration could be made")
    return pipe.calibrations
