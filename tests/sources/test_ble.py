"""BleSource through real, unmodified bleak (BlueZ backend) against emulated sensors.

Each test runs a private dbus-daemon (module fixture), the fake org.bluez and Bumble peripherals
on a LocalLink; the numbers come from what the peripheral really sent.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from dorsimeter.errors import DeviceError
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.pipeline import Pipeline
from dorsimeter.sources.ble import BleSource
from dorsimeter.store.security import AllowList
from dorsimeter.types import GRAVITY_M_S2, Readings
from dorsimeter.wire import witmotion
from dorsimeter.wire.frames import FrameDecoder
from firmware_bridge.sim_drivers import SimBattery
from tests.emulators.node import NodePeripheral
from tests.emulators.peripheral import Impairments, Peripheral
from tests.emulators.rig import BleRig
from tests.emulators.witmotion import WitMotionPeripheral
from tests.sources.host import collect_seconds, run_cli, take

pytestmark = pytest.mark.usefixtures("system_bus")  # tests/sources/conftest.py

async def test_witmotion_unlock_rate_then_packets_decoded_to_the_values_sent():
    async with BleRig(mtu=23) as rig:
        wit = await rig.add(WitMotionPeripheral(rig.link, "WT901BLE68", "C0:57:17:00:00:01"))
        source = BleSource("c0:57:17:00:00:01", rate_hz=50)  # by address, any case
        batches = await take(source, 100, timeout_s=15)
        # the writes: unlock, then the 50 Hz rate register, then save; each awaited in turn
        assert wit.counters.writes[:3] == [witmotion.UNLOCK, bytes.fromhex("ffaa030800"),
                                           witmotion.SAVE]
        assert wit.rate_changes == [50.0]
        # paced as the vendor's SDK does: 100 ms from one command to the next
        assert np.all(np.diff(wit.counters.write_times_s[:3]) >= 0.1)
        acc = np.concatenate([b.acc_m_s2 for b in batches])
        gyr = np.concatenate([b.gyr_rad_s for b in batches])
        quat = np.concatenate([b.quat for b in batches])
        sent_acc_g, sent_gyr_dps, sent_ang = wit.sent.arrays()
        # every packet that went onto the link (the first few still at 10 Hz) decoded, in order
        n = min(len(acc), len(sent_acc_g))
        assert n >= 100
        sent_acc, sent_gyr = sent_acc_g[:n] * GRAVITY_M_S2, np.radians(sent_gyr_dps[:n])
        # int16 on the wire: half an LSB is the most the values may differ
        assert np.max(np.abs(acc[:n] - sent_acc)) <= 0.5 * 16 / 32768 * GRAVITY_M_S2 + 1e-9
        assert np.max(np.abs(gyr[:n] - sent_gyr)) <= np.radians(0.5 * 2000 / 32768) + 1e-9
        expect_q = witmotion.angles_to_quat(sent_ang[:n])
        dot = np.abs(np.sum(quat[:n] * expect_q, axis=1))
        assert np.degrees(2 * np.arccos(np.clip(dot, -1, 1))).max() < 0.02
        # still at the start of the session: gravity is 1 g along the sensor's up axis
        assert np.allclose(np.linalg.norm(acc[:20], axis=1), GRAVITY_M_S2, atol=0.1)
        assert source.link.kind == "WitMotion BWT901BLE"
        assert source.link.address == "C0:57:17:00:00:01"


async def test_node_scan_connect_and_stream_200hz_for_10s_with_zero_loss():
    async with BleRig() as rig:
        node = await rig.add(NodePeripheral(rig.link, "dorsi-00a1", "C0:D0:57:00:00:a1",
                                            rate_hz=100.0))
        source = BleSource("dorsi-00a1", rate_hz=200, battery_every_s=1.0)
        seen = {}

        async def on_batch(batch):
            t0 = seen.setdefault("t0", float(batch.t_s[0]))
            seen.setdefault("battery", source.link.battery_pct)
            if batch.t_s[-1] - t0 > 5.0 and "swapped" not in seen:
                seen["swapped"] = True  # a fresh cell: the polled level must follow
                node.node.battery = SimBattery(node.clock, start_pct=42.9)

        batches = await collect_seconds(source, 10.0, timeout_s=25, on_batch=on_batch)
        t = np.concatenate([b.t_s for b in batches])
        seq = np.concatenate([b.seq for b in batches])
        # the node was told 200 Hz over a bonded link (a mutating command needs one)
        assert node.imu.rate_hz == 200
        assert len(t) >= 2000
        assert np.allclose(np.diff(t), 0.005, atol=2e-6)  # every sample, 5 ms apart
        assert np.all(np.diff(seq) >= 0) and seq[-1] - seq[0] + 1 == len(np.unique(seq))
        st = source.link
        assert st.lost_frames == 0 and st.lost_samples == 0 and st.duplicates == 0 and st.gaps == 0
        assert st.frames == node.data_frames_sent or st.frames <= node.data_frames_sent
        assert 195 < st.rate_hz < 205
        assert seen["battery"] in (86, 87)  # the simulated cell loses 10 % an hour from 87 %
        assert st.battery_pct == 42          # polled while streaming, after the swap
        acc = np.concatenate([b.acc_m_s2 for b in batches])
        assert np.allclose(np.linalg.norm(acc[:100], axis=1), GRAVITY_M_S2, atol=0.1)


async def test_link_drop_mid_trial_reconnects_within_2s_marks_the_gap_and_keeps_the_trial():
    async with BleRig() as rig:
        node = await rig.add(NodePeripheral(rig.link, "dorsi-00b2", "C0:D0:57:00:00:b2"))
        gaps = []
        source = BleSource("dorsi-00b2", rate_hz=100, on_gap=gaps.append)
        pipeline = Pipeline(100)
        readings, events = [], []
        drop = {}

        async def on_batch(batch):
            r, ev = pipeline.push(batch)
            readings.append(r)
            events.extend(ev)
            if not drop and pipeline.progress.phase == "calibrated" and batch.t_s[-1] > 10.0:
                drop["unsent"] = node.counters.unsent
                drop["t_s"] = float(batch.t_s[-1])
                # sent by the node but not yet at the host: still in flight as the link goes
                drop["in_flight"] = node.data_frames_sent - source.link.frames
                await node.drop_link()
            elif drop and gaps and "unsent_after" not in drop:
                # the first batch after the gap: the link is back, the node sends again; read
                # its count now, not after the stream ends (then every frame it goes on making
                # is unsent too: a loaded run read 7 for 4 lost)
                drop["unsent_after"] = node.counters.unsent

        # up to 60 s of device time: under load the calibration can finish late (a late
        # emulator delivers in bursts, frames dropped restart it), and the drop waits for it;
        # the stream stops 6 s after the drop, and the wall deadline is only a backstop
        await collect_seconds(source, 60.0, timeout_s=240, on_batch=on_batch,
                              until=lambda b: bool(drop) and b.t_s[-1] > drop["t_s"] + 6.0)
        assert drop, "the trial never calibrated before the drop"
        assert source.link.reconnects == 1 and len(source.gaps) == 1 and gaps == source.gaps
        gap = gaps[0]
        assert gap.down_s < 2.0                                    # reconnected within 2 s
        assert gap.t_before_s > 10.0 and gap.t_after_s > gap.t_before_s
        # the host counts exactly the frames its sequence numbers skipped: the ones the node
        # produced while nobody listened, plus those it had sent that were still in flight when
        # the link went (on a loaded machine several: 8 vs 7, 4 vs 5, 7 vs 3 were seen), give or
        # take the one frame produced as the link came back
        unsent = drop["unsent_after"] - drop["unsent"]
        assert gap.lost_frames == source.link.lost_frames > 0
        assert unsent - 1 <= gap.lost_frames <= unsent + max(drop["in_flight"], 0) + 1, (
            gap.lost_frames, unsent, drop["in_flight"])
        t_all = np.concatenate([x.t_s for x in readings])
        assert gap.lost_samples == round((gap.t_after_s - gap.t_before_s) * 100) - 1 > 0
        assert not np.any((t_all > gap.t_before_s) & (t_all < gap.t_after_s))
        # the trial went on: one calibration only, readings after the gap track the truth
        assert [e.kind for e in events].count("calibrated") == 1
        assert pipeline.progress.phase == "calibrated"
        r = Readings.concat(readings)
        after = r.t_s > gap.t_after_s
        assert after.sum() > 150
        t_true, ang_true = node.truth()
        truth = np.interp(r.t_s[after], t_true, ang_true)
        assert np.max(np.abs(r.tibia_angle_deg[after] - truth)) < 3.0


async def test_ten_percent_injected_loss_is_counted_exactly():
    async with BleRig(mtu=23) as rig:  # one sample per notification at the default MTU
        node = await rig.add(NodePeripheral(rig.link, "dorsi-00c3", "C0:D0:57:00:00:c3",
                                            impairments=Impairments(loss_fraction=0.10, seed=7)))
        source = BleSource("dorsi-00c3", rate_hz=200)
        batches = await collect_seconds(source, 4.0, timeout_s=20)
        seq = np.concatenate([b.seq for b in batches])
        # frames the radio removed between the first and the last frame the host received
        removed = [s for s in node.lost_seqs if seq[0] < s < seq[-1]]
        assert len(removed) > 50
        assert source.link.lost_frames == len(removed)
        assert source.link.lost_samples == len(removed)         # one sample per frame
        assert 0.07 < source.link.loss < 0.13
        assert source.link.duplicates == 0 and source.link.gaps == 0
        expected = np.setdiff1d(np.arange(seq[0], seq[-1] + 1), removed)
        assert np.array_equal(np.unique(seq), expected)


async def test_callback_left_registered_by_the_old_connection_cannot_double_notifications():
    """bleak issue 2002: after a reconnect BlueZ can deliver each notification to the old
    connection's callback as well. We recreate it by putting the first connection's device
    watcher back into bleak's BlueZ manager; every notification must still be handled once."""
    from bleak.backends.bluezdbus.manager import get_global_bluez_manager

    async with BleRig() as rig:
        wit = await rig.add(WitMotionPeripheral(rig.link, "WT901-dup", "C0:57:17:00:00:d4",
                                                autostart=False))
        source = BleSource("WT901-dup", rate_hz=100)
        got = []

        async def consume():
            async for batch in source:
                got.append(batch)

        async def connected():
            while source.state.client is None or not wit.subscribed.is_set():
                await asyncio.sleep(0.01)

        task = asyncio.create_task(consume())
        manager = await get_global_bluez_manager()
        path, old_watchers = None, set()
        try:
            await asyncio.wait_for(connected(), 10)
            path = source.state.client._backend._device_path
            old_watchers = set(manager._device_watchers[path])
            first = await wit.stream_for(100, 0.5)
            await wit.drop_link()  # clears ``subscribed``: connected() waits for the new link
            await asyncio.wait_for(connected(), 5)
            assert source.link.reconnects == 1
            manager._device_watchers[path].update(old_watchers)  # the stale registration
            second = await wit.stream_for(100, 0.5)

            async def delivered():  # every sample sent, and every stale callback, has arrived
                while (sum(len(b) for b in got) < len(wit.sent.acc_g)
                       or source.state.stale_notifications < second):
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(delivered(), 30)
            n = sum(len(b) for b in got)
            # each sample exactly once (the data notifications: the battery replies aside)
            assert n == first + second == len(wit.sent.acc_g)
            # the old callback did fire: for each sample, and for a battery reply if one came
            replies = len(wit.register_reads)
            assert second <= source.state.stale_notifications <= second + replies
        finally:
            manager._device_watchers.get(path, set()).difference_update(old_watchers)
            task.cancel()
            await source.close()


