"""Movesense (GATT SensorData Protocol app) through real, unmodified bleak and the emulated BlueZ.

The emulator (``tests.emulators.movesense``) is written from the vendor's firmware sample; the
numbers compared here are what it put on the link.
"""

from __future__ import annotations

import numpy as np
import pytest

from dorsimeter.errors import DeviceError
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.sources.ble import BleSource
from dorsimeter.sources.registry import MovesenseKind
from dorsimeter.wire import movesense
from tests.emulators.movesense import MovesensePeripheral
from tests.emulators.peripheral import Impairments
from tests.emulators.rig import BleRig
from tests.sources import host

RECORD_S = 20  # long enough for the simulated athlete's first reps


pytestmark = pytest.mark.usefixtures("system_bus")  # tests/sources/conftest.py


async def test_hello_subscribe_then_imu6_decoded_to_exactly_the_values_sent():
    async with BleRig() as rig:
        ms = await rig.add(MovesensePeripheral(rig.link, "Movesense 174630000101",
                                               "0C:8C:DC:00:01:01", battery_pct=73))
        source = BleSource("Movesense 174630000101", rate_hz=52)
        batches = await host.take(source, 208, timeout_s=20)
        # the app's protocol: HELLO answered, our old subscription freed, IMU6 at 52 Hz
        assert ms.counters.writes[:3] == [b"\x00\x48", b"\x02\x63", b"\x01\x63/Meas/IMU6/52"]
        assert ms.replies[0] == b"\x01\x48Hello" and ms.refused == []
        assert source.link.kind == "Movesense" and source.link.battery_pct == 73
        t, acc, gyr = host.decoded(batches)
        t_sent, acc_sent, gyr_sent = ms.sent.arrays(52.0)
        i0 = int(np.argmin(np.abs(t_sent - t[0])))  # the first messages came before we listened
        n = len(t)
        assert n >= 208 and np.all(np.diff([len(b) for b in batches]) == 0)  # 4 a message
        assert np.allclose(t, t_sent[i0:i0 + n], atol=1e-9)
        assert np.array_equal(acc, acc_sent[i0:i0 + n])  # float32 on the wire: exact
        assert np.allclose(gyr, np.radians(gyr_sent[i0:i0 + n]), rtol=0, atol=1e-12)
        assert source.link.lost_frames == 0 and source.link.loss == 0.0


async def test_104_hz_split_messages_and_loss_counted_exactly_from_the_timestamps():
    async with BleRig() as rig:
        ms = await rig.add(MovesensePeripheral(rig.link, "Movesense 174630000102",
                                               "0C:8C:DC:00:01:02",
                                               Impairments(loss_fraction=0.1, seed=4)))
        source = BleSource("0C:8C:DC:00:01:02", rate_hz=104)
        batches = await host.collect_seconds(source, 4.0, timeout_s=30)
        t, acc, _ = host.decoded(batches)
        # every message is 198 bytes: one DATA of 158 and its DATA_PART2
        assert ms.counters.dropped > 0 and {len(b) for b in batches} == {8}
        t_sent, _, _ = ms.sent.arrays(104.0, delivered_only=False)
        stamps = np.array([m.timestamp_ms for m in ms.sent.messages])
        ok = np.array([m.delivered for m in ms.sent.messages])
        first = int(np.flatnonzero(np.isclose(stamps / 1000.0, t[0]))[0])
        last = int(np.flatnonzero(np.isclose(stamps / 1000.0, t[-8]))[0])
        lost_truth = int(np.count_nonzero(~ok[first:last + 1]))
        assert lost_truth > 0
        assert source.link.lost_frames == lost_truth
        assert source.link.lost_samples == 8 * lost_truth
        assert source.link.frames == len(batches) == int(np.count_nonzero(ok[first:last + 1]))
        assert source.link.loss == pytest.approx(lost_truth / (last + 1 - first))
        # a half-delivered message is skipped whole, never half-decoded
        assert source.link.bytes_skipped > 0
        t_ok, acc_ok, _ = ms.sent.arrays(104.0)
        k = int(np.argmin(np.abs(t_ok - t[0])))
        assert np.allclose(t, t_ok[k:k + len(t)], atol=1e-9)
        assert np.array_equal(acc, acc_ok[k:k + len(acc)])


async def test_a_drop_reconnects_subscribes_again_and_the_gap_is_in_device_time():
    async with BleRig() as rig:
        ms = await rig.add(MovesensePeripheral(rig.link, "Movesense 174630000103",
                                               "0C:8C:DC:00:01:03"))
        source = BleSource("Movesense 174630000103", rate_hz=52)
        mark = {}

        async def on_batch(batch):
            if not mark and len(source.gaps) == 0 and batch.t_s[-1] - t0[0] >= 1.0:
                mark["dropped"] = True
                await ms.drop_link(silent_s=0.5)

        t0 = []

        async def first(batch):
            if not t0:
                t0.append(float(batch.t_s[0]))
            await on_batch(batch)

        batches = await host.collect_seconds(source, 3.0, timeout_s=30, on_batch=first)
        assert source.link.reconnects == 1 and ms.subscribe_count == 2
        (gap,) = source.gaps
        assert not gap.estimated and gap.lost_samples is not None
        assert gap.lost_samples > 0.4 * 52  # silent ≥ 0.5 s
        t = np.concatenate([b.t_s for b in batches])
        jump = np.diff(t)
        assert np.count_nonzero(jump > 1.5 / 52) == 1
        # the IMU starts afresh at the new subscription, at any phase of the old sample grid
        assert gap.lost_samples == round(jump.max() * 52) - 1
        # the sensor's clock ran on: after the gap its timestamps, not ours
        t_sent, _, _ = ms.sent.arrays(52.0)
        assert np.allclose(t[-40:], t_sent[np.searchsorted(t_sent, t[-40]) + np.arange(40)])


