"""Device time in µs as a wrapping uint32, from MicroPython's ``time.ticks_us`` (which wraps at
``TICKS_MAX``, 2**30 on the ESP32): the differences are accumulated into a 32-bit counter."""

import time


class TicksClock:
    def __init__(self):
        self._last = time.ticks_us()
        self._us = 0

    def ticks_us(self):
        now = time.ticks_us()
        self._us = (self._us + time.ticks_diff(now, self._last)) & 0xFFFFFFFF
        self._last = now
        return self._us
