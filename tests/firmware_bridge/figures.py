"""The firmware-on-MicroPython figures for a report: ``python -m tests.firmware_bridge.figures``.

Runs the scenarios of ``test_on_micropython.py`` (USB streams from three IMU models, split USB
commands, BLE pairing with MTU changes and reconnects, strangers outside the pairing window, a
bonded host after a reboot) and counts what the host's decoder saw and what was refused; then
the parts' scenarios: main-loop stalls against the three FIFO-read parts, a
BNO085 sending error headers, an LSM6DSO32, battery reads under ADC noise.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

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
        _parts(c, work)
    for k, v in c.items():
        print(f"{k}: {v}")


def _gaps(r: T.Run, period_s: float) -> int:
    batches, _ = T.decode([r.usb])
    t = np.concatenate([b.t_s for b in batches])
    return int(np.count_nonzero(np.diff(t) > 1.5 * period_s))


def _parts(c: Counter, work) -> None:
    ev = T.ev
    stalls = [ev(t, "stall", ms=ms) for t, ms in T.STALLS_MS] + [ev(9000, "end")]
    for name, imus, period_s in (("LSM6DSO", T.LSM6DSO, 1 / 104), ("ICM-42688", T.ICM42688, 0.01),
                                 ("LSM6DS3TR-C", T.LSM6DS3TRC, 1 / 104)):
        r = T.run_firmware(work(f"stall {name}"), stalls, imus=imus)
        c[f"gaps in the stream after 3 loop stalls (0.15/0.4/0.9 s), {name}"] = _gaps(r, period_s)
    r = T.run_firmware(work("bno errors"), [ev(5000, "end")], imus=T._bno(error_every=7))
    batches, _ = T.decode([r.usb])
    c["BNO085 error headers skipped"] = sum(x == ["error_header"] for x in r.lines("bno"))
    c["BNO085 samples decoded in 5 s (error headers every 7th read)"] = sum(len(b) for b in batches)
    c["BNO085 gaps"] = _gaps(r, 0.01)
    r = T.run_firmware(work("dso32"), [ev(5000, "end")],
                       imus={"106": dict(T.LSM6DSO["106"], dso32=True)})
    batches, _ = T.decode([r.usb])
    acc = np.concatenate([b.acc_m_s2 for b in batches])
    worst_mm_s2 = float(np.abs(acc - T.ACC).max()) * 1e3
    c["LSM6DSO32 worst acceleration error (mm/s²)"] = round(worst_mm_s2, 2)
    usb_in = b"".join(F.encode_command(k, F.CMD_BATTERY) for k in range(1, 21))
    r = T.run_firmware(work("battery"), [ev(3000, "end")], usb_in=usb_in, adc_noise_uv=40_000)
    _, dec = T.decode([r.usb])
    mv = [int.from_bytes(m.data[1:3], "little") for m in T.responses(dec).values()]
    c["battery worst error over 20 reads, ±40 mV ADC noise (mV)"] = max(abs(v - 3800) for v in mv)


if __name__ == "__main__":
    main()