async def test_scan_command_lists_supported_sensors_with_rssi_and_battery(system_bus, tmp_path):
    AllowList.load(str(tmp_path / "home")).add("C0:57:17:00:00:E6")  # the WitMotion is ours
    async with BleRig() as rig:
        await rig.add(NodePeripheral(rig.link, "dorsi-00e5", "C0:D0:57:00:00:e5",
                                     battery_pct=64.5), rssi=-58)
        await rig.add(WitMotionPeripheral(rig.link, "WT901BLE-e6", "C0:57:17:00:00:e6",
                                          battery_v=3.80), rssi=-71)
        await rig.add(Peripheral(rig.link, "someone-elses-watch", "C0:00:00:00:00:e7"), rssi=-40)
        code, out, err = await run_cli(system_bus.env(), "scan", "--timeout", "1.5",
                                       "--home", str(tmp_path / "home"))
    assert code == 0, err
    lines = out.splitlines()
    node_line = next(ln for ln in lines if "dorsi-00e5" in ln)
    wit_line = next(ln for ln in lines if "WT901BLE-e6" in ln)
    assert "C0:D0:57:00:00:E5" in node_line and "-58 dBm" in node_line and "64 %" in node_line
    assert "dorsimeter node" in node_line
    assert "C0:57:17:00:00:E6" in wit_line and "-71 dBm" in wit_line and "WitMotion" in wit_line
    assert "43 %" in wit_line  # its register 0x64 read over a short connection: 3.80 V
    assert lines.index(node_line) < lines.index(wit_line)  # strongest first
    assert "someone-elses-watch" not in out
    assert node_line.endswith("no") and wit_line.endswith("yes")  # the allow-list column
    assert "dorsimeter sensors add C0:D0:57:00:00:E5" in out  # the strongest is not allowed yet


