"""Heel force-sensitive resistor and battery voltage on the ESP32-S3's ADC (MicroPython)."""

# LiPo open-circuit voltage (mV) -> state of charge (%), a coarse curve for a single cell
LIPO_CURVE = ((3300, 0), (3600, 10), (3700, 30), (3800, 55), (3900, 70), (4000, 82),
              (4100, 93), (4200, 100))


def lipo_percent(mv):
    if mv <= LIPO_CURVE[0][0]:
        return 0
    for i in range(1, len(LIPO_CURVE)):  # no zip(strict=) on MicroPython
        (v0, p0), (v1, p1) = LIPO_CURVE[i - 1], LIPO_CURVE[i]
        if mv <= v1:
            return int(p0 + (p1 - p0) * (mv - v0) / (v1 - v0))
    return 100


class FsrHeel:
    """FSR (e.g. Interlink FSR 402) from 3V3 to the ADC pin, 10 kΩ from the pin to ground.

    ``load()`` is 0 (heel off) .. 1 (full standing load), scaled between ``empty_mv`` and
    ``full_mv`` measured when fitting the insole.
    """

    def __init__(self, adc, empty_mv=150, full_mv=1800):
        self.adc, self.empty_mv, self.full_mv = adc, empty_mv, full_mv

    def load(self):
        mv = self.adc.read_uv() / 1000
        x = (mv - self.empty_mv) / (self.full_mv - self.empty_mv)
        return 0.0 if x < 0 else (1.0 if x > 1 else x)


class Battery:
    """Cell voltage through a 100 k / 100 k divider (halves it) on an ADC pin."""

    def __init__(self, adc, ratio=2.0):
        self.adc, self.ratio = adc, ratio

    def read(self):
        mv = int(self.adc.read_uv() / 1000 * self.ratio)
        return lipo_percent(mv), mv
