"""The simulated rig as a live source, paced in (scaled) real time."""

from __future__ import annotations

from collections.abc import AsyncIterator

from dorsimeter.core.mounting import ASKED_STILL_S
from dorsimeter.errors import DorsimeterError
from dorsimeter.sim import Mount, ShankSim
from dorsimeter.sim.motion import SCRIPTS, ScriptSpec, script_spec
from dorsimeter.sources.base import Pacer, Source
from dorsimeter.types import ImuBatch

#: device seconds per batch when running as fast as possible (``speed`` 0): the rig and the
#: pipeline cost milliseconds a call whatever its length, so 5-sample batches held ``--speed 0``
#: near 10× real time (the pipeline's results do not depend on how the stream is cut)
FAST_CHUNK_S = 1.0


def rig_spec(name: str = "wall") -> ScriptSpec:
    """The simulated rig's script ``name``: its athlete stands as the calibration asks
    (``ASKED_STILL_S``) and half a second more before moving, as a person does."""
    spec = script_spec(name)
    return spec.with_(stance_s=max(spec.stance_s, ASKED_STILL_S + 0.5))


class SimSource(Source):
    """Streams ShankSim in batches of ``batch_n`` samples; ``set_side`` moves the simulated clip.

    At ``speed`` 0 the batches are a second long (:data:`FAST_CHUNK_S`), so a side change or a
    calibration restart takes effect up to that much device time later, and the simulator draws
    its noise per second (another realisation of the same error model as ``batch_n`` draws)."""

    def __init__(self, side: str = "left", speed: float = 1.0, seed: int = 0,
                 rate_hz: float = 100.0, batch_n: int = 5,
                 clip_rotation_deg=(0.0, 0.0, 0.0), script: str = "wall") -> None:
        super().__init__()
        name, _, extra = script.partition("+")
        if name not in SCRIPTS or extra not in ("", "lifts"):
            raise DorsimeterError(f"--sensor sim:{script}: expected sim[:SCRIPT[+lifts]] with "
                                  f"SCRIPT one of {', '.join(sorted(SCRIPTS))}")
        spec = rig_spec(name)
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
        n = self.batch_n
        if self.pacer.speed <= 0:
            n = max(n, int(round(FAST_CHUNK_S * self.rate_hz)))
        while True:
            batch = self.sim.generate(n)
            await self.pacer.wait_until(float(batch.t_s[-1]))
            yield batch
