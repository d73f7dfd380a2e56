"""Our wire protocol: byte-exact vectors, round trips, resync, loss/dups/reorder, time unwrap."""

from __future__ import annotations

import binascii

import numpy as np
import pytest

from dorsimeter.wire import frames as F


def _frames(n_frames, n=1, enc=F.ENC_P12, seq0=0, t0_us=0, dt_us=5000, seed=0):
    rng = np.random.default_rng(seed)
    acc = rng.normal(0, 5, (n_frames * n, 3))
    gyr = rng.normal(0, 1, (n_frames * n, 3))
    out = []
    for i in range(n_frames):
        sl = slice(i * n, (i + 1) * n)
        out.append(F.encode_data(seq0 + i, t0_us + i * n * dt_us, acc[sl], gyr[sl],
                                 encoding=enc, dt_us=dt_us))
    return out, acc, gyr


def test_crc_is_ccitt_false_check_value():
    assert F.crc16(b"123456789") == 0x29B1


def test_vectorised_crc_matches_binascii():
    a = np.frombuffer(bytes(range(256)) * 3, np.uint8)
    starts = np.array([0, 1, 100, 300])
    for m in (1, 8, 17, 200, 330):
        want = [binascii.crc_hqx(bytes(a[s:s + m]), 0xFFFF) for s in starts]
        assert F._crc_many(a, starts, m).tolist() == want


def test_data_frame_byte_exact_vector():
    # one sample, compact encoding: the frame that fits the default ATT MTU of 23
    frame = F.encode_data(0x1234, 0x89ABCDEF, [[9.81, -0.02, 0.04]], [[0.004, -0.008, 1.0]],
                          encoding=F.ENC_P12)
    # sync, v1 DATA, seq, t_us, info (1 sample, P12), pairs of 12-bit fields as 24-bit LE, CRC
    assert frame.hex() == "d5" "11" "3412" "efcdab89" "10" "eaf1ff" "021000" "feaf0f" "1cc0"
    assert binascii.crc_hqx(frame[1:-2], 0xFFFF) == 0xC01C
    assert len(frame) == 20
    # fields: acc 9.81/0.02 = 490.5 -> 490 (0x1EA), -1 (0xFFF), 2 (0x002)
    packed = int.from_bytes(frame[9:18], "little")
    fields = [(packed >> (12 * k)) & 0xFFF for k in range(6)]
    assert fields == [0x1EA, 0xFFF, 0x002, 0x001, 0xFFE, 0x0FA]


def test_i16_byte_exact_vector():
    frame = F.encode_data(1, 2, [[1.0, -1.0, 0.0025]], [[0.001, -0.001, 32.767]])
    assert frame[:9].hex() == "d51101000200000000"
    # 400, -400, 1, 1, -1, 32767
    assert frame[9:21].hex() == "9001" "70fe" "0100" "0100" "ffff" "ff7f"
    assert int.from_bytes(frame[-2:], "little") == F.crc16(frame[1:-2])


@pytest.mark.parametrize("enc,tol_acc,tol_gyr", [(F.ENC_I16, 0.00125, 0.0005),
                                                 (F.ENC_P12, 0.01, 0.002)])
def test_round_trip_any_split(enc, tol_acc, tol_gyr):
    frames, acc, gyr = _frames(50, n=3, enc=enc)
    stream = b"".join(frames)
    dec = F.FrameDecoder()
    got = []
    for i in range(0, len(stream), 7):
        got += dec.feed(stream[i:i + 7])
    t = np.concatenate([b.t_s for b in got])
    assert np.allclose(t, np.arange(150) * 0.005)
    a = np.concatenate([b.acc_m_s2 for b in got])
    g = np.concatenate([b.gyr_rad_s for b in got])
    assert np.abs(a - np.clip(acc, -40.9, 40.9)).max() <= tol_acc + 1e-9
    assert np.abs(g - gyr).max() <= tol_gyr + 1e-9
    assert dec.stats.frames == 50 and dec.stats.samples == 150
    assert dec.stats.bytes_skipped == 0 and dec.stats.crc_errors == 0 and dec.stats.lost == 0


