"""Firmware entry point on the ESP32-S3 (Seeed XIAO ESP32S3 pin-out, see hardware_docs/wiring.md).

Copy the ``firmware_bridge`` folder and a root ``main.py`` containing ``import
firmware_bridge.main`` to the board (``hardware_docs/flashing.md``).
"""

import time

import machine
from machine import ADC, I2C, Pin

from firmware_bridge.drivers.analog import Battery, FsrHeel
from firmware_bridge.drivers.clock import TicksClock
from firmware_bridge.node import SensorNode

PIN_SDA, PIN_SCL = 5, 6  # XIAO D4, D5
PIN_HEEL, PIN_BATTERY = 1, 3  # XIAO A0, A2
PIN_LED = 21  # XIAO user LED, active low
PIN_BUTTON = 2  # XIAO D1, to ground: long press opens the BLE pairing window


class Led:
    def __init__(self, pin):
        self.pin = Pin(pin, Pin.OUT, value=1)
        self.until = 0

    def blink(self, seconds):
        self.until = time.ticks_add(time.ticks_ms(), int(seconds) * 1000)

    def update(self):
        on = time.ticks_diff(self.until, time.ticks_ms()) > 0 and (time.ticks_ms() // 250) % 2
        self.pin.value(0 if on else 1)


def make_imu(i2c, clock):
    found = i2c.scan()
    if 0x4A in found or 0x4B in found:
        from firmware_bridge.drivers.bno08x import Bno08x

        return Bno08x(i2c, clock, 0x4A if 0x4A in found else 0x4B)
    if 0x68 in found or 0x69 in found:
        from firmware_bridge.drivers.icm42688 import Icm42688

        return Icm42688(i2c, clock, 0x68 if 0x68 in found else 0x69)
    from firmware_bridge.drivers.lsm6dso import Lsm6dso

    return Lsm6dso(i2c, clock, 0x6A if 0x6A in found else 0x6B)


def run():
    clock = TicksClock()
    i2c = I2C(0, sda=Pin(PIN_SDA), scl=Pin(PIN_SCL), freq=400_000)
    imu = make_imu(i2c, clock)
    heel_adc = ADC(Pin(PIN_HEEL), atten=ADC.ATTN_11DB)
    bat_adc = ADC(Pin(PIN_BATTERY), atten=ADC.ATTN_11DB)
    led = Led(PIN_LED)
    node = SensorNode(imu, FsrHeel(heel_adc), Battery(bat_adc), clock, led)
    from firmware_bridge.ble import BleLink
    from firmware_bridge.usb import UsbLink

    mac = machine.unique_id()
    ble = BleLink(f"dorsi-{mac[-2]:02x}{mac[-1]:02x}")
    usb = UsbLink()
    node.attach(ble)
    node.attach(usb)
    button = Pin(PIN_BUTTON, Pin.IN, Pin.PULL_UP)
    pressed_ms = None
    last_battery = time.ticks_ms()
    while True:
        node.step()
        ble.poll(node)
        usb.poll(node)
        led.update()
        if button.value() == 0:
            pressed_ms = pressed_ms or time.ticks_ms()
            if time.ticks_diff(time.ticks_ms(), pressed_ms) > 3000:
                ble.open_pairing_window()
                led.blink(3)
        else:
            pressed_ms = None
        if time.ticks_diff(time.ticks_ms(), last_battery) > 30_000:
            last_battery = time.ticks_ms()
            ble.set_battery(node.battery_reading()[0])
        time.sleep_ms(1)


# hold the button while resetting to get the REPL instead of the firmware
if Pin(PIN_BUTTON, Pin.IN, Pin.PULL_UP).value() == 0:
    print("button held at boot: firmware not started")
else:
    run()
