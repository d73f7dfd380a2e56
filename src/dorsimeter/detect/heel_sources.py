"""Where a heel lift is seen: the source codes stored in files and their spoken names.

Light (no numerics), so the session, the store summary and the report can name sources without
loading the detectors' fusion."""

HEEL_SWITCH = "heel_switch"
FOOT_IMU = "foot_imu"
SHANK_IMU = "shank_imu"
NO_SOURCE = "none"
#: Heel-lift sources, best first: the monitor uses the best one the data offer.
SOURCES = (HEEL_SWITCH, FOOT_IMU, SHANK_IMU)
#: the sources as a person says them (the monitor, summaries, the report); files keep the codes
SPOKEN = {HEEL_SWITCH: "heel switch", FOOT_IMU: "foot sensor", SHANK_IMU: "shin sensor",
          NO_SOURCE: "not checked"}
