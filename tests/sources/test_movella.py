"""Movella DOT through real, unmodified bleak (BlueZ backend) against the emulated DOT
(``tests.emulators.movella``): set-up writes, custom mode 5 decoded to what was sent, loss and
reconnects counted from the device timestamps, ``scan`` and ``record``."""

from __future__ import annotations

import numpy as np
import pytest

from dorsimeter.errors import DeviceError
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.pipeline import Pipeline
from dorsimeter.sources.ble import BleSource, scan_sensors
from dorsimeter.sources.registry import MovellaKind
from dorsimeter.store.security import AllowList
from dorsimeter.tui.app import MonitorApp
from dorsimeter.wire import movella
from tests.emulators.movella import MovellaPeripheral
from tests.emulators.peripheral import Impairments
from tests.emulators.rig import BleRig
from tests.sources import host
from tests.tui.rig import frozen_clock, wait_for

pytestmark = pytest.mark.usefixtures("system_bus")  # tests/sources/conftest.py


async def test_rate_then_custom_mode_5_decoded_to_the_values_sent():
    async with BleRig() as rig:
        dot = await rig.add(MovellaPeripheral(rig.link, "Movella DOT", "D4:22:CD:00:00:01",
                                              battery_pct=64))
        source = BleSource("Movella DOT", rate_hz=30)
        batches = await host.take(source, 90, timeout_s=30)
        # Device Control written with the output-rate visit bit and 30 Hz, then Control 01 01 1A
        dev_write = next(w for w in dot.counters.writes if len(w) == 32)
        assert dev_write[0] == 0x10 and dev_write[24:26] == b"\x1e\x00"
        assert dot.counters.writes[-1] == bytes([1, 1, 26]) and dot.rate_changes == [30]
        assert source.link.kind == "Movella DOT" and source.link.battery_pct == 64
        t_us, quat, acc, gyr_dps = dot.sent.arrays()
        got_t = np.concatenate([b.t_s for b in batches])
        n = len(got_t)
        assert n >= 90
        # float32 on the wire: what was sent, exactly; device time from its µs clock, which
        # wrapped during the take (it starts 3 s before 2^32)
        assert np.array_equal(np.concatenate([b.acc_m_s2 for b in batches]), acc[:n])
        assert np.allclose(np.concatenate([b.gyr_rad_s for b in batches]),
                           np.radians(gyr_dps[:n]), rtol=0, atol=1e-12)
        assert np.allclose(np.concatenate([b.quat for b in batches]), quat[:n], atol=1e-6)
        unwrapped = np.cumsum(np.concatenate([[0], np.diff(t_us[:n]) % (1 << 32)]))
        assert np.allclose(got_t, unwrapped / 1e6, atol=1e-9)
        assert np.any(np.diff(t_us[:n]) < 0)  # the wrap was crossed
        assert np.allclose(np.diff(got_t), 1 / 30, atol=2e-6)
        # the shank stands still at the start: gravity along the sensor's up, 1 g
        assert np.allclose(np.linalg.norm(acc[:20], axis=1), 9.81, atol=0.15)


async def test_a_rate_the_dot_does_not_stream_is_refused_naming_the_nearest():
    async with BleRig() as rig:
        await rig.add(MovellaPeripheral(rig.link))
        source = BleSource("Movella DOT", rate_hz=100)  # 60 Hz is 40 % off: a mistake
        with pytest.raises(DeviceError, match=r"1, 4, 10, 12, 15, 20, 30, 60 Hz, not 100: .*@60"):
            await host.take(source, 1, timeout_s=30)


