"""A whole raw recording through the live ``Pipeline``: the re-analysis behind ``analyze``,
``recover`` and the reference-recording tests (one place, so they cannot disagree)."""

from __future__ import annotations

from dorsimeter.core.mounting import MountingCalibration
from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.errors import DorsimeterError
from dorsimeter.io.rawcsv import RawRecording
from dorsimeter.pipeline.offline import offline_orientation
from dorsimeter.pipeline.pipeline import Pipeline, calibrate_recording
from dorsimeter.types import Readings


def analyze(rec: RawRecording, calibrations: dict[str, MountingCalibration] | None = None,
            offline: bool = False, sensor_cal: SensorCalibration | None = None,
            events: list | None = None) -> Readings:
    """Readings for a whole raw recording through the same Pipeline the live monitor uses
    (its events appended to ``events`` when given: the session takes its reps from them).

    ``offline``: non-causal fusion of the whole file, lever arm removed with the mounting of
    each side (calibrated from the file first when not given), see ``core.offline``."""
    batches = rec.batches()
    if offline and rec.quat is None:
        if calibrations is None:
            calibrations = calibrate_recording(batches, rec.rate_hz, sensor_cal=sensor_cal)
        quat = offline_orientation(rec.gyr_rad_s, rec.acc_m_s2, rec.rate_hz, rec.side,
                                   calibrations, sensor_cal, t_s=rec.t_s, restart=rec.restart)
        i = 0
        for b in batches:
            b.quat = quat[i:i + len(b)]
            i += len(b)
    pipe = Pipeline(rec.rate_hz, calibrations, sensor_cal=sensor_cal,
                    quat_is_ours=offline and rec.quat is None)
    out = []
    for b in batches:
        r, found = pipe.push(b)
        for e in found:
            if e.kind == "calibration_failed":
                raise DorsimeterError(e.message)
        if events is not None:
            events += found
        out.append(r)
    return Readings.concat(out)
