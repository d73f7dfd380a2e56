"""Movella DOT custom mode 5 packets and set-up values, byte-exact from the BLE Services
Specification's layouts; resync, wrap, loss and a fuzz like the other decoders'."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dorsimeter.wire import movella as M

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_custom_mode_5_packet_is_the_specifications_layout_and_decodes_to_si():
    # timestamp uint32 µs, quaternion w x y z, acceleration m/s², angular velocity °/s (float32
    # little-endian): 44 bytes, then the long payload's zero padding to 63
    q = [0.5, 0.5, -0.5, 0.5]
    pkt = M.encode_packets([123456], [q], [[0.25, -9.75, 1.5]], [[90.0, 0.0, -45.0]])
    assert pkt == struct.pack("<I10f", 123456, *q, 0.25, -9.75, 1.5, 90.0, 0.0, -45.0) + bytes(19)
    assert pkt[:8].hex() == "40e20100" "0000003f"
    (b,) = M.DotDecoder(60).feed(pkt)
    assert b.t_s.tolist() == [0.0]
    assert b.acc_m_s2.tolist() == [[0.25, -9.75, 1.5]]
    assert np.allclose(b.gyr_rad_s, [[np.pi / 2, 0, -np.pi / 4]])
    assert b.quat is not None and np.allclose(b.quat, [q])


def test_set_up_values_byte_exact():
    assert M.control_command() == bytes([0x01, 0x01, 0x1A])  # measurement, start, mode 26
    assert M.control_command(start=False) == bytes([0x01, 0x00, 0x1A])
    read = bytes([0x00, 0x00, 0x00, 10, 0, 30, 0, 11]) + b"Movella DOT".ljust(16, b"\0") \
        + bytes([60, 0, 0]) + bytes(5)
    assert M.output_rate(read) == 60
    value = M.set_output_rate(read, 30)
    assert value[0] == 0x10 and value[24:26] == bytes([30, 0])  # visit bit 4, rate uint16 LE
    assert value[1:24] == read[1:24] and value[26:] == read[26:]  # the rest as read
    for bad in (100, 120, 0):  # 120 Hz records only; the others are not offered
        with pytest.raises(ValueError, match="1, 4, 10, 12, 15, 20, 30, 60 Hz"):
            M.set_output_rate(read, bad)
    assert M.battery_percent(bytes([83, 1])) == 83 and M.battery_percent(b"") is None


def _stream(n: int, seed: int, t0_us: int = 0, rate_hz: int = 60):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    acc = rng.normal(0, 9, (n, 3))
    gyr = rng.normal(0, 200, (n, 3))
    t = t0_us + np.rint(np.arange(n) * 1e6 / rate_hz).astype(np.int64)
    return t, q, acc, gyr


def test_garbage_splits_wrap_loss_and_repeats():
    t, q, acc, gyr = _stream(40, 1, t0_us=(1 << 32) - 300_000)  # wraps after 18 samples
    pkts = [M.encode_packets(t[i], q[i], acc[i], gyr[i]) for i in range(40)]
    junk = b"\x01\x02\x03" * 5
    # packet 10 lost, packet 20 repeated (the same timestamp), junk before packet 30
    stream = b"".join(pkts[:10] + pkts[11:21] + [pkts[20]] + pkts[21:30] + [junk] + pkts[30:])
    dec = M.DotDecoder(60)
    got = []
    for i in range(0, len(stream), 7):
        got += dec.feed(stream[i:i + 7])
    t_s = np.concatenate([b.t_s for b in got])
    keep = np.r_[0:10, 11:40]
    assert len(t_s) == 39 and dec.stats.samples == 39 and dec.stats.packets == 40
    assert np.allclose(t_s, (t[keep] - t[0]) / 1e6)  # unwrapped across 2^32
    assert dec.stats.lost == 1 and dec.stats.duplicates == 1
    # every byte is a packet's, its notification's padding or skipped (the junk at least)
    assert dec.stats.padding + dec.stats.bytes_skipped == len(stream) - 40 * 44 - len(dec.state.buf)
    assert len(junk) <= dec.stats.bytes_skipped <= len(junk) + 19
    assert np.array_equal(np.concatenate([b.acc_m_s2 for b in got]),
                          acc[keep].astype(np.float32).astype(float))


@FAST
@given(st.integers(0, 2**31), st.lists(st.binary(min_size=1, max_size=50), min_size=6,
                                       max_size=6), st.integers(1, 80))
def test_packets_survive_any_garbage_between_them(seed, junks, chunk):
    t, q, acc, gyr = _stream(6, seed % 1000)
    data = b""
    for i in range(6):
        data += junks[i] + M.encode_packets(t[i], q[i], acc[i], gyr[i], pad=False)
    data += bytes(19)  # the last notification's padding: it ends there (else it waits)
    dec = M.DotDecoder(60)
    got = []
    for i in range(0, len(data), chunk):
        got += dec.feed(data[i:i + chunk])
    assert dec.stats.samples == 6 and dec.stats.lost == 0
    assert dec.stats.bytes_skipped + dec.stats.padding == sum(len(j) for j in junks) + 19 - len(
        dec.state.buf)
    assert np.allclose(np.concatenate([b.acc_m_s2 for b in got]), acc, rtol=1e-6)


def test_a_clock_going_back_is_a_restart_and_time_goes_on():
    t, q, acc, gyr = _stream(10, 5, t0_us=50_000_000)
    t[6:] = np.rint(np.arange(4) * 1e6 / 60).astype(np.int64) + 200_000  # powered up again
    dec = M.DotDecoder(60)
    got = dec.feed(M.encode_packets(t, q, acc, gyr))
    assert [len(b) for b in got] == [6, 4] and [b.restart for b in got] == [False, True]
    t_s = np.concatenate([b.t_s for b in got])
    assert np.allclose(np.diff(t_s), 1 / 60, atol=2e-6)  # unbroken device time
    assert dec.stats.restarts == 1 and dec.stats.duplicates == 0 and dec.stats.lost == 0
