"""The interface every source offers."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

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


#: the window the received rate is measured over (arrival times), and the shortest span shown
RATE_WINDOW_S = 2.0
RATE_MIN_SPAN_S = 0.5


@dataclass
class LinkStats:
    """The link figures every source fills, one typed shape for the UI and the tests. A field
    a source cannot tell stays None (the UI then shows what it measured itself)."""

    state: str | None = None  # connecting | streaming | reconnecting | lost | ended
    kind: str = ""            # the device family (the registry's name)
    address: str = ""         # BLE address or serial port
    rate_hz: float | None = None  # samples per second received over the last ~2 s
    received: int = 0         # samples delivered
    notifications: int = 0    # BLE notifications handled (once each)
    frames: int = 0           # valid frames decoded (families with sequence numbers)
    lost_frames: int = 0      # frames missing by sequence number (exact)
    lost_samples: int = 0     # samples in those frames (exact when frames are full)
    duplicates: int = 0       # frames or notifications dropped as duplicates
    crc_errors: int = 0       # frames (or packets) whose CRC or checksum failed
    bytes_skipped: int = 0    # bytes that belonged to no valid packet
    restarts: int = 0         # device restarts seen in the stream
    gaps: int = 0             # outages (``Gap``) so far
    reconnects: int = 0
    battery_pct: int | None = None
    rssi_dbm: int | None = None  # when it was found
    has_sequence: bool = False   # loss is counted (the family numbers its frames)
    _arrivals: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    @property
    def loss(self) -> float | None:
        """Fraction of frames lost on the link, None for a family without sequence numbers."""
        if not self.has_sequence:
            return None
        total = self.frames + self.lost_frames
        return self.lost_frames / total if total else 0.0

    def arrived(self, t_arrival_s: float, n: int) -> None:
        """``n`` samples arrived at ``t_arrival_s`` (monotonic, taken when the bytes came in,
        not when we got round to them): counts them and updates ``rate_hz``."""
        self.received += n
        a = self._arrivals
        a.append((t_arrival_s, n))
        while len(a) > 2 and t_arrival_s - a[0][0] > RATE_WINDOW_S:
            a.popleft()
        span = t_arrival_s - a[0][0]
        if span > RATE_MIN_SPAN_S:
            self.rate_hz = (sum(k for _, k in a) - a[0][1]) / span


class Source:
    """An async iterator of ImuBatch with a nominal ``rate_hz``, a ``name`` for the UI and its
    link figures in ``link``."""

    rate_hz: float = 100.0
    name: str = "source"
    rate_note: str | None = None  # one line: it streams at a rate other than the one asked
    knows_side: bool = False  # True when batches carry their side (replay of a file with sides)
    link: LinkStats  # set by each source (sim and replay: nothing to tell, all None)

    def __init__(self) -> None:
        self.link = LinkStats()

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
