"""The TUI under test: the real MonitorApp fed by the simulated rig.

``ScriptedSource`` streams a fixed list of simulated batches (as fast as the app takes them) and
then stays open without data, like a sensor at rest: what the screen shows is then a pure
function of those batches, which is what the snapshot tests need.
"""

from __future__ import annotations

import asyncio

import numpy as np

from dorsimeter.sim import Mount, ShankSim
from dorsimeter.sources.base import LinkStats, Pacer, Source
from dorsimeter.types import ImuBatch


class ScriptedSource(Source):
    """Yields the given batches, then waits (open, silent) until closed."""

    knows_side = True

    def __init__(self, batches: list[ImuBatch], rate_hz: float = 100.0,
                 name: str = "simulated rig (seed 3)", link: LinkStats | None = None,
                 speed: float = 0.0, gate: asyncio.Event | None = None) -> None:
        self.batches = batches
        self.gate = gate
        self.pacer = Pacer(speed)
        self.rate_hz = rate_hz
        self.name = name
        self.sent = 0
        self.link = link or LinkStats()
        self.streaming = False  # the app has opened the stream (it may wait at ``gate``)
        self.closed = False

    async def stream(self):
        self.streaming = True
        if self.gate is not None:
            await self.gate.wait()
        for b in self.batches:
            await self.pacer.wait_until(float(b.t_s[-1]))
            self.sent += 1
            yield b
        await asyncio.Event().wait()


    async def close(self) -> None:
        self.closed = True


def sim_batches(seconds: float, side: str = "left", seed: int = 3, batch_n: int = 5,
                then_right_s: float = 0.0, heel_off: list[tuple[float, float]] = (),
                drop_every: int = 0, end_angle_deg: dict | None = None
                ) -> tuple[list[ImuBatch], ShankSim]:
    """Simulated batches (with truth, side and sequence numbers); optionally the clip moves to
    the right leg after ``seconds``; ``heel_off`` windows unload the heel switch channel;
    ``drop_every`` drops every n-th batch (packet loss the sequence numbers reveal)."""
    sim = ShankSim(rate_hz=100.0, side=side, seed=seed, mount=Mount(),
                   **({"end_angle_deg": dict(end_angle_deg)} if end_angle_deg else {}))
    out: list[ImuBatch] = []
    seq = 0
    for part, dur in ((side, seconds), ("right", then_right_s)):
        if dur <= 0:
            continue
        sim.set_side(part)
        for _ in range(int(round(dur * 100 / batch_n))):
            b = sim.generate(batch_n)
            b.side = str(sim.side_at(b.t_s[-1:])[0])  # the leg actually moving
            b.seq = np.arange(seq, seq + len(b))
            seq += len(b)
            load = np.ones(len(b))
            for t0, t1 in heel_off:
                load[(b.t_s >= t0) & (b.t_s < t1)] = 0.0
            b.heel_contact = load
            out.append(b)
    if drop_every:
        out = [b for i, b in enumerate(out) if (i + 1) % drop_every]
    return out, sim


async def wait_for(pilot, cond, timeout_s: float = 30.0, step_s: float = 0.05) -> None:
    for _ in range(int(timeout_s / step_s)):
        if cond():
            return
        await pilot.pause(step_s)
    raise AssertionError(f"condition not reached within {timeout_s:.0f} s")


def frozen_clock() -> float:
    return 1000.0
