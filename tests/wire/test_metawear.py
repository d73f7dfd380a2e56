"""The MetaWear register protocol (``wire.metawear``) against the MetaWear C++ SDK's own tests.

Vectors from mbientlab/MetaWear-SDK-Cpp ``test/``: ``test_accelerometer_bmi160.py``
(TestAccBmi160Config, TestBmi160AccelerationData, TestBmi160HighFreqAccData),
``test_accelerometer_bmi270.py`` (TestAccBmi270Config, the BMI270's packed data),
``test_gyro_bmi160.py`` (TestGyroBmi160Config, TestGyroBmi160DataHandler,
TestGyroBmi160HighFreqDataHandler), ``test_settings.py`` (TestSettingsRevision3) and
``common.py`` (the MetaMotionR module info). The SDK's expected values are to 0.001.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dorsimeter.types import GRAVITY_M_S2
from dorsimeter.wire import metawear as W

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_config_bytes_are_the_sdks():
    # TestAccBmi160Config.test_set_odr: 25/50/100/200 Hz at the default ±4 g (code 0x03 is 2 g;
    # the SDK's default range byte there is 0x03)
    assert W.acc_config(25.0, 2) == bytes([0x03, 0x03, 0x26, 0x03])
    assert W.acc_config(50.0, 2) == bytes([0x03, 0x03, 0x27, 0x03])
    assert W.acc_config(200.0, 2) == bytes([0x03, 0x03, 0x29, 0x03])
    assert W.acc_config(100.0, 16) == bytes([0x03, 0x03, 0x28, 0x0C])  # test_set_range
    assert W.acc_config(200.0, 8) == bytes([0x03, 0x03, 0x29, 0x08])  # test_set_odr_and_range
    # TestGyroBmi160Config: 200 Hz (2000 °/s), 250 °/s (100 Hz), 50 Hz + 125 °/s
    assert W.gyro_config(200.0, 2000) == bytes([0x13, 0x03, 0x29, 0x00])
    assert W.gyro_config(100.0, 250) == bytes([0x13, 0x03, 0x28, 0x03])
    assert W.gyro_config(50.0, 125) == bytes([0x13, 0x03, 0x27, 0x04])
    # TestAccBmi270Config: test_set_range (100 Hz, 16 g), test_set_odr_and_range (200 Hz, 8 g)
    assert W.acc_config(100.0, 16, W.BMI270) == bytes([0x03, 0x03, 0xA8, 0x03])
    assert W.acc_config(200.0, 8, W.BMI270) == bytes([0x03, 0x03, 0xA9, 0x02])
    assert W.acc_config(25.0, 8, W.BMI270) == bytes([0x03, 0x03, 0xA6, 0x02])  # test_set_odr


def test_start_commands_are_the_sdks_in_its_order():
    cmds = W.start_commands(100.0)
    assert cmds == [bytes([0x03, 0x03, 0x28, 0x0C]), bytes([0x13, 0x03, 0x28, 0x00]),
                    bytes([0x03, 0x1C, 0x01]),  # TestBmi160HighFreqAccData.test_subscribe
                    bytes([0x13, 0x07, 0x01]),  # TestGyroBmi160HighFreqDataHandler
                    bytes([0x03, 0x02, 0x01, 0x00]),  # test_enable_acceleration_sampling
                    bytes([0x13, 0x02, 0x01, 0x00]),  # test_enable_rotation_sampling
                    bytes([0x03, 0x01, 0x01]),  # mbl_mw_acc_bosch_start
                    bytes([0x13, 0x01, 0x01])]  # test_gyro_active
    # mbl_mw_acc_bosch_stop / test_gyro_inactive, then the data interrupts off
    assert W.stop_commands() == [bytes([0x03, 0x01, 0x00]), bytes([0x13, 0x01, 0x00]),
                                 bytes([0x03, 0x02, 0x00, 0x01]), bytes([0x13, 0x02, 0x00, 0x01])]
    # the BMI270: its acc config byte and packed registers (03 05, 13 05), the rest the same
    assert W.start_commands(100.0, W.BMI270)[:4] == [
        bytes([0x03, 0x03, 0xA8, 0x03]), bytes([0x13, 0x03, 0x28, 0x00]),
        bytes([0x03, 0x05, 0x01]), bytes([0x13, 0x05, 0x01])]
    with pytest.raises(ValueError, match="25, 50, 100, 200 Hz, not 52"):
        W.start_commands(52.0)


def _one(dec: W.MetaWearDecoder, acc: bytes, gyr: bytes):
    assert dec.feed(acc) == []  # waits for its pair
    (b,) = dec.feed(gyr)
    return b


def test_single_samples_decode_to_the_sdks_values():
    # TestBmi160AccelerationData (±4 g): -1.872, -2.919, -1.495 g
    # TestGyroBmi160DataHandler (±500 °/s): 262.409, 499.497, -499.512 °/s
    dec = W.MetaWearDecoder(100.0, range_g=4, range_dps=500)
    b = _one(dec, b"\x03\x04\x16\xc4\x94\xa2\x2a\xd0", b"\x13\x05\x3e\x43\xff\x7f\x00\x80")
    assert np.allclose(b.acc_m_s2 / GRAVITY_M_S2, [[-1.872, -2.919, -1.495]], atol=5e-4)
    assert np.allclose(np.degrees(b.gyr_rad_s), [[262.409, 499.497, -499.512]], atol=5e-4)
    assert b.t_s[0] == 0.0 and b.seq is not None and b.seq[0] == 0


ACC_PACKED_VECTOR = b"\x62\xb7\x53\x0d\xe9\xfd\x16\xd0\x4d\x0e\x57\x02\x8a\xff\xa1\x05\x0a\x01"
GYRO_PACKED_VECTOR = b"\x09\x15\xad\x26\x08\xde\x8a\x1a\x0d\x26\x65\xe4\x8d\x20\xac\x27\x73\xec"


def test_packed_samples_decode_to_the_sdks_values():
    # TestBmi160HighFreqAccData (±8 g), TestGyroBmi160HighFreqDataHandler (±1000 °/s)
    dec = W.MetaWearDecoder(100.0, range_g=8, range_dps=1000)
    b = _one(dec, b"\x03\x1c" + ACC_PACKED_VECTOR, b"\x13\x07" + GYRO_PACKED_VECTOR)
    assert np.allclose(b.acc_m_s2 / GRAVITY_M_S2, [[-4.539, 0.833, -0.131], [-2.995, 0.894, 0.146],
                                                    [-0.029, 0.352, 0.065]], atol=5e-4)
    assert np.allclose(np.degrees(b.gyr_rad_s), [[164.177, 301.860, -265.122],
                                                  [207.134, 296.982, -215.457],
                                                  [254.055, 309.634, -152.591]], atol=5e-4)
    assert np.allclose(b.t_s, [0.0, 0.01, 0.02]) and dec.stats.packets == 2
    # the BMI270's packed acc (``03 05``, TestBmi270HighFreqAccData: the same samples) and its
    # packed gyro (``13 05``, GyroBmi270Register::PACKED_GYRO_DATA): one decoder for both chips
    dec = W.MetaWearDecoder(100.0, range_g=8, range_dps=1000)
    b270 = _one(dec, b"\x03\x05" + ACC_PACKED_VECTOR, b"\x13\x05" + GYRO_PACKED_VECTOR)
    assert np.array_equal(b270.acc_m_s2, b.acc_m_s2) and np.array_equal(b270.gyr_rad_s,
                                                                         b.gyr_rad_s)


def test_battery_and_module_info_replies():
    # TestSettingsRevision3.test_battery_state_data: 4148 mV, 99 %
    assert W.read_command(W.SETTINGS, W.BATTERY_STATE) == bytes([0x11, 0x8C])
    assert W.parse_battery(b"\x11\x8c\x63\x34\x10") == W.BatteryState(99, 4148)
    # common.py: METAWEAR_MOTION_R_BOARD acc 1, gyro 0 (BMI160); MOTION_S acc 4, gyro 1 (BMI270)
    assert W.parse_info(b"\x03\x80\x01\x01") == (0x03, 1, 1)
    assert W.parse_info(b"\x13\x80\x00\x01") == (0x13, 0, 1)
    assert W.chips(1, 0) == W.BMI160 and W.chips(4, 1) == W.BMI270
    assert W.chips(3, 0) is None and W.chips(1, 1) is None  # a BMA255, or a mixed pair
    dec = W.MetaWearDecoder(100.0)
    assert dec.feed(b"\x11\x8c\x63\x34\x10") == [] and dec.feed(b"\x03\x80\x04\x00") == []
    assert dec.state.battery == W.BatteryState(99, 4148) and dec.state.info[3] == (4, 0)
    assert dec.stats.replies == 2 and dec.stats.bytes_skipped == 0


def _packed(module: int, raw: np.ndarray) -> bytes:
    reg = (W.ACC_DATA if module == W.ACC else W.GYRO_DATA)[W.BMI160][1]
    return bytes([module, reg]) + raw.astype("<i2").tobytes()


def test_a_lost_notification_of_one_stream_realigns_the_pairs_and_is_counted():
    rng = np.random.default_rng(3)
    acc = rng.integers(-3000, 3000, (30, 3))
    gyr = acc * 2 + 7  # gyro sample k belongs with acc sample k
    dec = W.MetaWearDecoder(100.0)
    out = []
    for k in range(10):
        out += dec.feed(_packed(W.ACC, acc[3 * k:3 * k + 3]))
        if k != 4:  # the gyro's 5th packet is lost
            out += dec.feed(_packed(W.GYRO, gyr[3 * k:3 * k + 3]))
    a = np.concatenate([b.acc_m_s2 for b in out]) / dec.acc_scale
    g = np.concatenate([b.gyr_rad_s for b in out]) / dec.gyr_scale
    t = np.concatenate([b.t_s for b in out])
    assert dec.stats.lost == 1 and dec.stats.unpaired == 3
    assert np.allclose(g, a * 2 + 7)  # every pair delivered is a true pair
    assert len(a) == 27 and np.allclose(t * 100, np.delete(np.arange(30), [12, 13, 14]))


@FAST
@given(st.integers(0, 2**31), st.lists(st.binary(min_size=1, max_size=30), max_size=10))
def test_garbage_between_notifications_resynchronises_and_every_pair_comes_out(seed, junk):
    rng = np.random.default_rng(seed % 10_000)
    acc = rng.integers(-32768, 32767, (24, 3))
    gyr = rng.integers(-32768, 32767, (24, 3))
    notes = []
    for k in range(8):
        if k < len(junk):  # never a data header of ours
            notes.append(bytes([junk[k][0] | 0x40]) + junk[k][1:])
        notes += [_packed(W.ACC, acc[3 * k:3 * k + 3]), _packed(W.GYRO, gyr[3 * k:3 * k + 3])]
    dec = W.MetaWearDecoder(50.0)
    got = [b for n in notes for b in dec.feed(n)]
    a = np.concatenate([b.acc_m_s2 for b in got]) / dec.acc_scale
    g = np.concatenate([b.gyr_rad_s for b in got]) / dec.gyr_scale
    assert np.allclose(a, acc) and np.allclose(g, gyr) and dec.stats.samples == 24
    assert dec.stats.bytes_skipped == sum(len(j) for j in junk[:8]) and dec.stats.lost == 0
