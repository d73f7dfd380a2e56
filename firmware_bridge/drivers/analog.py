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
    """Cell voltage through a 100 k / 100 k divider (halves it) on an ADC pin, with a 100 nF
    capacitor from the pin to ground (hardware_docs/wiring.md).

    The divider's 50 kΩ source is too weak for the ESP32-S3's sampling capacitor on its own: the
    100 nF holds the pin while the ADC samples (and filters, τ = 5 ms). The ADC's own noise (tens
    of mV) is averaged over ``samples`` reads (16: a quarter of the noise). Both as ESP-IDF's ADC
    guide advises ("Minimizing Noise": a 0.1 µF capacitor at the pad, multisampling).
    """

    def __init__(self, adc, ratio=2.0, samples=16):
        self.adc, self.ratio, self.samples = adc, ratio, samples

    def read(self):
        total = 0
        for _ in range(self.samples):
            total += self.adc.read_uv()
        mv = int(total / self.samples / 1000 * self.ratio + 0.5)
        return lipo_percent(mv), mv
