"""The filtering core: fusion, mounting calibration, lever arm, tibia angle and clip axis (pure
numerics, no I/O). Import the modules themselves: this package stays empty so that importing one
light module (``core.fusion`` for the detectors) does not load scipy with the calibrator.

The ``Pipeline`` joining them with the detectors lives one floor up, in ``dorsimeter.pipeline``."""