async def test_record_at_a_rate_the_dot_does_not_stream_is_one_line_and_no_file(system_bus,
                                                                                tmp_path):
    home = tmp_path / "home"
    async with BleRig() as rig:
        await rig.add(MovellaPeripheral(rig.link, "Movella DOT", "D4:22:CD:00:00:f7"))
        AllowList.load(str(home)).add("D4:22:CD:00:00:F7")
        code, out, err = await host.run_cli(system_bus.env(), "record", "--sensor",
                                            "ble:Movella DOT@100", "--duration", "5", "--out",
                                            str(tmp_path / "dot.csv"), "--home", str(home),
                                            timeout_s=90)
    assert code == 1 and out == "" and not (tmp_path / "dot.csv").exists()
    assert err.count("\n") == 1 and "streams at 1, 4, 10, 12, 15, 20, 30, 60 Hz, not 100: " \
        "ask for one of those, e.g. --sensor ble:NAME@60" in err


async def test_a_rate_near_one_it_offers_streams_at_that_one_and_says_so():
    async with BleRig() as rig:
        dot = await rig.add(MovellaPeripheral(rig.link))
        source = BleSource("Movella DOT", rate_hz=50)
        batches = await host.take(source, 30, timeout_s=30)
        t = np.concatenate([b.t_s for b in batches])
        assert source.rate_hz == 60.0 and dot.rate_hz == 60
        assert np.allclose(np.diff(t), 1 / 60, atol=2e-6)
        assert source.rate_note == ("Movella DOT 'Movella DOT' (BLE): streaming at 60 Hz (the "
                                    "rate it offers nearest the 50 Hz asked; it offers 1, 4, "
                                    "10, 12, 15, 20, 30, 60 Hz)")


def test_without_a_rate_it_streams_at_60_hz_its_fastest_the_nearest_100_hz():
    kind = MovellaKind()
    assert kind.stream_rate(None) == 60.0
    assert [kind.stream_rate(r) for r in (60, 30, 50, 70, 12)] == [60, 30, 60, 60, 12]
    with pytest.raises(DeviceError, match="not 80: ask for one of those, e.g. .*@60"):
        kind.stream_rate(80)


async def test_an_old_firmware_without_custom_mode_5_is_refused_in_one_line():
    async with BleRig() as rig:
        dot = await rig.add(MovellaPeripheral(rig.link, custom_mode_5=False))
        source = BleSource("Movella DOT", rate_hz=60)
        with pytest.raises(DeviceError, match="did not start custom mode 5.*update its firmware"):
            await host.take(source, 1, timeout_s=30)
        assert dot.control[1] == 0 and dot.starts == 0  # the write was not taken


async def test_injected_loss_is_counted_exactly_from_the_timestamps():
    async with BleRig() as rig:
        dot = await rig.add(MovellaPeripheral(rig.link, impairments=Impairments(0.1, seed=4)))
        source = BleSource("Movella DOT", rate_hz=60)
        batches = await host.collect_seconds(source, 5.0, timeout_s=40)
        dec = source.state.decoder
        assert isinstance(dec, movella.DotDecoder)
        got = sum(len(b) for b in batches)
        # every drop between the first and the last packet received is counted, none more
        t_us, _, _, _ = dot.sent.arrays()
        assert got == dec.stats.samples and dec.stats.bytes_skipped == 0
        assert dot.counters.dropped >= 20
        assert dec.stats.lost == source.link.lost_samples
        assert abs(dec.stats.lost - dot.counters.dropped) <= 3  # drops after the last arrival
        t = np.concatenate([b.t_s for b in batches])
        assert round(float(t[-1] - t[0]) * 60) + 1 == got + dec.stats.lost


async def test_a_drop_reconnects_restarts_streaming_and_counts_the_samples_missed():
    async with BleRig() as rig:
        dot = await rig.add(MovellaPeripheral(rig.link, "Movella DOT", "D4:22:CD:00:00:a5"))
        source = BleSource("d4:22:cd:00:00:a5", rate_hz=60)  # by its address, any case
        batches = await host.collect_seconds(source, 3.0, timeout_s=40,
                                             on_batch=host.drop_link_at(dot, 1.0, silent_s=0.5))
        (gap,) = source.gaps
        assert dot.starts == 2 and source.link.reconnects == 1  # measurement started again
        assert not gap.estimated and gap.lost_samples is not None
        assert gap.lost_samples >= 25  # >= 0.5 s silent at 60 Hz
        t = np.concatenate([b.t_s for b in batches])
        jump = np.diff(t).max()
        assert gap.lost_samples == round(jump * 60) - 1
        assert np.count_nonzero(np.diff(t) > 1.5 / 60) == 1


