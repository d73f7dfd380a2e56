"""BleSource through real, unmodified bleak (BlueZ backend) against emulated sensors.

Each test runs a private dbus-daemon (module fixture), the fake org.bluez and Bumble peripherals
on a LocalLink; the numbers come from what the peripheral really sent.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from dorsimeter.protocol import witmotion
from dorsimeter.sources.ble import BleSource
from dorsimeter.testing.dbus import private_system_bus
from dorsimeter.testing.node import NodePeripheral
from dorsimeter.testing.rig import BleRig
from dorsimeter.testing.witmotion import WitMotionPeripheral
from dorsimeter.types import GRAVITY_M_S2


@pytest.fixture(scope="module", autouse=True)
def system_bus():
    with private_system_bus() as bus:
        yield bus


async def take(source: BleSource, n_samples: int, timeout_s: float) -> list:
    """The first ``n_samples`` samples' batches from ``source`` (then stops it)."""
    out, n = [], 0

    async def run():
        nonlocal n
        async for batch in source:
            out.append(batch)
            n += len(batch)
            if n >= n_samples:
                break

    try:
        await asyncio.wait_for(run(), timeout_s)
    finally:
        await source.close()
    return out


async def test_witmotion_unlock_rate_then_packets_decoded_to_the_values_sent():
    async with BleRig(mtu=23) as rig:
        wit = await rig.add(WitMotionPeripheral(rig.link, "WT901BLE68", "C0:57:17:00:00:01"))
        source = BleSource("WT901BLE68", rate_hz=50)
        batches = await take(source, 100, timeout_s=15)
        # the writes: unlock, then the 50 Hz rate register, then save; each awaited in turn
        assert wit.counters.writes[:3] == [witmotion.UNLOCK, bytes.fromhex("ffaa030800"),
                                           witmotion.SAVE]
        assert wit.rate_changes == [50.0]
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
        assert source.status.kind == "WitMotion BWT901BLE"


async def collect_seconds(source: BleSource, seconds: float, timeout_s: float,
                          on_batch=None) -> list:
    """Batches from ``source`` until ``seconds`` of device time have arrived (then stops it)."""
    out = []

    async def run():
        async for batch in source:
            out.append(batch)
            if on_batch is not None:
                await on_batch(batch)
            if batch.t_s[-1] - out[0].t_s[0] >= seconds - 1e-9:
                break

    try:
        await asyncio.wait_for(run(), timeout_s)
    finally:
        await source.close()
    return out


async def test_node_scan_connect_and_stream_200hz_for_10s_with_zero_loss():
    async with BleRig() as rig:
        node = await rig.add(NodePeripheral(rig.link, "dorsi-00a1", "C0:D0:57:00:00:a1",
                                            rate_hz=100.0))
        source = BleSource("dorsi-00a1", rate_hz=200)
        batches = await collect_seconds(source, 10.0, timeout_s=25)
        t = np.concatenate([b.t_s for b in batches])
        seq = np.concatenate([b.seq for b in batches])
        # the node was told 200 Hz over a bonded link (a mutating command needs one)
        assert node.imu.rate_hz == 200
        assert len(t) >= 2000
        assert np.allclose(np.diff(t), 0.005, atol=2e-6)  # every sample, 5 ms apart
        assert np.all(np.diff(seq) >= 0) and seq[-1] - seq[0] + 1 == len(np.unique(seq))
        st = source.status
        assert st.lost_frames == 0 and st.lost == 0 and st.duplicates == 0 and st.gaps == 0
        assert st.frames == node.data_frames_sent or st.frames <= node.data_frames_sent
        assert 190 < st.rate_hz < 210
        assert st.battery_pct in (86, 87)  # the simulated cell loses 10 % an hour from 87 %
        acc = np.concatenate([b.acc_m_s2 for b in batches])
        assert np.allclose(np.linalg.norm(acc[:100], axis=1), GRAVITY_M_S2, atol=0.1)
