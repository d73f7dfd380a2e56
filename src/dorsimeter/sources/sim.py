"""The simulated rig as a live source, paced in (scaled) real time."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dorsimeter.errors import DorsimeterError
from dorsimeter.sim import Mount, ShankSim
from dorsimeter.sim.motion import SCRIPTS, script_spec
from dorsimeter.sources.base import Pacer, Source
from dorsimeter.types import ImuBatch


class SimSource(Source):
    """Streams ShankSim in batches of ``batch_n`` samples; ``set_side`` moves the simulated clip."""

    def __init__(self, side: str = "left", speed: float = 1.0, seed: int = 0,
                 rate_hz: float = 100.0, batch_n: int = 5,
                 clip_rotation_deg=(0.0, 0.0, 0.0), script: str = "wall") -> None:
        name, _, extra = script.partition("+")
        if name not in SCRIPTS or extra not in ("", "lifts"):
            raise DorsimeterError(f"--sensor sim:{script}: expected sim[:SCRIPT[+lifts]] with "
                                  f"SCRIPT one of {', '.join(sorted(SCRIPTS))}")
        spec = script_spec(name)
        if extra == "lifts":  # about one rep in four lifts the heel, for the demo
            spec = spec.with_(lift_prob=0.25)
        self.sim = ShankSim(rate_hz=rate_hz, side=side, seed=seed, script=spec,
                            mount=Mount(clip_rotation_deg=tuple(clip_rotation_deg)))
        self.rate_hz = rate_hz
        self.batch_n = batch_n
        self.pacer = Pacer(speed)
        self.name = f"simulated rig ({script}, seed {seed})"

    def set_side(self, side: str) -> None:
        self.sim.set_side(side)

    def calibration_started(self) -> None:
        self.sim.restart()

    async def stream(self) -> AsyncIterator[ImuBatch]:
        while True:
            batch = self.sim.generate(self.batch_n)
            await self.pacer.wait_until(float(batch.t_s[-1]))
            yield batch
