"""The simulated shank: physically consistent IMU data with ground truth."""

from dorsimeter.sim.rig import Mount, SensorErrors, ShankSim
from dorsimeter.sim.shin import EFFECTS, ShinEffects, ShinParams

__all__ = ["EFFECTS", "Mount", "SensorErrors", "ShankSim", "ShinEffects", "ShinParams"]