async def test_record_command_over_ble_writes_the_raw_csv_in_si_units(system_bus, tmp_path):
    async with BleRig() as rig:
        node = await rig.add(NodePeripheral(rig.link, "dorsi-00f8", "C0:D0:57:00:00:f8"))
        AllowList.load(str(tmp_path / "home")).add("C0:D0:57:00:00:F8")  # the user's sensor
        out_csv = tmp_path / "raw.csv"
        code, out, err = await run_cli(
            system_bus.env(), "record", "--sensor", "ble:dorsi-00f8", "--duration", "3",
            "--speed", "1", "--out", str(out_csv), "--home", str(tmp_path / "home"))
    assert code == 0, err
    assert "wrote 300 samples" in out
    rec = read_raw_csv(out_csv)
    assert len(rec.t_s) == 300
    assert np.allclose(np.diff(rec.t_s), 0.01, atol=2e-6)
    # exactly what the node put on the link, decoded to SI units
    sent = FrameDecoder().feed(b"".join(node.sent_frames))
    t_sent = np.concatenate([b.t_s for b in sent])
    i0 = int(np.searchsorted(t_sent, rec.t_s[0]))
    acc_sent = np.concatenate([b.acc_m_s2 for b in sent])[i0:i0 + 300]
    gyr_sent = np.concatenate([b.gyr_rad_s for b in sent])[i0:i0 + 300]
    assert np.allclose(rec.t_s, t_sent[i0:i0 + 300], atol=1e-6)
    assert np.allclose(rec.acc_m_s2, acc_sent, atol=1e-4)
    assert np.allclose(rec.gyr_rad_s, gyr_sent, atol=1e-5)
    assert node.counters.connections == 1 and node.imu.rate_hz == 100


