"""Fuzz properties of every decoder, shared by ``test_fuzz`` (small) and ``bench_fuzz`` (large).

Each property takes what hypothesis draws (seeds, corruption operations, read splits) and checks,
beyond "never raises": the decoder resynchronises (every frame whose bytes were left intact is
decoded, exactly), counts what it lost, and accounts for every byte it was given.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dorsimeter.wire import frames as F
from dorsimeter.wire import witmotion as W

CALLS = {"node": 0, "wit_ble": 0, "wit_uart": 0, "random": 0}  # cases run, for the bench


# ------------------------------------------------------------------ building blocks
def node_frames(seed: int, n_frames: int) -> list[bytes]:
    """Valid DATA frames of every encoding, sizes 1..16, heel on/off, seq crossing the wrap."""
    rng = np.random.default_rng(seed)
    seq0 = int(rng.integers(0, 65536))
    t_us = int(rng.integers(0, 2**32))
    out = []
    for i in range(n_frames):
        n = int(rng.integers(1, 17))
        enc = int(rng.integers(0, 3))
        q = rng.normal(size=(n, 4)) if enc == F.ENC_I16Q else None
        heel = None if rng.random() < 0.5 else bool(rng.integers(0, 2))
        out.append(F.encode_data(seq0 + i, t_us, rng.normal(0, 9, (n, 3)),
                                 rng.normal(0, 2, (n, 3)), quat=q, encoding=enc, dt_us=5000,
                                 heel=heel))
        t_us += n * 5000
    return out


def corrupt(packets: list[bytes], ops) -> tuple[bytes, np.ndarray]:
    """Apply ``ops`` (kind, position, junk) to the joined packets; which packets stay intact.

    ``flip`` xors one byte, ``cut`` deletes ``len(junk)`` bytes (a truncated frame), ``insert``
    puts ``junk`` in. A packet is intact if no op touched its bytes (an insert exactly at its
    boundary leaves it intact).
    """
    bounds = np.cumsum([0] + [len(p) for p in packets])
    total = int(bounds[-1])
    intact = np.ones(len(packets), dtype=bool)
    data = bytearray(b"".join(packets))
    edits = []
    taken: list[tuple[int, int]] = []  # byte ranges already edited: edits never overlap

    def free(lo: int, hi: int) -> bool:
        if any(lo < b and a < hi for a, b in taken):
            return False
        taken.append((lo, hi))
        return True

    for kind, pos, junk in ops:
        pos = pos % (total + 1)
        if kind == "flip" and pos < total:
            if not free(pos, pos + 1):
                continue
            edits.append((pos, "flip", junk))
            intact[np.searchsorted(bounds, pos, side="right") - 1] = False
        elif kind == "cut" and pos < total and junk:
            n = min(len(junk), total - pos)
            if not free(pos, pos + n):
                continue
            edits.append((pos, "cut", n))
            first = np.searchsorted(bounds, pos, side="right") - 1
            last = np.searchsorted(bounds, pos + n - 1, side="right") - 1
            intact[first:last + 1] = False
        elif kind == "insert":
            if not free(pos, pos + 1):
                continue
            edits.append((pos, "insert", junk))
            k = np.searchsorted(bounds, pos, side="right") - 1
            if k < len(packets) and pos != bounds[k]:
                intact[k] = False
    # apply from the end so positions stay valid
    for pos, kind, arg in sorted(edits, key=lambda e: (e[0], e[1] != "insert"), reverse=True):
        if kind == "flip":
            data[pos] ^= (arg[0] if arg and arg[0] else 0x5A)
        elif kind == "cut":
            del data[pos:pos + arg]
        else:
            data[pos:pos] = arg
    return bytes(data), intact


def feed_split(dec, data: bytes, cuts) -> list:
    """Feed ``data`` split at ``cuts``; check each call's output and the counters' monotony."""
    out, pos = [], 0
    before = dec.stats.as_dict()
    for c in sorted({int(c) % (len(data) + 1) for c in cuts}) + [len(data)]:
        got = dec.feed(data[pos:c])
        pos = max(pos, c)
        for b in got:
            assert len(b.t_s) == len(b.acc_m_s2) == len(b.gyr_rad_s) > 0
            assert np.all(np.isfinite(b.t_s)) and np.all(np.isfinite(b.acc_m_s2))
            assert np.all(np.isfinite(b.gyr_rad_s))
            assert b.quat is None or np.all(np.isfinite(b.quat))
        now = dec.stats.as_dict()
        assert all(now[k] >= before[k] for k in now), (before, now)  # counters only grow
        before = now
        out += got
    return out


# ------------------------------------------------------------------ strategies
OPS = st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert"]), st.integers(0, 10_000),
                         st.binary(min_size=1, max_size=24)), max_size=6)
CUTS = st.lists(st.integers(0, 10_000), max_size=8)
SEED = st.integers(0, 2**32 - 1)


# ------------------------------------------------------------------ properties
def check_node(seed: int, ops, cuts) -> None:
    """FrameDecoder: intact frames all decoded, in order; the destroyed ones counted as lost."""
    CALLS["node"] += 1
    packets = node_frames(seed, 6)
    # junk without the SYNC byte: junk holding ``D5 11`` can rebuild the frame it was inserted
    # into (found by this very test); any bytes at all are ``check_random``'s business
    ops = [(k, p, j.replace(bytes([F.SYNC]), b"\x00") if k == "insert" else j)
           for k, p, j in ops]
    data, intact = corrupt(packets, ops)
    dec = F.FrameDecoder()
    got = feed_split(dec, data, cuts)
    # every intact frame comes through, exactly once and in order; a damaged frame may too
    # when the damage spared its CRC-covered bytes (a cut that removed only its SYNC byte where
    # the byte before happens to be 0xD5: found by the bench's 100,000 cases)
    seq_of = np.array([int.from_bytes(p[2:4], "little") for p in packets])
    n_smp = np.array([(p[8] & 0x0F) + 1 for p in packets])
    got_seq = np.concatenate([b.seq for b in got]) if got else np.empty(0, dtype=np.int64)
    assert np.all(np.diff(got_seq) >= 0)
    frames_seen = np.unique(got_seq)
    assert set(seq_of[intact].tolist()) <= set((frames_seen & 0xFFFF).tolist())
    assert dec.stats.frames == len(frames_seen) <= len(packets)
    assert dec.stats.samples == sum(len(b) for b in got)  # nothing duplicated or dropped late
    assert dec.stats.samples == int(n_smp[np.isin(seq_of, frames_seen & 0xFFFF)].sum())
    if len(frames_seen):
        assert dec.stats.lost == int(frames_seen[-1] - frames_seen[0] + 1 - len(frames_seen))
        assert dec.stats.lost_samples <= dec.stats.lost * 16
        t = np.concatenate([b.t_s for b in got])
        assert np.all(np.diff(t) > 0)
    assert dec.stats.restarts == 0 and dec.stats.duplicates == 0


def _wit_values(seed: int, n: int):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-15, 15, (n, 3)), rng.uniform(-1900, 1900, (n, 3)),
            rng.uniform(-179, 179, (n, 3)))


def check_wit_ble(seed: int, ops, cuts) -> None:
    """WitBleDecoder (no checksum): every byte accounted for; intact packets after sync-free
    junk decoded exactly."""
    CALLS["wit_ble"] += 1
    acc, gyr, ang = _wit_values(seed, 8)
    packets = [W.encode_ble_packet(acc[i], gyr[i], ang[i]) for i in range(8)]
    data, _ = corrupt(packets, ops)
    dec = W.WitBleDecoder(100.0)
    feed_split(dec, data, cuts)
    s = dec.stats
    assert s.bytes_skipped + W.BLE_PACKET_BYTES * s.packets + len(dec.state.buf) == len(data)
    # junk with the header byte removed cannot fake a packet: all 8 come through, exactly
    clean = b""
    for i, p in enumerate(packets):
        junk = ops[i][2].replace(bytes([W.HEADER]), b"") if i < len(ops) else b""
        clean += junk + p
    dec = W.WitBleDecoder(100.0)
    got = feed_split(dec, clean, cuts)
    assert dec.stats.samples == 8
    a = np.concatenate([b.acc_m_s2 for b in got])
    assert np.max(np.abs(a / W.GRAVITY_M_S2 - acc)) <= 0.5 * W.ACC_G_PER_LSB + 1e-9


def check_wit_uart(seed: int, ops, cuts) -> None:
    """WitUartDecoder (sum checksum): every byte accounted for; intact sample cycles decoded."""
    CALLS["wit_uart"] += 1
    acc, gyr, ang = _wit_values(seed, 8)
    packets = [W.encode_uart_sample(acc[i], gyr[i], ang[i]) for i in range(8)]
    data, intact = corrupt(packets, ops)
    dec = W.WitUartDecoder(100.0)
    got = feed_split(dec, data, cuts)
    s = dec.stats
    assert s.bytes_skipped + W.UART_PACKET_BYTES * s.packets + len(dec.state.buf) == len(data)
    # an intact cycle (acc, gyro, angle) is a sample; the last one may wait for the next 0x51
    n = sum(len(b) for b in got)
    assert n >= int(intact[:-1].sum())
    assert n <= 8 + sum(len(j) for _, _, j in ops) // W.UART_PACKET_BYTES


def check_random(data: bytes, cuts) -> None:
    """Any bytes at all, any split: no decoder raises and output is well formed."""
    CALLS["random"] += 1
    for dec in (F.FrameDecoder(), W.WitBleDecoder(100.0), W.WitUartDecoder(100.0)):
        feed_split(dec, data, cuts)
