"""The filtering core: fusion, mounting calibration, tibia angle, and the Pipeline joining them."""

from dorsimeter.core.mounting import MountingCalibration, MountingCalibrator
from dorsimeter.core.pipeline import Event, Pipeline, calibrate_recording

__all__ = ["Event", "MountingCalibration", "MountingCalibrator", "Pipeline", "calibrate_recording"]
