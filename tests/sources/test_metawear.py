"""MetaWear / MetaMotionR through real, unmodified bleak and the emulated BlueZ.

The emulator (``tests.emulators.metawear``) is written from the MetaWear SDK's registers and
test vectors; the numbers compared here are what it put on the link.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from dorsimeter.errors import DeviceError
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.sources.ble import BleSource
from dorsimeter.sources.registry import MetaWearKind
from dorsimeter.types import GRAVITY_M_S2
from dorsimeter.wire import metawear
from tests.emulators.metawear import MODULE_INFO, MetaWearPeripheral
from tests.emulators.peripheral import Impairments
from tests.emulators.rig import BleRig
from tests.sources import host

RECORD_S = 20  # long enough for the simulated athlete's first reps


pytestmark = pytest.mark.usefixtures("system_bus")  # tests/sources/conftest.py


def _tail_match(decoded: np.ndarray, sent: np.ndarray, atol: float = 1e-9) -> int:
    """Where the decoded rows start in what was sent (the first packets came before we
    listened): the first place all of them match."""
    for i0 in range(len(sent) - len(decoded) + 1):
        if np.allclose(decoded, sent[i0:i0 + len(decoded)], rtol=0, atol=atol):
            return i0
    raise AssertionError("decoded values not found in what was sent")


async def test_module_info_config_start_then_packed_acc_and_gyro_exactly_as_sent():
    async with BleRig() as rig:
        mw = await rig.add(MetaWearPeripheral(rig.link, "MetaWear", "F7:A1:2B:00:01:01",
                                              battery_pct=66))
        source = BleSource("F7:A1:2B:00:01:01", rate_hz=100)
        batches = await host.take(source, 300, timeout_s=20)
        assert mw.counters.writes[:2] == [b"\x03\x80", b"\x13\x80"]
        assert mw.counters.writes[2:10] == metawear.start_commands(100.0)
        assert mw.refused == [] and len(mw.sent.stream(0x03)) and len(mw.sent.stream(0x13))
        assert source.link.kind == "MetaWear" and source.link.battery_pct == 66
        assert source.link.loss is None  # no counter in the stream: loss is not known
        t, acc, gyr = host.decoded(batches)
        acc_g, gyr_dps = mw.sent.stream(0x03), mw.sent.stream(0x13)
        i0 = _tail_match(acc / GRAVITY_M_S2, acc_g)
        n = len(t)
        assert n >= 300 and {len(b) for b in batches} == {3}
        assert np.allclose(acc / GRAVITY_M_S2, acc_g[i0:i0 + n], rtol=0, atol=1e-12)
        j0 = _tail_match(np.degrees(gyr), gyr_dps)  # the gyro starts a packet or so later
        assert np.allclose(np.degrees(gyr), gyr_dps[j0:j0 + n], rtol=0, atol=1e-9)
        assert np.allclose(np.diff(t), 0.01)  # the sample clock at the configured ODR
        # int16 at ±16 g and ±2000 °/s: within half an LSB of the simulated shank
        assert np.allclose(np.linalg.norm(acc[:30], axis=1), GRAVITY_M_S2, atol=0.2)


async def test_a_metamotions_bmi270_is_set_up_with_its_own_registers():
    async with BleRig() as rig:
        mw = await rig.add(MetaWearPeripheral(rig.link, "MetaMotionS", "F7:A1:2B:00:01:02",
                                              chip="BMI270"))
        source = BleSource("MetaMotionS", rate_hz=100)
        batches = await host.take(source, 60, timeout_s=20)
        assert mw.counters.writes[2:10] == metawear.start_commands(100.0, metawear.BMI270)
        assert mw.refused == [] and len(mw.sent.stream(0x03)) and len(mw.sent.stream(0x13))
        _, acc, _ = host.decoded(batches)
        i0 = _tail_match(acc / GRAVITY_M_S2, mw.sent.stream(0x03))
        assert i0 >= 0 and len(acc) >= 60


async def test_a_board_with_another_accelerometer_is_refused_in_one_line():
    info = {**MODULE_INFO, 0x03: b"\x03\x80\x03\x00"}  # a BMA255 (MetaWear C, older boards)
    async with BleRig() as rig:
        mw = await rig.add(MetaWearPeripheral(rig.link, "MetaWear", "F7:A1:2B:00:01:09",
                                              module_info=info))
        source = BleSource("F7:A1:2B:00:01:09", rate_hz=100, give_up_s=1.0)
        with pytest.raises(DeviceError, match="not a BMI160 or a BMI270"):
            await host.take(source, 1, timeout_s=20)
        assert not mw.acc.streaming  # nothing was started


async def test_the_emulated_board_ignores_what_the_chip_would_not_take():
    async with BleRig() as rig:
        mw = await rig.add(MetaWearPeripheral(rig.link, "MetaWear", "F7:A1:2B:00:01:03"))
        for cmd in [bytes([0x13, 0x03, 0x25, 0x00])] + metawear.start_commands(100.0)[2:]:
            mw._on_command(cmd)  # a 12.5 Hz gyro: the BMI160's gyro has no such rate
        mw._on_command(bytes([0x03, 0x03, 0x28, 0x0C]))
        assert mw.refused == [bytes([0x13, 0x03, 0x25, 0x00])]
        assert mw.acc.streaming and not mw.gyro.streaming


async def test_a_rate_it_does_not_offer_streams_at_the_nearest():
    async with BleRig() as rig:
        mw = await rig.add(MetaWearPeripheral(rig.link, "MetaWear", "F7:A1:2B:00:01:04"))
        source = BleSource("F7:A1:2B:00:01:04", rate_hz=52)
        batches = await host.take(source, 30, timeout_s=20)
        assert mw.counters.writes[2] == bytes([0x03, 0x03, 0x27, 0x0C]) and source.rate_hz == 50
        t, _, _ = host.decoded(batches)
        assert np.allclose(np.diff(t), 0.02)
        assert source.rate_note is not None and source.rate_note.endswith(
            "streaming at 50 Hz (the rate it offers nearest the 52 Hz asked; it offers 25, 50, "
            "100, 200 Hz)")


def test_without_a_rate_it_streams_at_100_hz_and_another_snaps_within_25_percent():
    kind = MetaWearKind()
    assert kind.stream_rate(None) == 100.0
    assert [kind.stream_rate(r) for r in (104, 60, 120, 25, 180)] == [100, 50, 100, 25, 200]
    with pytest.raises(DeviceError, match="25, 50, 100, 200 Hz, not 150: ask .*@200"):
        kind.stream_rate(150)  # 200 is 33 % off


async def test_close_powers_the_board_down_so_it_stops_sampling():
    async with BleRig() as rig:
        mw = await rig.add(MetaWearPeripheral(rig.link, "MetaWear", "F7:A1:2B:00:01:0a"))
        source = BleSource("F7:A1:2B:00:01:0a")
        await host.take(source, 30, timeout_s=20)  # then closes it
        assert source.rate_note is None and source.rate_hz == 100.0
        assert mw.counters.writes[-4:] == metawear.stop_commands()
        assert not (mw.acc.streaming or mw.gyro.streaming)
        # its sampler sleeps: nothing more is produced (20 packet periods later)
        n = len(mw.sent.packets)
        await asyncio.sleep(20 * 3 / 100)
        assert len(mw.sent.packets) == n


async def test_loss_of_one_streams_notification_is_seen_and_the_pairs_realign():
    async with BleRig() as rig:
        mw = await rig.add(MetaWearPeripheral(rig.link, "MetaWear", "F7:A1:2B:00:01:05",
                                              Impairments(loss_fraction=0.03, seed=11)))
        source = BleSource("F7:A1:2B:00:01:05", rate_hz=100)
        batches = await host.collect_seconds(source, 6.0, timeout_s=40)
        _, acc, gyr = host.decoded(batches)
        lost = [p for p in mw.sent.packets if not p.delivered]
        assert lost and source.state.decoder is not None
        stats = source.state.decoder.stats
        # a packet of one stream lost is seen as the other's surplus (both at once: not seen)
        assert 1 <= stats.lost <= len(lost) and source.link.lost_samples == stats.unpaired
        # every delivered acc row is one the board sent, in order
        acc_g = mw.sent.stream(0x03)
        i0 = _tail_match(acc / GRAVITY_M_S2, acc_g)
        assert np.allclose(acc[:30] / GRAVITY_M_S2, acc_g[i0:i0 + 30], rtol=0, atol=1e-12)
        assert len(gyr) == len(acc)


async def test_a_drop_reconnects_restarts_streaming_and_moves_the_sample_clock_on():
    async with BleRig() as rig:
        mw = await rig.add(MetaWearPeripheral(rig.link, "MetaWear", "F7:A1:2B:00:01:06"))
        source = BleSource("MetaWear", rate_hz=100)
        batches = await host.collect_seconds(source, 3.0, timeout_s=30,
                                             on_batch=host.drop_link_at(mw, 1.0))
        assert source.link.reconnects == 1
        (gap,) = source.gaps
        assert gap.estimated and gap.lost_samples is not None and gap.lost_samples > 0
        t = np.concatenate([b.t_s for b in batches])
        assert np.count_nonzero(np.diff(t) > 0.0101) == 1  # one gap, a regular clock otherwise
        assert mw.counters.writes.count(b"\x03\x01\x01") == 2  # started again after the drop


async def test_scan_lists_it_with_its_battery(system_bus, tmp_path):
    async with BleRig() as rig:
        await rig.add(MetaWearPeripheral(rig.link, "MetaWear", "F7:A1:2B:00:01:07",
                                         battery_pct=58), rssi=-66)
        line = await host.scan_line(system_bus.env(), tmp_path / "home", "F7:A1:2B:00:01:07")
    assert "-66 dBm" in line and "58 %" in line and "MetaWear" in line


async def test_record_writes_what_it_sent_and_the_csv_reanalyses_to_the_same_numbers(
        system_bus, tmp_path, capsys):
    from dorsimeter.cli import main

    async with BleRig() as rig:
        mw = await rig.add(MetaWearPeripheral(rig.link, "MetaWear-rec", "F7:A1:2B:00:01:08"))
        out_csv = tmp_path / "raw.csv"
        out, err = await host.record(system_bus.env(), tmp_path / "home", "F7:A1:2B:00:01:08",
                                     "ble:MetaWear-rec", out_csv, RECORD_S, timeout_s=120)
    assert "streaming at" not in err  # 100 Hz is offered: no note
    n = RECORD_S * 100
    assert f"wrote {n} samples" in out
    rec = read_raw_csv(out_csv)
    assert len(rec.t_s) == n and np.allclose(np.diff(rec.t_s), 0.01, atol=2e-6)
    acc_g, gyr_dps = mw.sent.stream(0x03), mw.sent.stream(0x13)
    i0 = _tail_match(rec.acc_m_s2 / GRAVITY_M_S2, acc_g, atol=1e-6)  # the CSV's 6 digits
    j0 = _tail_match(np.degrees(rec.gyr_rad_s), gyr_dps, atol=1e-3)
    assert np.allclose(rec.acc_m_s2 / GRAVITY_M_S2, acc_g[i0:i0 + n], atol=1e-6)
    assert np.allclose(np.degrees(rec.gyr_rad_s), gyr_dps[j0:j0 + n], atol=1e-3)
    live = host.maxima(out)
    assert "left" in live and float(live["left"][0]) > 20.0
    capsys.readouterr()
    assert main(["analyze", str(out_csv)]) == 0
    assert host.maxima(capsys.readouterr().out) == live