async def test_record_command_names_a_missing_sensor_in_one_line(system_bus, tmp_path):
    async with BleRig():
        code, out, err = await run_cli(
            dict(system_bus.env(), DORSIMETER_BLE_SCAN_S="1.5"), "record",
            "--sensor", "ble:dorsi-nowhere", "--duration", "1",
            "--out", str(tmp_path / "x.csv"), "--home", str(tmp_path / "home"), timeout_s=40)
    assert code == 1
    assert err.strip().splitlines() == [err.strip()]
    assert "dorsi-nowhere" in err and "1.5 s" in err and "Traceback" not in err


async def test_a_sensor_gone_for_good_ends_the_stream_with_a_device_error():
    async with BleRig() as rig:
        node = await rig.add(NodePeripheral(rig.link, "dorsi-0109", "C0:D0:57:00:01:09"))
        source = BleSource("dorsi-0109", rate_hz=100, give_up_s=1.0)
        loop = asyncio.get_running_loop()
        dropped_at = None

        async def run():
            nonlocal dropped_at
            async for _ in source:
                if dropped_at is None:
                    dropped_at = loop.time()
                    await node.drop_link(silent_s=30.0)  # out of range

        with pytest.raises(DeviceError, match="dorsi-0109' lost: no reconnection in 1 s"):
            await asyncio.wait_for(run(), 15)
        assert 0.9 < loop.time() - dropped_at < 3.0
        assert source.link.state == "lost" and source.link.reconnects == 1


