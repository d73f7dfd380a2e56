"""USB serial (CDC) link on MicroPython: frames to stdout, commands from stdin.

A USB host has physical access to the node, so commands over USB are trusted. Ctrl-C is disabled
(``kbd_intr(-1)``) so that a 0x03 byte in a command frame does not stop the firmware.
"""

import select
import sys

import micropython


class UsbLink:
    max_payload = 256
    trusted = True

    def __init__(self):
        micropython.kbd_intr(-1)
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._pending = b""

    def send(self, frame):
        self._out.write(frame)

    def poll(self, node):
        data = b""
        while self._poll.poll(0):
            data += sys.stdin.buffer.read(1)
            if len(data) >= 64:
                break
        if data:
            node.handle_command(self._pending + data, self, trusted=True)
