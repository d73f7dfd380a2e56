"""Sensor-node firmware (MicroPython, ESP32-S3) and what runs it on a host.

On the device: ``main.py`` wires the drivers (``drivers/``) to ``node.SensorNode`` and streams
over BLE (``ble.py``) and USB serial (``usb.py``). On a host: ``python -m firmware_bridge --pty``
runs the same ``node`` and ``wire`` modules with simulated drivers (``sim_drivers.py``, fed by
``dorsimeter.sim``) and writes real frames into a pseudo-terminal (``host.py``).
"""