async def test_witmotion_drop_moves_its_sample_clock_on_by_the_samples_missed():
    async with BleRig(mtu=23) as rig:
        wit = await rig.add(WitMotionPeripheral(rig.link, "WT901-gap", "C0:57:17:00:00:a5"))
        source = BleSource("WT901-gap", rate_hz=100)
        mark = {}
        lateness_s = []  # host arrival minus the sample clock, before the drop

        async def on_batch(batch):
            if not mark:
                lateness_s.append(time.monotonic() - float(batch.t_s[-1]))
            if not mark and batch.t_s[-1] >= 1.0:
                mark["unsent"] = wit.counters.unsent
                await wit.drop_link()

        batches = await collect_seconds(source, 2.5, timeout_s=15, on_batch=on_batch)
        (gap,) = source.gaps
        missed = wit.counters.unsent - mark["unsent"]   # sampled while nobody listened
        assert gap.estimated and missed > 0
        # a clockless device: the estimate comes from arrival times, so it is as good as their
        # jitter (a sample either side, plus the spread of delivery delays seen on this link;
        # a loaded machine delivers late and in bursts)
        jitter_samples = (max(lateness_s) - min(lateness_s)) * 100
        assert abs(gap.lost_samples - missed) <= 2 + 2 * jitter_samples
        t = np.concatenate([b.t_s for b in batches])
        jump = np.diff(t).max()
        assert jump == pytest.approx((gap.lost_samples + 1) / 100, abs=1e-9)
        assert np.count_nonzero(np.diff(t) > 0.0101) == 1   # one gap, evenly spaced otherwise


