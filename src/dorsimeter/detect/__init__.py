"""Detectors that run after the tibia angle: heel lift (three sources), reps/holds, knee drift."""

from dorsimeter.detect.bank import Detectors, DetectorSettings, lever_arm_of
from dorsimeter.detect.heel import (
    FOOT_IMU,
    HEEL_SWITCH,
    NO_SOURCE,
    SHANK_IMU,
    SOURCES,
    FootImuDetector,
    HeelSwitchDetector,
    ShankLiftDetector,
)
from dorsimeter.detect.reps import RepRecord, RepSettings, RepTracker

__all__ = ["FOOT_IMU", "HEEL_SWITCH", "NO_SOURCE", "SHANK_IMU", "SOURCES", "DetectorSettings",
           "Detectors", "FootImuDetector", "HeelSwitchDetector", "RepRecord", "RepSettings",
           "RepTracker", "ShankLiftDetector", "lever_arm_of"]