async def test_scan_finds_the_dot_by_name_and_a_renamed_one_by_its_maker_data(system_bus,
                                                                             tmp_path):
    async with BleRig() as rig:
        await rig.add(MovellaPeripheral(rig.link, "Movella DOT", "D4:22:CD:00:00:e1",
                                        battery_pct=58), rssi=-60)
        await rig.add(MovellaPeripheral(rig.link, "left shin", "D4:22:CD:00:00:e2",
                                        battery_pct=91), rssi=-70)
        found = await scan_sensors(2.0)
        assert [(f.name, f.kind, f.battery_pct) for f in found] == [
            ("Movella DOT", "Movella DOT", 58), ("left shin", "Movella DOT", 91)]
        line = await host.scan_line(system_bus.env(), tmp_path / "home", "D4:22:CD:00:00:E1")
    assert "Movella DOT" in line and "-60 dBm" in line and "58 %" in line


async def test_record_then_analyze_of_its_raw_csv_gives_the_same_numbers(system_bus, tmp_path):
    home = tmp_path / "home"
    async with BleRig() as rig:
        dot = await rig.add(MovellaPeripheral(rig.link, "Movella DOT", "D4:22:CD:00:00:f8"))
        out_csv = tmp_path / "dot.csv"
        # no @RATE: the DOT streams at 60 Hz, its rate nearest 100 Hz, and the live pipeline,
        # the session and the raw CSV take that rate from the stream
        out, err = await host.record(system_bus.env(), home, "D4:22:CD:00:00:F8",
                                     "ble:Movella DOT", out_csv, 25)
    assert [ln for ln in err.splitlines() if "streaming at" in ln] == [
        "left: Movella DOT 'Movella DOT' (BLE): streaming at 60 Hz (the rate it offers nearest "
        "100 Hz; name another with @RATE; it offers 1, 4, 10, 12, 15, 20, 30, 60 Hz)"]
    rec = read_raw_csv(out_csv)
    assert abs(len(rec.t_s) - 1500) <= 1 and rec.quat is not None
    assert np.allclose(np.diff(rec.t_s), 1 / 60, atol=2e-6)
    # the raw CSV holds what the DOT sent (float32 values, µs device time)
    t_us, quat, acc, _ = dot.sent.arrays()
    t_sent = np.cumsum(np.concatenate([[0], np.diff(t_us) % (1 << 32)])) / 1e6
    i0 = int(np.argmin(np.abs(t_sent - rec.t_s[0])))
    k = len(rec.t_s)
    assert np.allclose(rec.acc_m_s2, acc[i0:i0 + k], atol=1e-4)
    assert np.allclose(np.abs(np.sum(rec.quat * quat[i0:i0 + k], axis=1)), 1, atol=1e-5)
    await host.assert_reanalysed(system_bus.env(), out_csv, out)


async def test_the_monitor_streams_it_at_60_hz_and_says_so(tmp_path):
    async with BleRig() as rig:
        await rig.add(MovellaPeripheral(rig.link))
        source = BleSource("Movella DOT")  # no rate named: the monitor's pipeline is at 100 Hz
        app = MonitorApp(source, Pipeline(100.0), record_session=False, clock=frozen_clock)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.samples >= 60, timeout_s=30)
            assert source.rate_hz == 60.0 and app.pipeline.rate_hz == 60.0
            assert app.live.results.rate_hz == 60.0
            assert app.message.startswith("left: Movella DOT 'Movella DOT' (BLE): streaming at "
                                          "60 Hz (the rate it offers nearest 100 Hz")