async def test_witmotion_battery_is_asked_by_register_read_and_polled_while_streaming():
    """Register 0x64 read (``FF AA 27 64 00``), its ``55 71`` reply among the data packets:
    3.85 V is 56 % on the vendor's curve (50 % at 3.82 V, 60 % at 3.87 V), then the cell sags
    to 3.70 V (15 %) and the next poll shows it; 100 ms after every command, as the SDK."""
    async with BleRig(mtu=23) as rig:
        wit = await rig.add(WitMotionPeripheral(rig.link, "WT901-batt", "C0:57:17:00:00:b1",
                                                battery_v=3.85))
        source = BleSource("WT901-batt", rate_hz=50, battery_every_s=0.5)
        seen: list[int | None] = []

        async def on_batch(batch):
            seen.append(source.link.battery_pct)
            if source.link.battery_pct == 56:
                wit.battery_v = 3.70

        batches = await collect_seconds(source, 4.0, timeout_s=30, on_batch=on_batch)
    assert seen[0] is None  # a WitMotion advertises no battery: nothing before it is asked
    assert 56 in seen and seen[-1] == 15
    assert seen.index(56) < seen.index(15)
    reads = [w for w in wit.counters.writes if w == witmotion.BATTERY_COMMAND]
    assert len(reads) >= 2 and wit.register_reads.count(0x64) == len(reads)
    # the polls came after the set-up, each 100 ms after the command before it
    writes_t = np.array(wit.counters.write_times_s)
    assert wit.counters.writes[:3] == witmotion.rate_commands(50)
    assert np.all(np.diff(writes_t[:4]) >= witmotion.COMMAND_GAP_S)
    # and the replies did not disturb the data: every sample sent was decoded, in order
    n = sum(len(b) for b in batches)
    sent_acc_g = wit.sent.arrays()[0]
    acc = np.concatenate([b.acc_m_s2 for b in batches])
    assert np.max(np.abs(acc - sent_acc_g[:n] * GRAVITY_M_S2)) <= 0.5 * 16 / 32768 * 9.81


def test_sensor_spec_errors_are_one_line_and_name_the_problem():
    from dorsimeter.errors import DorsimeterError
    from dorsimeter.sources import SensorSpec, open_source

    with pytest.raises(DorsimeterError, match="^--sensor ble:ADDRESS_OR_NAME.* needs an address "
                                              "or a name"):
        SensorSpec.parse("ble:")
    with pytest.raises(DorsimeterError, match="^--right-sensor ble:dorsi-0001@fast: 'fast' is "
                                              "not a rate in Hz"):
        SensorSpec.parse("ble:dorsi-0001@fast", "--right-sensor")
    src = open_source(SensorSpec.parse("ble:C0:D0:57:00:00:01@200"))
    assert isinstance(src, BleSource) and src.target == "C0:D0:57:00:00:01"
    assert src.rate_hz == 200


def test_sensor_kind_from_advertised_uuids_or_a_witmotion_name():
    from dorsimeter.sources.registry import kind_for_services
    from dorsimeter.wire import gatt
    from tests.emulators import witmotion as wit_emulator

    assert kind_for_services([gatt.NODE_SERVICE_UUID.upper()]).name == "dorsimeter node"
    assert kind_for_services([wit_emulator.SERVICE_UUID]).name == "WitMotion BWT901BLE"
    assert kind_for_services([], "WT901BLE68").name == "WitMotion BWT901BLE"
    assert kind_for_services(["0000180d-0000-1000-8000-00805f9b34fb"], "HR strap") is None


async def test_two_sources_started_at_once_both_find_their_sensor_and_stream():
    """Two BleSources started together (two shins, or any caller that does not serialise them):
    their scans take turns on the one adapter, so both sensors are found and stream."""
    async with BleRig() as rig:
        await rig.add(NodePeripheral(rig.link, "dorsi-1a01", "C0:D0:57:00:1a:01", seed=1))
        await rig.add(NodePeripheral(rig.link, "dorsi-1b02", "C0:D0:57:00:1b:02", seed=2))
        a, b = BleSource("dorsi-1a01", rate_hz=100), BleSource("dorsi-1b02", rate_hz=100)
        got_a, got_b = await asyncio.gather(take(a, 100, 30), take(b, 100, 30))
        assert sum(len(x) for x in got_a) >= 100 and sum(len(x) for x in got_b) >= 100


MAC_UUID = "5B1D4C8E-2F3A-4E6B-9C1D-0A1B2C3D4E5F"  # how macOS would name the node below


