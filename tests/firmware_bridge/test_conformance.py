"""The conformance vectors (``hardware_docs/conformance_vectors.json``) hold for the host's
encoder and decoder and for the firmware's encoder, under CPython and under MicroPython."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from dorsimeter.wire import frames as F
from firmware_bridge import wire
from tests.firmware_bridge import conformance as C
from tests.firmware_bridge.test_on_micropython import MICROPYTHON, ROOT, WORLD

VECTORS = C.build()["vectors"]


def test_the_vector_file_is_current():
    assert C.PATH.read_text() == C.text()  # else: python -m tests.firmware_bridge.conformance


def _rows(v, key):
    return None if v[key] is None else np.array([[float(x) for x in r] for r in v[key]])


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_firmware_encoder_gives_the_vector_bytes(v):
    quat = _rows(v, "quat_wxyz")
    samples = [(a, g, None if quat is None else q) for a, g, q in
               zip(_rows(v, "acc_m_s2"), _rows(v, "gyr_rad_s"),
                   quat if quat is not None else [None] * len(v["acc_m_s2"]), strict=True)]
    got = wire.encode_data(v["seq"], v["t_us"], samples, v["encoding"], v["dt_us"], v["heel"])
    assert got.hex() == v["frame_hex"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_host_decoder_reads_back_the_rounded_saturated_values(v):
    (batch,) = F.FrameDecoder().feed(bytes.fromhex(v["frame_hex"]))
    enc = v["encoding"]
    bits = 12 if enc == F.ENC_P12 else 16
    lim = (1 << (bits - 1)) - 1

    def expect(x, lsb, b=bits):
        lim_b = (1 << (b - 1)) - 1
        return np.clip(np.rint(np.nan_to_num(x / lsb, posinf=lim_b, neginf=-lim_b)),
                       -lim_b, lim_b) * lsb

    assert lim in (2047, 32767)
    assert np.allclose(batch.acc_m_s2, expect(_rows(v, "acc_m_s2"), F.ACC_LSB_M_S2[enc]),
                       rtol=0, atol=1e-12)
    assert np.allclose(batch.gyr_rad_s, expect(_rows(v, "gyr_rad_s"), F.GYR_LSB_RAD_S[enc]),
                       rtol=0, atol=1e-12)
    if v["quat_wxyz"] is not None:
        q = expect(_rows(v, "quat_wxyz"), F.QUAT_LSB, 16)  # the decoder returns it normalised
        assert np.allclose(batch.quat, q / np.linalg.norm(q, axis=1, keepdims=True),
                           rtol=0, atol=1e-7)
    n = len(v["acc_m_s2"])
    assert len(batch) == n
    if n > 1:
        assert np.allclose(np.diff(batch.t_s), v["dt_us"] * 1e-6)


def test_firmware_encoder_under_micropython_gives_every_vector_byte_for_byte(tmp_path):
    env = dict(os.environ, MICROPYPATH=f"{WORLD}:{ROOT}")
    p = subprocess.run([str(MICROPYTHON), str(WORLD / "conformance_check.py"), str(C.PATH)],
                       capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")[:-1]
    assert len(lines) == len(VECTORS) and all(x.startswith("ok ") for x in lines), lines


def test_float32_firmware_and_double_host_agree_within_one_step():
    """The ESP32-S3's MicroPython computes in float32: emulate its quantisation (division and
    round half to even in float32) against the host's double, over every scale."""
    rng = np.random.default_rng(32)
    x = rng.uniform(-80, 80, 100_000)
    for lsb, bits in [(0.0025, 16), (0.001, 16), (0.02, 12), (0.004, 12), (F.QUAT_LSB, 16)]:
        lim = (1 << (bits - 1)) - 1
        q64 = np.clip(np.rint(x / lsb), -lim, lim)
        q32 = np.clip(np.rint(np.float32(x) / np.float32(lsb)), -lim, lim)
        d = np.abs(q64 - q32)
        assert d.max() <= 1 and (d > 0).mean() < 0.005, (lsb, d.max(), (d > 0).mean())
    # worked example 1 in protocol.md: a tie in double, not in float32
    assert 9.81 / 0.02 == 490.5 and round(9.81 / 0.02) == 490
    assert np.rint(np.float32(9.81) / np.float32(0.02)) == 491


@pytest.mark.parametrize("vt,info", [(0x11, 0x30), (0x15, 0), (0x10, 0), (0x21, 0x00)],
                         ids=["encoding 3", "type 5", "type 0", "version 2"])
def test_reserved_values_are_dropped_by_the_host_and_the_firmware(vt, info):
    body = bytes((vt,)) + (1).to_bytes(2, "little") + (1000).to_bytes(4, "little") + bytes((info,))
    body += bytes(12 if vt & 0x0F == 1 else info)
    frame = bytes((F.SYNC,)) + body + F.crc16(body).to_bytes(2, "little")
    dec = F.FrameDecoder()
    assert dec.feed(frame) == [] and dec.messages == [] and dec.stats.frames == 0
    assert wire.FrameReader().feed(frame) == []
