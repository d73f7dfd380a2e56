"""Device time in µs as a wrapping uint32, from MicroPython's ``time.ticks_us`` (which wraps at
``TICKS_MAX``, 2**30 on the ESP32): the differences are accumulated into a 32-bit counter."""

import time  # MicroPython's: its ticks_* have no CPython stubs (the pyright ignores below)


class TicksClock:
    def __init__(self):
        self._last = time.ticks_us()  # pyright: ignore[reportAttributeAccessIssue]
        self._us = 0

    def ticks_us(self):
        now = time.ticks_us()  # pyright: ignore[reportAttributeAccessIssue]
        self._us = (self._us + time.ticks_diff(now, self._last)) & 0xFFFFFFFF  # pyright: ignore[reportAttributeAccessIssue]
        self._last = now
        return self._us


class FifoTimes:
    """Device times for samples read from a FIFO, which holds no time of its own.

    Samples are one output period apart (``dt_us``, the node's DT_US); the newest of a read is
    placed where that spacing predicts, kept within its one possible period: produced at most
    ``dt_us`` before the read and not after it. So the spacing is exact while the part's clock
    and the device's agree, and the two never drift apart by more than one period (a part's
    oscillator is off by a few per cent; after an overflow the lost samples show as a gap)."""

    def __init__(self, odr_hz):
        self.dt_us = int(1000000 / odr_hz + 0.5)
        self.last_us = None  # device time given to the newest sample so far

    def stamp(self, clock, pairs, behind=0):
        """``(acc, gyr)`` pairs, oldest first -> driver samples ``(t_us, acc, gyr, None)``.
        ``behind``: samples left in the FIFO after these (a read that took only part of it)."""
        n = len(pairs)
        if not n:
            return []
        now = clock.ticks_us()
        dt = self.dt_us
        lo = behind * dt  # the newest of these was produced lo .. lo + dt before now
        lag = lo
        if self.last_us is not None:
            since = (now - self.last_us) & 0xFFFFFFFF
            lag = since - n * dt if since < 0x80000000 else lo
            lag = lo if lag < lo else (lo + dt - 1 if lag >= lo + dt else lag)
        newest = (now - lag) & 0xFFFFFFFF
        self.last_us = newest
        return [((newest - (n - 1 - i) * dt) & 0xFFFFFFFF, acc, gyr, None)
                for i, (acc, gyr) in enumerate(pairs)]
