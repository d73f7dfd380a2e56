"""Simulated drivers for running the node on a host (CPython only): ``dorsimeter.sim`` plays the
shank, a virtual clock plays device time. Same interfaces as ``drivers/``."""

from __future__ import annotations

import numpy as np

from dorsimeter.sim import ShankSim
from dorsimeter.types import ImuBatch


class SimClock:
    """Device time: ``now_s`` of simulated time, reported in µs from ``offset_us`` (wrapping)."""

    def __init__(self, offset_us: int = 0) -> None:
        self.now_s = 0.0
        self.offset_us = int(offset_us)

    def us_at(self, t_s: float) -> int:
        return (int(round(t_s * 1e6)) + self.offset_us) & 0xFFFFFFFF

    def ticks_us(self) -> int:
        return self.us_at(self.now_s)


class SimImu:
    """A 6-axis IMU (or, with ``has_quat``, a BNO08x-like part with on-chip orientation) reading
    ShankSim: every call to ``read`` returns the samples due up to the clock's ``now_s``."""

    kind = 0

    def __init__(self, sim: ShankSim, clock: SimClock, has_quat: bool = False) -> None:
        self.sim, self.clock, self.has_quat = sim, clock, has_quat
        self.last_batch: ImuBatch | None = None
        self.truth: list = []  # (t_us, tibia_angle_deg) of every sample, for tests
        self.keep_truth = False

    @property
    def rate_hz(self) -> float:
        return self.sim.rate_hz

    def set_rate(self, rate_hz: int) -> int:
        """Change rate at the current time: the next sample keeps device time continuous."""
        t = self.sim.t_s
        self.sim.rate_hz = float(rate_hz)
        self.sim._n = int(np.ceil(t * rate_hz - 1e-9))
        return int(rate_hz)

    def read(self) -> list:
        due = int(np.floor(self.clock.now_s * self.sim.rate_hz + 1e-9)) + 1 - self.sim._n
        if due <= 0:
            return []
        b = self.sim.generate(due)
        self.last_batch = b
        q = b.truth["sensor_quat"] if self.has_quat else None  # pyright: ignore[reportOptionalSubscript]
        t_us = [self.clock.us_at(t) for t in b.t_s]
        if self.keep_truth:
            self.truth.append((b.t_s.copy(), b.truth["tibia_angle_deg"].copy()))  # pyright: ignore[reportOptionalSubscript]
        acc, gyr = b.acc_m_s2.tolist(), b.gyr_rad_s.tolist()
        return [(t_us[i], acc[i], gyr[i], None if q is None else q[i].tolist())
                for i in range(len(b))]


class SimHeel:
    """The heel switch of the simulator (``ShankSim(heel_switch=True)``): the latest load."""

    def __init__(self, imu: SimImu) -> None:
        self.imu = imu

    def load(self) -> float:
        b = self.imu.last_batch
        if b is None or b.heel_contact is None or not len(b):
            return 1.0
        return float(b.heel_contact[-1])


class SimBattery:
    """A cell discharging slowly from ``start_pct``."""

    def __init__(self, clock: SimClock, start_pct: float = 87.0) -> None:
        self.clock, self.start_pct = clock, start_pct

    def read(self) -> tuple[int, int]:
        pct = max(0.0, self.start_pct - self.clock.now_s / 360.0)  # 10 %/hour
        return int(pct), int(3300 + 9 * pct)


class SimLed:
    def __init__(self) -> None:
        self.blinks: list[int] = []

    def blink(self, seconds: int) -> None:
        self.blinks.append(int(seconds))
