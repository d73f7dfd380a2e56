"""The filtering core: fusion, mounting calibration, tibia angle, and the Pipeline joining them."""

from dorsimeter.core.mounting import MountingCalibration, MountingCalibrator
from dorsimeter.core.pipeline import Event, Pipeline, calibrate_recording
from dorsimeter.core.sensor_cal import SensorCalibration

__all__ = ["Event", "MountingCalibration", "MountingCalibrator", "Pipeline", "SensorCalibration",
           "calibrate_recording"]
