"""USB serial (CDC) link on MicroPython: frames to stdout, commands from stdin.

A USB host has physical access to the node, so commands over USB are trusted. Ctrl-C is disabled
(``kbd_intr(-1)``) so that a 0x03 byte in a command frame does not stop the firmware (to get a
REPL, hold the button through a reset: ``main.py``). One ``FrameReader`` lives as long as the
link, so a command split across two reads is completed by the second.
"""

import select
import sys

import micropython  # pyright: ignore[reportMissingImports]  (MicroPython only)

import firmware_bridge.wire as wire

READ_CHUNK = 64  # bytes read per poll at most, so a burst of input cannot stall sampling


class UsbLink:
    max_payload = 256
    trusted = True

    def __init__(self):
        micropython.kbd_intr(-1)
        self._out = sys.stdout.buffer
        self._in = sys.stdin.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self.reader = wire.FrameReader()

    def send(self, frame):
        self._out.write(frame)

    def poll(self, node):
        data = b""
        while len(data) < READ_CHUNK and self._poll.poll(0):
            b = self._in.read(1)
            if not b:  # end of input (the host closed the port): nothing more to read now
                break
            data += b
        if data:
            node.handle_command(data, self, trusted=True, reader=self.reader)