def test_quaternion_and_heel():
    q = np.array([[0.9238795, 0.3826834, 0.0, 0.0]] * 2)
    frame = F.encode_data(3, 0, np.zeros((2, 3)), np.zeros((2, 3)), quat=q, heel=True, dt_us=10)
    (b,) = F.FrameDecoder().feed(frame)
    assert np.allclose(b.quat, q, atol=1e-4)
    assert b.heel_contact.tolist() == [1.0, 1.0]
    assert np.allclose(b.t_s, [0.0, 1e-5])


def test_resync_after_garbage_counts_bytes():
    frames, _, _ = _frames(10)
    garbage = bytes([F.SYNC, 0x11, 0x00, 0xFF, 0x13]) + b"\x00" * 20
    stream = garbage + b"".join(frames[:5]) + b"\xd5\xd5xyz" + b"".join(frames[5:])
    dec = F.FrameDecoder()
    n = sum(len(b) for b in dec.feed(stream))
    assert n == 10
    assert dec.stats.bytes_skipped == len(garbage) + 5
    assert dec.stats.resyncs == 2


def test_corrupt_frame_is_a_crc_error_and_the_rest_survives():
    frames, _, _ = _frames(6)
    bad = bytearray(frames[2])
    bad[12] ^= 0x40
    dec = F.FrameDecoder()
    got = dec.feed(b"".join([frames[0], frames[1], bytes(bad), *frames[3:]]))
    seq = np.concatenate([b.seq for b in got])
    assert seq.tolist() == [0, 1, 3, 4, 5]
    assert dec.stats.crc_errors == 1 and dec.stats.lost == 1
    assert dec.stats.bytes_skipped == len(bad)


def test_loss_duplicates_and_reordering_counted_exactly():
    frames, _, _ = _frames(300, seq0=65_400)  # crosses the uint16 sequence wrap
    rng = np.random.default_rng(3)
    order = [i for i in range(300) if rng.random() > 0.1]  # ~10 % lost
    lost = max(order) - min(order) + 1 - len(order)  # a decoder can't see loss at the ends
    assert lost >= 20
    # 5 adjacent swaps (each makes exactly one frame late), then 7 duplicates
    for j in (50, 90, 130, 170, 210):
        order[j], order[j + 1] = order[j + 1], order[j]
    for k in range(7):
        j = 20 + 30 * k
        order.insert(j, order[j - 1])
    swaps = 5
    dec = F.FrameDecoder()
    got = []
    for i in order:
        got += dec.feed(frames[i])
    assert dec.stats.duplicates == 7
    assert dec.stats.reordered == swaps
    assert dec.stats.lost == lost
    seq = np.concatenate([b.seq for b in got])
    # delivered once each, in order (late frames from an earlier feed are dropped)
    assert np.all(np.diff(seq) > 0)
    assert len(seq) == len(set(order)) - dec.stats.late_dropped


def test_reorder_within_one_feed_is_repaired():
    frames, _, _ = _frames(5)
    dec = F.FrameDecoder()
    got = dec.feed(b"".join([frames[0], frames[2], frames[1], frames[3], frames[4]]))
    seq = np.concatenate([b.seq for b in got])
    assert seq.tolist() == [0, 1, 2, 3, 4]
    assert dec.stats.reordered == 1 and dec.stats.lost == 0 and dec.stats.late_dropped == 0


def test_device_time_unwraps_across_uint32_wrap():
    t0 = (1 << 32) - 30_000  # 30 ms before the wrap
    frames, _, _ = _frames(20, n=2, t0_us=t0, dt_us=5000)
    wrapped = [f for f in frames]  # encoder masks t_us to 32 bits
    dec = F.FrameDecoder()
    t = np.concatenate([b.t_s for f in wrapped for b in dec.feed(f)])
    assert np.allclose(t, (t0 + np.arange(40) * 5000) * 1e-6)


