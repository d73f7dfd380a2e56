"""The simulated shank: physically consistent IMU data with ground truth."""

from dorsimeter.sim.rig import Mount, SensorErrors, ShankSim

__all__ = ["Mount", "SensorErrors", "ShankSim"]
