"""A whole raw recording through the live ``Pipeline``: the re-analysis behind ``analyze``,
``recover`` and the reference-recording tests (one place, so they cannot disagree)."""

from __future__ import annotations

from collections.abc import Iterator

from dorsimeter.core.mounting import MountingCalibration
from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.errors import DorsimeterError
from dorsimeter.io.rawcsv import CHUNK_ROWS, RawRecording
from dorsimeter.pipeline.offline import offline_orientation
from dorsimeter.pipeline.pipeline import Pipeline, calibrate_recording
from dorsimeter.types import Readings


def analyze_chunks(rec: RawRecording,
                   calibrations: dict[str, MountingCalibration] | None = None,
                   offline: bool = False, sensor_cal: SensorCalibration | None = None,
                   ) -> Iterator[tuple[Readings, list]]:
    """The recording through the same Pipeline the live monitor uses, batch by batch: each
    batch's (readings, events), so a caller can write them out as they come (``analyze
    --offline`` in bounded memory beside the recording itself).

    ``offline``: non-causal fusion of the whole file, lever arm removed with the mounting of
    each side (calibrated from the file first when not given), see ``core.offline``."""
    batches = rec.batches()
    if offline and rec.quat is None:
        if calibrations is None:
            calibrations = calibrate_recording(rec.chunks(), rec.rate_hz, sensor_cal=sensor_cal)
        quat = offline_orientation(rec.gyr_rad_s, rec.acc_m_s2, rec.rate_hz, rec.side,
                                   calibrations, sensor_cal, t_s=rec.t_s, restart=rec.restart)
        i = 0
        for b in batches:
            b.quat = quat[i:i + len(b)]
            i += len(b)
    pipe = Pipeline(rec.rate_hz, calibrations, sensor_cal=sensor_cal,
                    quat_is_ours=offline and rec.quat is None)
    for b in (whole.slice(i, i + CHUNK_ROWS) for whole in batches
              for i in range(0, len(whole), CHUNK_ROWS)):  # a bounded piece at a time
        r, found = pipe.push(b)
        for e in found:
            if e.kind == "calibration_failed":
                raise DorsimeterError(e.message)
        yield r, found


def analyze(rec: RawRecording, calibrations: dict[str, MountingCalibration] | None = None,
            offline: bool = False, sensor_cal: SensorCalibration | None = None,
            events: list | None = None) -> Readings:
    """Readings for a whole raw recording (``analyze_chunks`` joined), its events appended to
    ``events`` when given: the session takes its reps from them."""
    out = []
    for r, found in analyze_chunks(rec, calibrations, offline, sensor_cal):
        if events is not None:
            events += found
        out.append(r)
    return Readings.concat(out)