def test_restart_continues_time_and_resets_sequence():
    a, _, _ = _frames(10, t0_us=50_000_000, dt_us=10_000)
    b, _, _ = _frames(10, t0_us=0, dt_us=10_000)
    dec = F.FrameDecoder()
    t = np.concatenate([x.t_s for f in a + b for x in dec.feed(f)])
    assert dec.stats.restarts == 1 and dec.stats.lost == 0 and dec.stats.duplicates == 0
    assert np.all(np.diff(t) > 0)


def test_messages_round_trip():
    st = F.NodeStatus(F.STATUS_BOOT | F.STATUS_STREAMING, 200, 87, 3950, 12, 1)
    stream = F.encode_set_rate(9, 200) + F.encode_response(9, F.CMD_SET_RATE, F.ST_OK) + \
        F.encode_status(1, st)
    dec = F.FrameDecoder()
    assert dec.feed(stream) == []
    cmd, resp, status = dec.pop_messages()
    assert (cmd.mtype, cmd.seq, cmd.cmd, cmd.data) == (F.T_COMMAND, 9, F.CMD_SET_RATE,
                                                       (200).to_bytes(2, "little"))
    assert (resp.mtype, resp.cmd, resp.status) == (F.T_RESPONSE, F.CMD_SET_RATE, F.ST_OK)
    assert status.node_status() == st and len(F.encode_status(1, st)) <= 20


def test_frame_sizes_fit_the_mtu():
    assert F.data_frame_bytes(1, F.ENC_P12) == 20
    assert F.max_samples_per_frame(20, F.ENC_P12) == 1
    assert F.max_samples_per_frame(20, F.ENC_I16) == 0
    assert F.max_samples_per_frame(244, F.ENC_I16) == 16
    assert F.max_samples_per_frame(100, F.ENC_I16Q) == 4
    assert F.data_frame_bytes(4, F.ENC_I16Q) <= 100


def _restart_flags(batches):
    """Index (in delivered samples) of every sample marked as the first after a restart."""
    out, n = [], 0
    for b in batches:
        if b.restart:
            out.append(n)
        n += len(b)
    return out


@pytest.mark.parametrize("how", ["clock_back", "boot_status", "short_uptime"])
def test_the_first_batch_after_any_restart_says_so_for_any_split(how):
    """All three ways the decoder notices a restart mark the first sample of the new life, once,
    whatever the byte split; a first connection and lost frames mark nothing."""
    if how == "short_uptime":  # 0.3 s of uptime before the reset: the clock rule cannot tell
        a, _, _ = _frames(30, n=2, t0_us=300_000, dt_us=5000, seed=1)
        b, _, _ = _frames(30, n=2, t0_us=100_000, dt_us=5000, seed=2)
    else:
        a, _, _ = _frames(30, n=2, seq0=700, t0_us=50_000_000, dt_us=5000, seed=1)
        b, _, _ = _frames(30, n=2, t0_us=200_000, dt_us=5000, seed=2)
    del a[10:13]  # loss before the restart: counted, not a restart
    boot = [F.encode_status(0, F.NodeStatus(F.STATUS_BOOT | F.STATUS_STREAMING, 200),
                            t_us=150_000)] if how == "boot_status" else []
    data = b"".join(a + boot + b)
    for cuts in ([len(data)], [1] * len(data), [7, 33, 2, 90] * (len(data) // 100)):
        dec, got, i = F.FrameDecoder(), [], 0
        for n in cuts:
            got += dec.feed(data[i:i + n])
            i += n
        got += dec.feed(data[i:])
        assert dec.stats.restarts == 1 and dec.stats.lost == 3
        assert _restart_flags(got) == [2 * (len(a))]  # the first sample of the new life
    # a decoder told to forget (a new device) marks the next batch too
    dec = F.FrameDecoder()
    first = dec.feed(b"".join(a))
    dec.reset_sequence()
    assert not any(x.restart for x in first) and _restart_flags(dec.feed(b"".join(b))) == [0]
