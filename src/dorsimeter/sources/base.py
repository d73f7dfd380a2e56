"""The interface every source offers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from dorsimeter.types import ImuBatch


@dataclass
class Gap:
    """A stretch with no data because the link dropped or the port went away; the recording and
    the trial go on after it.

    For our node, device time and sequence numbers run on through the outage, so the frames and
    samples missed are exact. WitMotion sends neither: its samples are numbered on arrival, so
    the samples missed are estimated from the wall time either side (``estimated``) and its
    sample clock is moved on by that many, keeping time in step across the gap.
    """

    t_before_s: float | None  # device time of the last sample before the outage
    t_after_s: float | None = None  # device time of the first sample after it
    down_s: float = 0.0  # wall time the link or port was gone
    lost_frames: int | None = None  # frames missed, from sequence numbers
    lost_samples: int | None = None  # samples missed (None: unknown)
    estimated: bool = False  # lost_samples from arrival times (a device without a clock)
    restart: bool = False  # the device restarted in it: orientation unknown, fusion restarted


class Source:
    """An async iterator of ImuBatch with a nominal ``rate_hz`` and a ``name`` for the UI."""

    rate_hz: float = 100.0
    name: str = "source"
    knows_side: bool = False  # True when batches carry their side (replay of a file with sides)

    def set_side(self, side: str) -> None:
        """Told when the user says the sensor is now on ``side`` (the simulator moves its clip)."""

    def calibration_started(self) -> None:
        """Told when the calibration wizard asks the athlete to stand tall, then drive the knee
        (the simulated athlete does so); a real sensor has nothing to do."""

    def __aiter__(self) -> AsyncIterator[ImuBatch]:
        return self.stream()

    async def stream(self) -> AsyncIterator[ImuBatch]:  # pragma: no cover - interface
        raise NotImplementedError
        yield

    async def close(self) -> None:
        """Release the device."""

    def stats(self) -> dict:
        """Connection figures for the UI; every key optional, absent when the source can't tell.

        ``rate_hz`` (measured samples/s), ``loss`` (fraction of samples lost, 0..1), ``battery``
        (fraction 0..1), ``state`` ("connecting" | "streaming" | "reconnecting" | "lost" |
        "ended"), ``rssi_dbm``, ``address``. A source with several sensors returns
        ``{"sensors": [stats, ...]}`` with ``name`` and ``side`` in each.
        """
        return {}


class Pacer:
    """Sleeps so that device time advances at ``speed`` × real time (0: as fast as possible)."""

    #: a step of device time longer than this is a gap (link lost, clock jump): played at once,
    #: not waited for (a clock jump of a day would otherwise stall a replay for a day)
    JUMP_S = 5.0

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._t0_wall: float | None = None
        self._t0_dev = 0.0
        self._last_dev: float | None = None

    async def wait_until(self, t_dev_s: float) -> None:
        if self.speed <= 0:
            await asyncio.sleep(0)
            return
        now = time.monotonic()
        jumped = self._last_dev is not None and not (
            0.0 <= t_dev_s - self._last_dev <= self.JUMP_S)
        self._last_dev = t_dev_s
        if self._t0_wall is None or jumped:
            self._t0_wall, self._t0_dev = now, t_dev_s
        delay = self._t0_wall + (t_dev_s - self._t0_dev) / self.speed - now
        await asyncio.sleep(max(0.0, delay))
