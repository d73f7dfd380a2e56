"""Stand-in for MicroPython's ``machine`` (ESP32 port): Pin, ADC, I2C on the world's models."""

import world


class Pin:
    IN, OUT, PULL_UP = 1, 3, 1

    def __init__(self, pin_id, mode=-1, pull=None, value=None):
        self.id = pin_id
        if value is not None:
            world.W.pins[pin_id] = value

    def value(self, v=None):
        if v is None:
            return world.W.pins_in.get(self.id, 1)  # pulled up unless the scenario drives it
        world.W.pins[self.id] = v
        return None


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin, atten=None):
        self.pin = pin.id

    def read_uv(self):
        """The pin's voltage plus the scenario's ADC noise (uniform ± ``adc_noise_uv``, from a
        fixed-seed generator: the same run every time)."""
        return world.W.adc_uv.get(self.pin, 0) + world.W.adc_noise()


class I2C:
    def __init__(self, bus_id, sda=None, scl=None, freq=400000):
        self.devices = world.W.i2c

    def scan(self):
        return sorted(self.devices)

    def _dev(self, addr):
        if addr not in self.devices:
            raise OSError(19)  # ENODEV, as the ESP32 port raises on a NACK
        return self.devices[addr]

    def readfrom_mem(self, addr, reg, n):
        return self._dev(addr).read(reg, n)

    def writeto_mem(self, addr, reg, buf):
        self._dev(addr).write(reg, buf)

    def readfrom(self, addr, n):
        return self._dev(addr).readfrom(n)

    def writeto(self, addr, buf):
        self._dev(addr).writeto(buf)
        return len(buf)


def unique_id():
    return b"\x34\x85\x18\x01\xab\xcd"
