"""The filtering core: fusion, mounting calibration and the tibia angle (pure numerics, no I/O).

The ``Pipeline`` joining them with the detectors lives one floor up, in ``dorsimeter.pipeline``."""

from dorsimeter.core.mounting import MountingCalibration, MountingCalibrator
from dorsimeter.core.sensor_cal import SensorCalibration

__all__ = ["MountingCalibration", "MountingCalibrator", "SensorCalibration"]
