"""The firmware's pure-Python encoder and the host's numpy encoder/decoder agree byte for byte."""

from __future__ import annotations

import binascii

import numpy as np
import pytest

from dorsimeter.wire import frames as F
from firmware_bridge import wire


def test_firmware_crc_matches_binascii():
    rng = np.random.default_rng(0)
    for n in (0, 1, 9, 100, 333):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert wire.crc16(data) == binascii.crc_hqx(data, 0xFFFF)


@pytest.mark.parametrize("enc", [wire.ENC_I16, wire.ENC_P12, wire.ENC_I16Q])
@pytest.mark.parametrize("n", [1, 2, 16])
@pytest.mark.parametrize("heel", [None, False, True])
def test_encoders_agree_byte_exactly(enc, n, heel):
    rng = np.random.default_rng(n * 10 + enc)
    acc = rng.normal(0, 20, (n, 3))
    gyr = rng.normal(0, 3, (n, 3))
    acc[0, 0] = 1e6  # saturates
    gyr[-1, 2] = np.nan  # becomes 0
    q = rng.normal(0, 1, (n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    quat = q if enc == wire.ENC_I16Q else None
    samples = [(acc[i].tolist(), gyr[i].tolist(), None if quat is None else quat[i].tolist())
               for i in range(n)]
    fw = wire.encode_data(65535, 0xFFFFFFFF, samples, enc, dt_us=5000, heel=heel)
    host = F.encode_data(65535, 0xFFFFFFFF, acc, gyr, quat=quat, heel=heel, encoding=enc,
                         dt_us=5000)
    assert fw == host
    (b,) = F.FrameDecoder().feed(fw)
    assert len(b) == n and b.seq[0] == 65535
    assert np.isclose(b.t_s[0], 0xFFFFFFFF * 1e-6)
    if heel is None:
        assert b.heel_contact is None
    else:
        assert b.heel_contact.tolist() == [float(heel)] * n


def test_messages_agree_and_command_reader():
    assert wire.encode_response(7, wire.CMD_BATTERY, 0, b"\x55\x10\x0f", 123) == \
        F.encode_response(7, F.CMD_BATTERY, 0, b"\x55\x10\x0f", 123)
    st = F.NodeStatus(3, 200, 50, 3800, 9, 1)
    assert wire.encode_status(4, 99, 3, 200, 50, 3800, 9, 1) == F.encode_status(4, st, 99)
    cmds = F.encode_set_rate(1, 200) + b"\xd5garbage" + F.encode_command(2, F.CMD_STOP)
    r = wire.FrameReader()
    got = r.feed(cmds[:5]) + r.feed(cmds[5:])
    assert [(m[0], m[1], m[3]) for m in got] == [(2, 1, b"\x01\xc8\x00"), (2, 2, b"\x03")]


def test_infinities_saturate_symmetrically_instead_of_raising():
    frame = wire.encode_data(0, 0, [((float("inf"), float("-inf"), float("nan")),
                                     (1e30, -1e30, 0.0), None)], wire.ENC_I16)
    ((b,),) = [F.FrameDecoder().feed(frame)]
    lim_acc, lim_gyr = 32767 * 0.0025, 32767 * 0.001
    assert b.acc_m_s2[0].tolist() == pytest.approx([lim_acc, -lim_acc, 0.0])
    assert b.gyr_rad_s[0].tolist() == pytest.approx([lim_gyr, -lim_gyr, 0.0])