@pytest.mark.parametrize("can_pair", [True, False], ids=["pair-call", "no-pair-call (macOS)"])
async def test_a_sensor_known_by_a_corebluetooth_uuid_connects_through_real_bleak(
        can_pair, tmp_path, monkeypatch):
    """The host sees the node under a UUID, as on macOS: the allow-list and the target take it.
    Without a pair() call (CoreBluetooth has none), the node's encrypted control characteristic
    makes the stack pair on the first command, and the rate change still reaches the node."""
    import dorsimeter.sources.ble as ble_mod

    monkeypatch.setattr(ble_mod, "backend_can_pair", lambda: can_pair)
    async with BleRig(identifiers={"C0:D0:57:00:00:c1": MAC_UUID}) as rig:
        node = await rig.add(NodePeripheral(rig.link, "dorsi-00c1", "C0:D0:57:00:00:c1",
                                            rate_hz=100.0))
        allowed = AllowList(tmp_path / "sensors.json")
        allowed.add(MAC_UUID.lower())  # typed in any case
        assert allowed.sensors[0].address == MAC_UUID
        source = BleSource(f"{MAC_UUID.lower()}", rate_hz=200, allowed=allowed)
        batches = await take(source, 400, timeout_s=20)
        device = rig.bluez.devices[next(iter(rig.bluez.devices))]
        assert source.link.address == MAC_UUID
        assert node.imu.rate_hz == 200  # set_rate obeyed: the link was encrypted
        # with no pair() call, exactly the first command met Insufficient Encryption
        assert device.insufficient_encryption == (0 if can_pair else 1)
        t = np.concatenate([b.t_s for b in batches])
        assert len(t) >= 400 and np.allclose(np.diff(t), 0.005, atol=2e-6)
        assert source.link.lost_frames == 0


async def test_a_name_two_sensors_advertise_is_refused_unless_the_allow_list_picks_one(tmp_path):
    async with BleRig() as rig:
        await rig.add(NodePeripheral(rig.link, "dorsi-twin", "C0:D0:57:00:00:d1"))
        await rig.add(NodePeripheral(rig.link, "dorsi-twin", "C0:D0:57:00:00:d2"))
        with pytest.raises(DeviceError, match=r"2 BLE sensors advertise the name 'dorsi-twin' "
                                              r"\(C0:D0:57:00:00:D1, C0:D0:57:00:00:D2\)"):
            await take(BleSource("dorsi-twin"), 1, timeout_s=15)
        allowed = AllowList(tmp_path / "sensors.json")
        allowed.add("C0:D0:57:00:00:D2")
        source = BleSource("dorsi-twin", allowed=allowed)
        await take(source, 50, timeout_s=15)
        assert source.link.address == "C0:D0:57:00:00:D2"


async def test_a_set_up_that_fails_after_a_drop_is_retried_and_the_stream_goes_on():
    """After the drop the node leaves the first set_rate unanswered: that reconnection's set-up
    ends in a DeviceError, which the reconnect loop retries (with a fresh scan) instead of ending
    the recording."""
    async with BleRig() as rig:
        node = await rig.add(NodePeripheral(rig.link, "dorsi-00e1", "C0:D0:57:00:00:e1"))
        source = BleSource("C0:D0:57:00:00:E1", rate_hz=100, give_up_s=20)
        dropped = {}

        async def on_batch(batch):
            if not dropped and batch.t_s[-1] > 1.0:
                dropped["writes"] = len(node.counters.writes)
                node.ignore_commands = 1
                await node.drop_link()

        batches = await collect_seconds(source, 8.0, timeout_s=40, on_batch=on_batch)
        assert dropped and source.link.reconnects == 1 and len(source.gaps) == 1
        assert node.ignore_commands == 0 and node.counters.connections >= 3
        # the unanswered set_rate, then the set_rate (and battery) of the connection that worked
        later = node.counters.writes[dropped["writes"]:]
        assert sum(w[9] == 0x01 for w in later if len(w) > 9) >= 2
        t = np.concatenate([b.t_s for b in batches])
        assert t[-1] > source.gaps[0].t_after_s + 1.0  # streaming well after the failed set-up
