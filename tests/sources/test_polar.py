"""Polar Verity Sense through real, unmodified bleak (BlueZ backend) against the emulated
Verity (``tests.emulators.polar``): PMD set-up and its answers, delta frames decoded to what was
sent, loss and reconnects from the device timestamps, ``scan`` and ``record``."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from bleak import BleakClient

from dorsimeter.errors import DeviceError
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.sources.ble import BleSource, find_sensor, scan_sensors
from dorsimeter.sources.registry import PolarKind
from dorsimeter.store.security import AllowList
from dorsimeter.types import GRAVITY_M_S2
from dorsimeter.wire import polar
from tests.emulators.peripheral import Impairments
from tests.emulators.polar import ACC, GYRO, PolarPeripheral
from tests.emulators.rig import BleRig
from tests.sources import host

pytestmark = pytest.mark.usefixtures("system_bus")  # tests/sources/conftest.py


async def test_sdk_mode_acc_and_gyro_at_52_hz_decoded_to_the_values_sent():
    async with BleRig() as rig:
        vs = await rig.add(PolarPeripheral(rig.link, battery_pct=66))
        source = BleSource("Polar Sense 1A2B3C4D", rate_hz=52)
        batches = await host.take(source, 150, timeout_s=40)
        assert vs.counters.writes[:3] == polar.imu_start_commands(52)
        assert [r[:4] for r in vs.responses[:3]] == [bytes([0xF0, 2, t, 0]) for t in (9, 2, 5)]
        assert source.link.kind == "Polar Verity Sense" and source.link.battery_pct == 66
        t_acc, acc_g = vs.sent.arrays(ACC)
        t_gyr, gyr_dps = vs.sent.arrays(GYRO)
        t = np.concatenate([b.t_s for b in batches])
        n = len(t)
        assert n >= 150 and np.allclose(np.diff(t), 1 / 52, atol=1e-6)
        # both streams sampled the same instants: the pairs are those the two share, on the
        # device clock from the first sample that arrived (the gyro starts a little later)
        common, ia, ig = np.intersect1d(t_acc, t_gyr, return_indices=True)
        assert np.allclose(t, (common[:n] - min(t_acc[0], t_gyr[0])) / 1e9, atol=1e-6)
        assert np.allclose(np.concatenate([b.acc_m_s2 for b in batches]),
                           acc_g[ia][:n] * GRAVITY_M_S2, rtol=0, atol=1e-9)
        assert np.allclose(np.degrees(np.concatenate([b.gyr_rad_s for b in batches])),
                           gyr_dps[ig][:n], rtol=0, atol=1e-9)
        # standing still first: 1 g (within a ±8 g int16 LSB of what the simulator gave)
        assert np.allclose(np.linalg.norm(acc_g[:20], axis=1), 1.0, atol=0.02)


async def test_the_emulator_answers_wrong_commands_with_the_specifications_error_codes():
    async with BleRig() as rig:
        await rig.add(PolarPeripheral(rig.link))
        device, _ = await find_sensor("Polar Sense 1A2B3C4D", 10)
        answers: asyncio.Queue[bytes] = asyncio.Queue()
        async with BleakClient(device) as client:
            await client.start_notify(polar.CONTROL_POINT_UUID,
                                      lambda _c, d: answers.put_nowait(bytes(d)))
            assert polar.features(bytes(await client.read_gatt_char(
                polar.CONTROL_POINT_UUID))) >= {polar.ACC, polar.GYRO, polar.SDK_MODE}

            async def ask(hexcmd: str) -> bytes:
                await client.write_gatt_char(polar.CONTROL_POINT_UUID, bytes.fromhex(hexcmd),
                                             response=True)
                return await asyncio.wait_for(answers.get(), 5)

            gyro = polar.start_command(polar.GYRO, 52, 1000).hex()
            assert (await ask(gyro))[:4].hex() == "f0020503"  # gyro needs SDK mode
            assert (await ask(polar.start_command(polar.ACC, 104, 8).hex()))[3] == 8
            assert (await ask("0209"))[:4].hex() == "f0020900"
            assert (await ask("0209"))[3] == 6  # already in SDK mode
            assert (await ask(polar.start_command(polar.ACC, 52, 3).hex()))[3] == 9  # range
            assert (await ask(polar.start_command(polar.ACC, 52, 8, 12).hex()))[3] == 7
            assert (await ask("0202" "0001340001"))[3] == 5  # a setting cut short
            assert (await ask("0904"))[3] == 1 and (await ask("0220"))[3] == 2
            ok = polar.parse_response(await ask(polar.start_command(polar.ACC, 52, 8).hex()))
            assert ok is not None and ok.ok
            assert polar.parse_settings(ok.params) == {5: [pytest.approx(8 / 32768)]}
            assert (await ask(polar.start_command(polar.GYRO, 104, 1000).hex()))[3] == 8


def test_without_a_rate_it_streams_at_104_hz_the_rate_it_offers_nearest_100_hz():
    kind = PolarKind()
    assert kind.stream_rate(None) == 104.0
    assert [kind.stream_rate(r) for r in (52, 50, 100, 200, 30, 500)] == [52, 52, 104, 208, 26,
                                                                         416]
    with pytest.raises(DeviceError, match="not 20: ask for one of those, e.g. .*@26"):
        kind.stream_rate(20)


async def test_a_rate_near_one_it_offers_streams_at_that_one_and_says_so():
    async with BleRig() as rig:
        vs = await rig.add(PolarPeripheral(rig.link))
        source = BleSource("Polar Sense 1A2B3C4D", rate_hz=50)
        batches = await host.take(source, 30, timeout_s=30)
        t = np.concatenate([b.t_s for b in batches])
        assert vs.counters.writes[:3] == polar.imu_start_commands(52) and source.rate_hz == 52
        assert np.allclose(np.diff(t), 1 / 52, atol=1e-6)
        assert source.rate_note is not None and source.rate_note.endswith(
            "streaming at 52 Hz (the rate it offers nearest the 50 Hz asked; it offers 26, 52, "
            "104, 208, 416 Hz)")


async def test_a_rate_it_does_not_stream_and_an_old_firmware_are_refused_in_one_line():
    async with BleRig() as rig:
        await rig.add(PolarPeripheral(rig.link))
        await rig.add(PolarPeripheral(rig.link, "Polar Sense 00000001", "A0:9E:1A:00:00:02",
                                      sdk_mode_supported=False))
        with pytest.raises(DeviceError, match=r"26, 52, 104, 208, 416 Hz, not 600: .*@416"):
            await host.take(BleSource("Polar Sense 1A2B3C4D", rate_hz=600), 1, timeout_s=30)
        with pytest.raises(DeviceError, match="no gyroscope stream: update it to firmware 1.1.5"):
            await host.take(BleSource("Polar Sense 00000001", rate_hz=52), 1, timeout_s=30)


async def test_lost_frames_are_counted_from_the_timestamps():
    async with BleRig() as rig:
        vs = await rig.add(PolarPeripheral(rig.link, impairments=Impairments(0.15, seed=3),
                                           samples_per_frame=13))
        source = BleSource("Polar Sense 1A2B3C4D", rate_hz=52)
        batches = await host.collect_seconds(source, 8.0, timeout_s=60)
        dec = source.state.decoder
        assert isinstance(dec, polar.PolarDecoder)
        got = sum(len(b) for b in batches)
        t = np.concatenate([b.t_s for b in batches])
        assert vs.counters.dropped >= 4 and dec.stats.lost >= 13 * 2
        assert round(float(t[-1] - t[0]) * 52) + 1 == got + dec.stats.lost
        assert source.link.lost_samples == dec.stats.lost and dec.stats.bytes_skipped == 0


async def test_a_drop_reconnects_restarts_the_streams_and_counts_the_gap():
    async with BleRig() as rig:
        vs = await rig.add(PolarPeripheral(rig.link, samples_per_frame=13))
        source = BleSource("a0:9e:1a:00:00:01", rate_hz=52)  # by its address, any case
        batches = await host.collect_seconds(source, 4.0, timeout_s=60,
                                             on_batch=host.drop_link_at(vs, 1.5, silent_s=0.5))
        (gap,) = source.gaps
        assert source.link.reconnects == 1
        # on the reconnect SDK mode was still on ("already in state"), the streams restarted
        assert [r[:4].hex() for r in vs.responses[3:6]] == ["f0020906", "f0020200", "f0020500"]
        assert not gap.estimated and gap.lost_samples is not None
        assert gap.lost_samples >= 26  # >= 0.5 s silent at 52 Hz
        t = np.concatenate([b.t_s for b in batches])
        assert gap.lost_samples == round(float(np.diff(t).max()) * 52) - 1
        assert np.count_nonzero(np.diff(t) > 1.5 / 52) == 1


async def test_scan_lists_it_with_its_battery(system_bus, tmp_path):
    async with BleRig() as rig:
        await rig.add(PolarPeripheral(rig.link, battery_pct=43), rssi=-66)
        found = await scan_sensors(2.0)
        assert [(f.name, f.kind, f.battery_pct) for f in found] == [
            ("Polar Sense 1A2B3C4D", "Polar Verity Sense", 43)]
        line = await host.scan_line(system_bus.env(), tmp_path / "home", "A0:9E:1A:00:00:01")
    assert "Polar Verity Sense" in line and "-66 dBm" in line and "43 %" in line


async def test_record_then_analyze_of_its_raw_csv_gives_the_same_numbers(system_bus, tmp_path):
    home = tmp_path / "home"
    async with BleRig() as rig:
        vs = await rig.add(PolarPeripheral(rig.link, "Polar Sense 1A2B3C4D", "A0:9E:1A:00:00:f8"))
        out_csv = tmp_path / "vs.csv"
        # no @RATE: ACC + gyro at 104 Hz, its rate nearest 100 Hz, which the live pipeline, the
        # session and the raw CSV take from the stream
        out, err = await host.record(system_bus.env(), home, "A0:9E:1A:00:00:F8",
                                     "ble:Polar Sense 1A2B3C4D", out_csv, 25)
    assert vs.counters.writes[:3] == polar.imu_start_commands(104)
    assert [ln for ln in err.splitlines() if "streaming at" in ln] == [
        "left: Polar Verity Sense 'Polar Sense 1A2B3C4D' (BLE): streaming at 104 Hz (the rate "
        "it offers nearest 100 Hz; name another with @RATE; it offers 26, 52, 104, 208, 416 Hz)"]
    rec = read_raw_csv(out_csv)
    assert abs(len(rec.t_s) - 2600) <= 1 and rec.quat is None  # raw acc + gyro: we fuse
    assert np.allclose(np.diff(rec.t_s), 1 / 104, atol=2e-6)
    t_acc, acc_g = vs.sent.arrays(ACC)
    t_gyr, _ = vs.sent.arrays(GYRO)
    common, ia, _ = np.intersect1d(t_acc, t_gyr, return_indices=True)
    t_sent = (common - min(t_acc[0], t_gyr[0])) / 1e9
    i0 = int(np.argmin(np.abs(t_sent - rec.t_s[0])))
    assert np.allclose(rec.acc_m_s2, acc_g[ia][i0:i0 + len(rec.t_s)] * GRAVITY_M_S2, atol=1e-4)
    await host.assert_reanalysed(system_bus.env(), out_csv, out)


async def test_live_calibrate_at_a_rate_near_one_it_offers_says_so_and_calibrates(system_bus,
                                                                                 tmp_path):
    home = tmp_path / "home"
    async with BleRig() as rig:
        await rig.add(PolarPeripheral(rig.link, "Polar Sense 1A2B3C4D", "A0:9E:1A:00:00:f9"))
        AllowList.load(str(home)).add("A0:9E:1A:00:00:F9")
        code, out, err = await host.run_cli(system_bus.env(), "calibrate", "--sensor",
                                            "ble:Polar Sense 1A2B3C4D@50", "--out",
                                            str(tmp_path / "cal.json"), "--record",
                                            str(tmp_path / "cal.csv"), "--home", str(home),
                                            timeout_s=150)
    assert code == 0, err
    assert [ln for ln in err.splitlines() if "streaming at" in ln] == [
        "left: Polar Verity Sense 'Polar Sense 1A2B3C4D' (BLE): streaming at 52 Hz (the rate "
        "it offers nearest the 50 Hz asked; it offers 26, 52, 104, 208, 416 Hz)"]
    assert "wrote" in out and (tmp_path / "cal.json").exists()
    assert np.allclose(np.diff(read_raw_csv(tmp_path / "cal.csv").t_s), 1 / 52, atol=2e-6)
