"""The firmware-on-MicroPython figures for a report: ``python -m tests.firmware_bridge.figures``.

Runs the scenarios of ``test_on_micropython.py`` (USB streams from three IMU models, split USB
commands, BLE pairing with MTU changes and reconnects, strangers outside the pairing window, a
bonded host after a reboot) and counts what the host's decoder saw and what was refused.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from dorsimeter.wire import frames as F
from tests.firmware_bridge import test_on_micropython as T


def _tally(c: Counter, r: T.Run) -> None:
    for i, chunks in enumerate([[r.usb], *r.ble.values()]):
        _, dec = T.decode(chunks)
        c["frames decoded"] += dec.stats.frames
        c["samples decoded"] += dec.stats.samples
        c["CRC errors"] += dec.stats.crc_errors
        c["USB frames lost"] += dec.stats.lost if i == 0 else 0
        c["commands answered"] += sum(m.mtype == F.T_RESPONSE for m in dec.messages)
    c["writes refused (Insufficient Encryption)"] += len(r.lines("att_error"))
    c["keys refused outside the window"] += sum(x[2] == "refused" for x in r.lines("set_secret"))
    c["strangers disconnected"] += len(r.lines("kick"))
    c["stranger commands received, not obeyed"] += sum(x[0] in "MS" for x in r.lines("write"))
    c["oversized notifications"] += len(r.lines("oversize"))


def _ble_events() -> list:
    ev, cmd = T.ev, T.cmd_hex
    events = T._pair_in_window(T.HOST_A) + [
        ev(800, "write", central="A", hex=cmd(2, F.CMD_BATTERY)),
        ev(900, "write", central="A", hex=cmd(3, F.CMD_SET_ENCODING, b"\xff")),
        ev(1500, "mtu", central="A", mtu=247),
        ev(2500, "write", central="A", hex=cmd(4, F.CMD_SET_RATE, (200).to_bytes(2, "little")))]
    for k in range(5):
        t = 3000 + 1000 * k
        events += [ev(t + 7 * k, "disconnect", central="A"),
                   ev(t + 100, "connect", **T.HOST_A, mtu=23 if k % 2 == 0 else 0),
                   ev(t + 600 + 13 * k, "mtu", central="A", mtu=247)]
    return events + [ev(9000, "write", central="A", hex=cmd(5, F.CMD_STATUS)), ev(9500, "end")]


def main() -> None:
    c: Counter = Counter()
    ev = T.ev
    with tempfile.TemporaryDirectory() as d:
        def work(name: str) -> Path:
            p = Path(d, name)
            p.mkdir()
            return p

        for k, imus in enumerate([T.LSM6DSO, T.LSM6DS3TRC, T.ICM42688]):
            _tally(c, T.run_firmware(work(f"usb{k}"), [ev(10_000, "end")], imus=imus))
        usb_in = b"".join([F.encode_command(k, F.CMD_BATTERY) for k in range(1, 7)]
                          + [F.encode_set_rate(7, 50), F.encode_command(8, F.CMD_STATUS)])
        _tally(c, T.run_firmware(work("split"), [ev(3000, "end")], usb_in=usb_in))
        _tally(c, T.run_firmware(work("ble"), _ble_events()))
        flash = work("attack")
        t_out = T.WINDOW_MS + 5000
        events = T._pair_in_window(T.HOST_A) + [ev(2000, "disconnect", central="A")]
        events += T._attack(T.STRANGER, t_out) + T._attack(T.SPOOF, t_out + 6000)
        _tally(c, T.run_firmware(flash, events + [ev(t_out + 14_000, "end")]))
        # the node reboots; the bonded host comes back with a new private address
        _tally(c, T.run_firmware(flash, [
            ev(t_out, "connect", **dict(T.HOST_A, rpa="01c1c2c3c4c546"), mtu=247),
            ev(t_out + 200, "write", central="A",
               hex=T.cmd_hex(1, F.CMD_SET_RATE, (50).to_bytes(2, "little"))),
            ev(t_out + 1000, "end")]))
    for k, v in c.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
