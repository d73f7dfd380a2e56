"""Fuzz: no input makes a decoder raise; clean frames survive any garbage between them.

A small profile for ``make test``; the bench fuzz target runs the large one.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dorsimeter.types import GRAVITY_M_S2
from dorsimeter.wire import frames as F
from dorsimeter.wire import metawear, movella, movesense, polar
from dorsimeter.wire import witmotion as W

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _node_stream(n_frames: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_frames):
        n = int(rng.integers(1, 17))
        enc = int(rng.integers(0, 3))
        q = rng.normal(size=(n, 4)) if enc == F.ENC_I16Q else None
        out.append(F.encode_data(i, i * 80_000, rng.normal(0, 9, (n, 3)),
                                 rng.normal(0, 2, (n, 3)), quat=q, encoding=enc, dt_us=5000,
                                 heel=bool(rng.integers(0, 2)) if i % 2 else None))
    return out


def _check_batches(batches):
    for b in batches:
        assert len(b.t_s) == len(b.acc_m_s2) == len(b.gyr_rad_s)
        assert np.all(np.isfinite(b.acc_m_s2)) and np.all(np.isfinite(b.t_s))
        assert np.all(np.isfinite(b.gyr_rad_s))


def _feed_all(dec, data: bytes, cuts: list[int]):
    out = []
    pos = 0
    for c in sorted(set(cuts)) + [len(data)]:
        out += dec.feed(data[pos:c])
        pos = max(pos, c)
    return out


@FAST
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=6))
def test_no_decoder_raises_on_random_bytes(data, cuts):
    for dec in (F.FrameDecoder(), W.WitBleDecoder(100), W.WitUartDecoder(100),
                movella.DotDecoder(60)):
        _check_batches(_feed_all(dec, data, cuts))


#: the decoders fed whole BLE notifications (their unit of input), and how long the random
#: notifications drawn for each may be
NOTIFIED = {"metawear": (lambda: metawear.MetaWearDecoder(100.0), 40),
            "movesense": (lambda: movesense.MovesenseDecoder(104.0), 200),
            "polar": (lambda: polar.PolarDecoder(52), 120)}


@pytest.mark.parametrize("family", sorted(NOTIFIED))
@FAST
@given(data=st.data())
def test_no_notification_makes_a_decoder_raise(family, data):
    make, longest = NOTIFIED[family]
    dec = make()
    for note in data.draw(st.lists(st.binary(max_size=longest), max_size=12)):
        _check_batches(dec.feed(note))


@FAST
@given(st.integers(0, 2**31), st.lists(st.tuples(st.integers(0, 3000), st.binary(max_size=40)),
                                       max_size=5),
       st.lists(st.integers(0, 3000), max_size=5), st.lists(st.integers(0, 3000), max_size=4))
def test_node_decoder_survives_corruption(seed, inserts, flips, cuts):
    clean = b"".join(_node_stream(6, seed % 1000))
    data = bytearray(clean)
    for pos, junk in sorted(inserts, reverse=True):
        data[pos % (len(data) + 1):pos % (len(data) + 1)] = junk
    for pos in flips:
        data[pos % len(data)] ^= 0x5A
    dec = F.FrameDecoder()
    got = _feed_all(dec, bytes(data), cuts)
    _check_batches(got)
    s = dec.stats
    assert s.frames <= 6 + 5 and s.duplicates + s.reordered <= s.frames


@FAST
@given(st.integers(0, 2**31), st.lists(st.binary(min_size=1, max_size=30), max_size=6))
def test_garbage_between_frames_loses_nothing(seed, junks):
    frames = _node_stream(6, seed % 1000)
    data = b""
    for i, f in enumerate(frames):
        junk = junks[i] if i < len(junks) else b""
        data += junk.replace(bytes([F.SYNC]), b"\x00") + f
    dec = F.FrameDecoder()
    got = dec.feed(data)
    assert dec.stats.frames == 6 and dec.stats.lost == 0
    assert dec.stats.bytes_skipped == sum(len(j) for j in junks[:6])
    assert sum(len(b) for b in got) == sum(((f[8] & 0x0F) + 1) for f in frames)


@FAST
@given(st.binary(max_size=300), st.integers(0, 2**31))
def test_witmotion_decoders_survive_noise_around_packets(junk, seed):
    rng = np.random.default_rng(seed % 1000)
    acc_g, gyr_dps = rng.uniform(-2, 2, (5, 3)), rng.uniform(-300, 300, (5, 3))
    angle_deg = rng.uniform(-179, 179, (5, 3))
    ble = W.encode_ble_packet(acc_g, gyr_dps, angle_deg)
    uart = b"".join(W.encode_uart_sample(a, g, e) for a, g, e in zip(acc_g, gyr_dps, angle_deg,
                                                                      strict=True))
    half = len(junk) // 2
    # noise may hold 0x55 headers that swallow a packet: no raise, finite output
    for dec, pkts in ((W.WitBleDecoder(50), ble), (W.WitUartDecoder(50), uart)):
        _check_batches(dec.feed(junk[:half] + pkts + junk[half:]))
    # noise without a header byte: the five samples come out, each equal to what was sent
    clean = junk.replace(bytes([W.HEADER]), b"\x00")
    for dec, pkts in ((W.WitBleDecoder(50), ble), (W.WitUartDecoder(50), uart)):
        got = dec.feed(clean[:half] + pkts + clean[half:])
        _check_batches(got)
        assert sum(len(b) for b in got) == 5 and dec.stats.samples == 5
        acc = np.concatenate([b.acc_m_s2 for b in got]) / GRAVITY_M_S2
        gyr = np.degrees(np.concatenate([b.gyr_rad_s for b in got]))
        quat = np.concatenate([b.quat for b in got])
        assert np.allclose(acc, acc_g, atol=W.ACC_G_PER_LSB / 2 + 1e-9)  # within half an LSB
        assert np.allclose(gyr, gyr_dps, atol=W.GYR_DPS_PER_LSB / 2 + 1e-9)
        dot = np.abs(np.sum(quat * W.angles_to_quat(angle_deg), axis=1))
        assert np.all(dot > 1 - 1e-6)  # the same orientation (angle LSB ≈ 0.0055°)
