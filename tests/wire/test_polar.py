"""Polar Measurement Data: frames and control-point values, byte-exact from Polar's documents
and the example frames in polarofficial/polar-ble-sdk; pairing, loss and a fuzz."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dorsimeter.types import GRAVITY_M_S2
from dorsimeter.wire import polar as P
from tests.emulators.polar import delta_frame_content

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# "Polar Measurement Data Specification for 3rd Party", "Delta frame sample example from Polar
# Verity Sense (Acc data as example)": reference D0 FF 65 01 E4 0F, 8-bit deltas, the first two
SPEC_DELTA = bytes.fromhex("d0ff6501e40f" "0802" "fc07ff" "0c13f2")
# polar-ble-sdk, Android tests, GyrDataTest "process gyro compressed data type 0"
SDK_GYRO_FRAME = bytes.fromhex("05" "ffffffffffffff7f" "80" "eaff08000d00" "0301" "df00")
# polar-ble-sdk, Android tests, AccDataTest "process acc compressed data type 0" (Verity: G)
SDK_ACC_CONTENT = bytes.fromhex(
    "7107f06a9e8d0a38be5cbeba2f96b3ee4be5adfb42b9ebbe4cfeba2f92bfee4be4b1fb12b9ecbd3c3ebb2f8fd3"
    "de4be3b5f7d2b8edbd307e7b2f8be3ce8be2baf7a2b8eebc20be7b2f88f3cecbe1bdef52f8efbc18fe3b2f8403"
    "bfcbe0c2ef32b8f0bb044ebc2e8113af0be0c6eff2f7f1b9fc7dbc2e7d279f4bdfcaebc2f7f2b8eccd7c2e7b37"
    "8f4bdecee392f7f3b8e00dfd2d774b7fcbddd2df6237f5b7d44dbd2d745b6fcbdcd7d73237f6b5c88d7d2d716b"
    "4f4bdcdcd3f236f7b4bcddfd2c6f7b3f4bdbe0cfd236f8b2b02dbe2c6c8f1fcbdae3c7a276f9")


def test_the_specifications_delta_frame_example():
    v = P.parse_delta(SPEC_DELTA)
    assert v is not None
    assert v.tolist() == [[-48, 357, 4068], [-52, 364, 4067], [-40, 383, 4053]]


def test_the_sdks_gyro_and_acc_example_frames():
    frame = SDK_GYRO_FRAME
    assert frame[0] == P.GYRO and int.from_bytes(frame[1:9], "little") == 2**63 - 1
    v = P.parse_delta(frame[10:])
    assert v is not None and v.tolist() == [[-22, 8, 13], [-23, 11, 16]]
    acc = P.parse_delta(SDK_ACC_CONTENT)
    assert acc is not None and acc.shape == (57, 3)
    assert acc[0].tolist() == [1905, 27376, -29282]
    assert acc[1].tolist() == [1905 + 190, 27376 - 105, -29282 - 85]
    # in G times the factor: within the ±8 g range, as the SDK's test checks
    assert np.all(np.abs(acc * P.ACC_FACTOR_G) <= 8)
    g = P.frame_values(P.ACC, 0x80, SDK_ACC_CONTENT)
    assert g is not None and np.allclose(g, acc * 8 / 32768 * GRAVITY_M_S2)


def test_uncompressed_acc_frames_in_mg():
    content = struct.pack("<6h", -9, -1, 999, -8, -2, 997)  # AccDataTest type 1's first samples
    v = P.frame_values(P.ACC, 1, content)
    assert v is not None and np.allclose(v, [[-0.009, -0.001, 0.999], [-0.008, -0.002, 0.997]]
                                         * np.array(GRAVITY_M_S2))
    assert P.frame_values(P.ACC, 1, content[:-1]) is None  # not whole samples


def test_commands_byte_exact():
    assert P.start_command(P.SDK_MODE) == bytes.fromhex("0209")
    assert P.start_command(P.ACC, 52, 8) == bytes.fromhex("0202" "00013400" "01011000" "02010800"
                                                           "040103")
    assert P.imu_start_commands(104) == [
        bytes.fromhex("0209"), bytes.fromhex("0202000168000101100002010800040103"),
        bytes.fromhex("020500016800010110000201e803040103")]
    with pytest.raises(ValueError, match="26, 52, 104, 208, 416 Hz, not 100"):
        P.imu_start_commands(100)
    assert P.stop_command(P.ACC) == bytes.fromhex("0302")


def test_responses_settings_and_features():
    # polar-ble-sdk PmdSettingTest: 52 Hz, 16 bits, ranges 245/500/1000/2000, 3 channels
    params = bytes.fromhex("000134000101100002 04f500f401e803d007 040103".replace(" ", ""))
    assert P.parse_settings(params) == {0: [52.0], 1: [16.0], 2: [245.0, 500.0, 1000.0, 2000.0],
                                        4: [3.0]}
    assert P.parse_settings(params[:-1]) is None
    factor = bytes([5, 1]) + struct.pack("<f", 8 / 32768)
    ok = P.parse_response(bytes.fromhex("f002020000") + factor)
    assert ok is not None and ok.ok and ok.op == 2 and ok.measurement == P.ACC
    assert P.parse_settings(ok.params) == {5: [pytest.approx(8 / 32768)]}
    bad = P.parse_response(bytes.fromhex("f002050800"))
    assert bad is not None and not bad.ok and bad.error() == "invalid sample rate"
    assert P.parse_response(bytes.fromhex("0102")) is None  # "measurement stopped", no response
    assert P.features(bytes.fromhex("0f6e02")) == {1, 2, 3, 5, 6, 9}


def _frames(rate, n_frames, per, seed, t0_ns=10**17, gyro_offset_frames=0):
    rng = np.random.default_rng(seed)
    period = 10**9 // rate
    raw_a = np.cumsum(rng.integers(-300, 300, (n_frames * per, 3)), axis=0)
    raw_g = np.cumsum(rng.integers(-300, 300, (n_frames * per, 3)), axis=0)
    acc, gyr = [], []
    for f in range(n_frames):
        sl = slice(f * per, (f + 1) * per)
        t_last = t0_ns + ((f + 1) * per - 1) * period
        acc.append(P.encode_frame(P.ACC, t_last, 0x80, delta_frame_content(raw_a[sl])))
        if f >= gyro_offset_frames:
            gyr.append(P.encode_frame(P.GYRO, t_last, 0x80, delta_frame_content(raw_g[sl])))
    return acc, gyr, raw_a, raw_g


def test_acc_and_gyro_paired_on_the_clock_with_lost_frames_counted():
    acc, gyr, raw_a, raw_g = _frames(52, 8, 10, 1, gyro_offset_frames=1)
    dec = P.PolarDecoder(52)
    order = []
    for i in range(8):  # gyro frames come a little after ACC's; ACC frame 4 is lost
        if i != 4:
            order.append(acc[i])
        if i >= 1:
            order.append(gyr[i - 1])
    order.insert(3, b"\x02garbage!")
    got = [b for f in order for b in dec.feed(f)]
    t = np.concatenate([b.t_s for b in got])
    acc_si = np.concatenate([b.acc_m_s2 for b in got])
    k = np.rint(t * 52).astype(int)
    # the gyro started a frame late; ACC frame 4 (samples 40-49) missing: both are needed
    want = np.r_[10:40, 50:80]
    assert k.tolist() == want.tolist()
    assert np.allclose(acc_si, raw_a[want] * P.ACC_FACTOR_G * GRAVITY_M_S2)
    assert np.allclose(np.degrees(np.concatenate([b.gyr_rad_s for b in got])),
                       raw_g[want] * P.GYR_FACTOR_DPS)
    assert dec.stats.lost == 10 and dec.stats.samples == 60
    assert dec.stats.bytes_skipped == 9 and dec.stats.frames == 14


def test_other_measurements_are_ignored_not_garbage():
    dec = P.PolarDecoder(52)
    assert dec.feed(P.encode_frame(1, 5, 0, bytes(12))) == []  # a PPG frame
    assert dec.stats.ignored == 1 and dec.stats.bytes_skipped == 0


@FAST
@given(st.integers(0, 2**31), st.lists(st.binary(min_size=1, max_size=40), max_size=8),
       st.integers(2, 30))
def test_frames_survive_garbage_notifications_between_them(seed, junk, per):
    acc, gyr, raw_a, _ = _frames(52, 4, per, seed % 1000)
    dec = P.PolarDecoder(52)
    notes = [x for pair in zip(acc, gyr, strict=True) for x in pair]
    for i, j in enumerate(junk):  # any junk notification: anything but a whole ACC/gyro frame
        notes.insert(min(2 * i, len(notes)), bytes([0x3F]) + j)
    got = [b for n in notes for b in dec.feed(n)]
    assert dec.stats.samples == 4 * per and dec.stats.lost == 0
    assert np.allclose(np.concatenate([b.acc_m_s2 for b in got]),
                       raw_a * P.ACC_FACTOR_G * GRAVITY_M_S2)


def test_a_restart_setting_the_clock_back_goes_on_and_is_marked():
    acc, gyr, raw_a, _ = _frames(52, 3, 10, 2, t0_ns=10**17)
    acc2, gyr2, raw_a2, _ = _frames(52, 2, 10, 3, t0_ns=10**15)  # the default time again
    dec = P.PolarDecoder(52)
    got = [b for f in (acc[0], gyr[0], acc[1], gyr[1], acc[2], gyr[2], acc2[0], gyr2[0],
                       acc2[1], gyr2[1]) for b in dec.feed(f)]
    t = np.concatenate([b.t_s for b in got])
    assert len(t) == 50 and np.allclose(np.diff(t), 1 / 52, atol=1e-6)  # on, unbroken
    assert [b.restart for b in got] == [False, False, False, True, False]
    assert dec.stats.restarts == 2 and dec.stats.late == 0 and dec.stats.lost == 0
    assert np.allclose(np.concatenate([b.acc_m_s2 for b in got])[30:],
                       raw_a2 * P.ACC_FACTOR_G * GRAVITY_M_S2)
