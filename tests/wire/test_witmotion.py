"""WitMotion BLE and UART packets decoded to the right values, in SI units, with resync."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dorsimeter.types import GRAVITY_M_S2
from dorsimeter.wire import witmotion as W


def test_ble_packet_byte_exact_and_decoded_values():
    # acc (0, 0, 1) g, gyro (0, 0, 250) dps, angles (30, -45, 90) deg
    pkt = W.encode_ble_packet([0, 0, 1.0], [0, 0, 250.0], [30.0, -45.0, 90.0])
    assert pkt.hex() == ("5561" "0000" "0000" "0008" "0000" "0000" "0010"
                         "5515" "00e0" "0040")
    (b,) = W.WitBleDecoder(rate_hz=50).feed(pkt)
    assert np.allclose(b.acc_m_s2, [[0, 0, GRAVITY_M_S2]])
    assert np.allclose(b.gyr_rad_s, [[0, 0, np.radians(250.0)]])
    roll, pitch, yaw = Rotation.from_quat(b.quat[0], scalar_first=True).as_euler(
        "ZYX", degrees=True)[::-1]
    assert np.allclose([roll, pitch, yaw], [30.0, -45.0, 90.0], atol=0.01)


@pytest.mark.parametrize("roll,pitch", [(30.0, 0.0), (0.0, 40.0), (-20.0, 25.0)])
def test_angle_convention_agrees_with_gravity(roll, pitch):
    """At rest the accelerometer reads R^T (0, 0, g): our quaternion must predict it."""
    r = Rotation.from_euler("ZYX", [70.0, pitch, roll], degrees=True)
    acc_g = r.inv().apply([0, 0, 1.0])
    # WitMotion's own formulas for the angles from gravity
    assert np.isclose(np.degrees(np.arctan2(acc_g[1], acc_g[2])), roll)
    assert np.isclose(np.degrees(np.arctan2(-acc_g[0], np.hypot(acc_g[1], acc_g[2]))), pitch)
    (b,) = W.WitBleDecoder(rate_hz=100).feed(W.encode_ble_packet(acc_g, [0, 0, 0],
                                                                  [roll, pitch, 70.0]))
    up_sensor = Rotation.from_quat(b.quat[0], scalar_first=True).inv().apply([0, 0, 1.0])
    assert np.allclose(up_sensor * GRAVITY_M_S2, b.acc_m_s2[0], atol=0.01)


def test_ble_stream_resync_counter_time_and_register_replies():
    rng = np.random.default_rng(1)
    acc = rng.uniform(-2, 2, (30, 3))
    gyr = rng.uniform(-500, 500, (30, 3))
    ang = rng.uniform(-170, 170, (30, 3))
    pkts = W.encode_ble_packet(acc, gyr, ang)
    reg = bytes([0x55, 0x71]) + bytes(18)
    stream = b"\x01\x02" + pkts[:200] + reg + b"\x55\x00zz" + pkts[200:]
    dec = W.WitBleDecoder(rate_hz=200)
    got = []
    for i in range(0, len(stream), 13):
        got += dec.feed(stream[i:i + 13])
    acc_m = np.concatenate([b.acc_m_s2 for b in got])
    assert acc_m.shape == (30, 3)
    assert np.abs(acc_m / GRAVITY_M_S2 - acc).max() <= W.ACC_G_PER_LSB
    gyr_d = np.degrees(np.concatenate([b.gyr_rad_s for b in got]))
    assert np.abs(gyr_d - gyr).max() <= W.GYR_DPS_PER_LSB
    t = np.concatenate([b.t_s for b in got])
    assert np.allclose(t, np.arange(30) / 200)
    assert dec.stats.packets == 31 and dec.stats.samples == 30
    assert dec.stats.bytes_skipped == 2 + 4 and dec.stats.resyncs == 2


def test_uart_packets_byte_exact_and_decoded():
    pkt = W.encode_uart_packet(W.UART_ACC, [2048, -2048, 0, 2500])
    assert pkt.hex() == "5551" "0008" "00f8" "0000" "c409" + f"{sum(pkt[:10]) & 0xFF:02x}"
    assert pkt[10] == (0x55 + 0x51 + 0x08 + 0xF8 + 0xC4 + 0x09) & 0xFF
    sample = W.encode_uart_sample([1.0, -1.0, 0.5], [100.0, 0, -100.0], [10.0, 20.0, 30.0])
    (b,) = W.WitUartDecoder(rate_hz=100).feed(sample)
    assert np.allclose(b.acc_m_s2, [[GRAVITY_M_S2, -GRAVITY_M_S2, GRAVITY_M_S2 / 2]])
    assert np.allclose(np.degrees(b.gyr_rad_s), [[100, 0, -100]], atol=W.GYR_DPS_PER_LSB)
    assert np.allclose(b.quat, W.angles_to_quat([10, 20, 30]), atol=1e-4)


def test_uart_stream_with_bad_checksum_and_other_packets():
    rng = np.random.default_rng(2)
    parts = []
    for _ in range(20):
        parts.append(W.encode_uart_packet(W.UART_TIME, [1, 2, 3, 4]))
        parts.append(W.encode_uart_sample(rng.uniform(-1, 1, 3), rng.uniform(-10, 10, 3),
                                          rng.uniform(-90, 90, 3)))
        parts.append(W.encode_uart_packet(W.UART_MAG, [5, 6, 7, 0]))
    bad = bytearray(parts[31])  # the 11th sample: corrupt its gyro packet's checksum
    bad[11 + 10] ^= 0xFF
    parts[31] = bytes(bad)
    stream = b"".join(parts)
    dec = W.WitUartDecoder(rate_hz=50)
    got = []
    for i in range(0, len(stream), 17):
        got += dec.feed(stream[i:i + 17])
    n = sum(len(b) for b in got)
    assert n == 19 and dec.stats.incomplete == 1 and dec.stats.checksum_errors == 1
    assert dec.stats.bytes_skipped == 11


def test_rate_commands():
    assert W.rate_commands(100) == [bytes.fromhex("ffaa6988b5"), bytes.fromhex("ffaa030900"),
                                    bytes.fromhex("ffaa000000")]
    assert W.set_rate_command(200) == bytes.fromhex("ffaa030b00")
    with pytest.raises(ValueError):
        W.set_rate_command(33)


def test_closed_form_angles_match_scipy():
    rng = np.random.default_rng(5)
    ang = rng.uniform(-180, 180, (2000, 3))
    ang[:, 1] /= 2.0  # pitch within ±90
    want = Rotation.from_euler("ZYX", ang[:, ::-1], degrees=True).as_quat(scalar_first=True)
    got = W.angles_to_quat(ang)
    assert np.allclose(np.abs(np.sum(got * want, axis=1)), 1.0, atol=1e-12)  # q ~ -q
    assert np.all(got[:, 0] >= 0)
