"""The world around the firmware when it runs under the MicroPython unix port: virtual time, the
scenario's events, and the log the CPython test reads back (MicroPython only; no CPython here).

Time is virtual: ``time.sleep_ms`` advances it and fires the scenario events due, so a run is
the same on a loaded machine. ``ticks_*`` wrap at 2**30 as on the ESP32 (``TICKS_MAX``).
"""

import json
import sys

TICKS_PERIOD = 1 << 30
TICKS_HALF = TICKS_PERIOD // 2


class Done(Exception):
    """The scenario's ``end`` event: the runner stops the firmware's main loop here."""


class World:
    def __init__(self, scenario):
        self.scenario = scenario
        self.now_us = int(scenario.get("start_us", 0))
        self.events = sorted(scenario.get("events", []), key=lambda e: e[0])
        self.pins = {}
        self.pins_in = {}  # pin -> level driven from outside (the button)
        self.adc_uv = {int(k): v for k, v in scenario.get("adc_uv", {}).items()}
        self.adc_noise_uv = int(scenario.get("adc_noise_uv", 0))
        self._lcg = 12345
        self.i2c = {}  # address -> register model
        self.ble = None  # the bluetooth.BLE() instance, once the firmware made it
        self.log = open(scenario["log"], "w")
        self.sleeps = 0

    def write(self, *fields):
        self.log.write(" ".join(str(f) for f in fields) + "\n")

    def adc_noise(self):
        if not self.adc_noise_uv:
            return 0
        self._lcg = (self._lcg * 1103515245 + 12345) & 0x7FFFFFFF
        return (self._lcg % (2 * self.adc_noise_uv + 1)) - self.adc_noise_uv

    def advance_us(self, us):
        self.now_us += int(us)
        while self.events and self.events[0][0] * 1000 <= self.now_us:
            t_ms, action, args = self.events.pop(0)
            self.write("event", t_ms, action)
            if action == "end":
                self.write("end", self.now_us, self.sleeps)
                self.log.close()
                raise Done()
            if action == "button":
                self.pins_in[args["pin"]] = args["level"]
            elif action == "stall":  # the main loop is late: time passes, the loop does not run
                self.now_us += int(args["ms"]) * 1000
            else:
                self.ble.world_event(action, args)
        if self.ble is not None:
            self.ble.world_tick()


W = None


def make(path):
    global W
    with open(path) as f:
        W = World(json.load(f))
    return W


class VirtualTime:
    """Stand-in for MicroPython's ``time`` (the ESP32 port's ticks and sleeps)."""

    def ticks_us(self):
        return W.now_us % TICKS_PERIOD

    def ticks_ms(self):
        return (W.now_us // 1000) % TICKS_PERIOD

    def ticks_add(self, t, delta):
        return (t + delta) % TICKS_PERIOD

    def ticks_diff(self, a, b):
        return ((a - b + TICKS_HALF) % TICKS_PERIOD) - TICKS_HALF

    def sleep_ms(self, ms):
        W.sleeps += 1
        W.advance_us(ms * 1000)

    def sleep_us(self, us):
        W.sleeps += 1
        W.advance_us(us)

    def time(self):
        return W.now_us // 1000000


def log_exc(e):
    sys.print_exception(e, W.log)
