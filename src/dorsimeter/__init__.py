"""dorsimeter: the knee-to-wall tibia angle from a shin-worn IMU."""

__version__ = "0.1.0"