async def test_without_a_rate_it_streams_at_104_hz_the_nearest_100_and_says_so():
    async with BleRig() as rig:
        ms = await rig.add(MovesensePeripheral(rig.link, "Movesense 174630000104",
                                               "0C:8C:DC:00:01:04"))
        source = BleSource("Movesense 174630000104")
        batches = await host.take(source, 16, timeout_s=20)
        assert ms.counters.writes[2] == b"\x01\x63/Meas/IMU6/104"
        assert source.rate_hz == 104.0
        assert source.rate_note == (
            "Movesense 'Movesense 174630000104' (BLE): streaming at 104 Hz (the rate it offers "
            "nearest 100 Hz; name another with @RATE; it offers 13, 26, 52, 104 Hz)")
        t, _, _ = host.decoded(batches)
        assert np.allclose(np.diff(t[:8]), 1 / 104)


async def test_a_rate_far_from_any_it_offers_is_refused_naming_the_nearest():
    async with BleRig() as rig:
        ms = await rig.add(MovesensePeripheral(rig.link, "Movesense 174630000108",
                                               "0C:8C:DC:00:01:08"))
        source = BleSource("Movesense 174630000108", rate_hz=200)  # 104 is 48 % off
        with pytest.raises(DeviceError, match=r"13, 26, 52, 104 Hz, not 200: .*@104"):
            await host.take(source, 1, timeout_s=20)
        assert ms.counters.writes == []  # refused before any set-up write


class WithoutTheApp(MovesensePeripheral):
    """A Movesense with another firmware app: the service may be there, nothing answers."""

    def _on_command(self, value: bytes) -> None:
        self.refused.append(value)


async def test_a_sensor_without_the_gatt_sensordata_app_is_named_in_one_line():
    async with BleRig() as rig:
        await rig.add(WithoutTheApp(rig.link, "Movesense 174630000105", "0C:8C:DC:00:01:05"))
        source = BleSource("Movesense 174630000105", rate_hz=52, give_up_s=1.0)
        with pytest.raises(DeviceError, match="gatt_sensordata_app"):
            await host.take(source, 1, timeout_s=20)


async def test_scan_lists_it_with_its_battery(system_bus, tmp_path):
    async with BleRig() as rig:
        await rig.add(MovesensePeripheral(rig.link, "Movesense 174630000106",
                                          "0C:8C:DC:00:01:06", battery_pct=64), rssi=-60)
        line = await host.scan_line(system_bus.env(), tmp_path / "home", "Movesense 174630000106")
    assert "0C:8C:DC:00:01:06" in line and "-60 dBm" in line and "64 %" in line
    assert "Movesense" in line.replace("Movesense 174630000106", "")  # its family


async def test_record_writes_what_it_sent_and_the_csv_reanalyses_to_the_same_numbers(
        system_bus, tmp_path, capsys):
    from dorsimeter.cli import main

    async with BleRig() as rig:
        ms = await rig.add(MovesensePeripheral(rig.link, "Movesense 174630000107",
                                               "0C:8C:DC:00:01:07"))
        out_csv = tmp_path / "raw.csv"
        out, err = await host.record(system_bus.env(), tmp_path / "home", "0C:8C:DC:00:01:07",
                                     "ble:Movesense 174630000107", out_csv, RECORD_S,
                                     timeout_s=120)
    assert "left: Movesense 'Movesense 174630000107' (BLE): streaming at 104 Hz" in err
    n = int(RECORD_S * 104)
    assert f"wrote {n} samples" in out
    rec = read_raw_csv(out_csv)
    t_sent, acc_sent, gyr_sent = ms.sent.arrays(104.0)
    i0 = int(np.argmin(np.abs(t_sent - rec.t_s[0])))
    assert len(rec.t_s) == n
    assert np.allclose(rec.t_s, t_sent[i0:i0 + n], atol=1e-6)
    assert np.allclose(rec.acc_m_s2, acc_sent[i0:i0 + n], atol=1e-5)
    assert np.allclose(rec.gyr_rad_s, np.radians(gyr_sent[i0:i0 + n]), atol=1e-6)
    # the file re-analyses to the numbers the live session printed
    live = host.maxima(out)
    assert "left" in live and float(live["left"][0]) > 20.0
    capsys.readouterr()
    assert main(["analyze", str(out_csv)]) == 0
    assert host.maxima(capsys.readouterr().out) == live



def test_the_rate_snaps_to_the_nearest_offered_within_25_percent():
    kind = MovesenseKind()
    assert kind.rates_hz == movesense.BLE_RATES_HZ and kind.stream_rate(None) == 104.0
    assert [kind.stream_rate(r) for r in (104, 100, 50, 120, 13, 30)] == [104, 104, 52, 104, 13,
                                                                          26]
    with pytest.raises(DeviceError, match="not 20: ask for one of those, e.g. .*@26"):
        kind.stream_rate(20)  # 26 is 30 % off
    with pytest.raises(DeviceError, match="not 100: ask"):
        kind.rate_commands(100.0)  # only an offered rate reaches the set-up
