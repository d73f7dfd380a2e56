"""The protocol's conformance vectors (``hardware_docs/conformance_vectors.json``): sample values
and the DATA frame bytes they must give, for anyone writing an encoder or a decoder.

``python -m tests.firmware_bridge.conformance`` rewrites the file from the host encoder; the tests
check that it is current, that the firmware's encoder (CPython and MicroPython) gives the same
bytes, and that the host decoder reads the values back. Cases: every encoding, one and many
samples, heel absent/up/down, exact rounding ties (half to even), values at and beyond the
range (symmetric saturation, ±inf), NaN, sequence and time at their wrap.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from dorsimeter.wire import frames as F

PATH = Path(__file__).resolve().parents[2] / "hardware_docs" / "conformance_vectors.json"


def _num(x: float):
    """JSON has no inf/NaN: they are written as strings."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _tie(k: int, lsb: float) -> float:
    """A value whose quotient by ``lsb`` is exactly j + 0.5 in double precision, for the first
    j from k on (away from zero) where one exists within 16 ulps of (j + 0.5)·lsb."""
    step = 1 if k >= 0 else -1
    for j in range(k, k + 200 * step, step):
        x0 = (j + 0.5) * lsb
        for d in range(-16, 17):
            x = x0 + d * math.ulp(x0)
            if x / lsb == j + 0.5:
                return x
    raise ValueError(f"no exact tie from {k} on")


def cases() -> list[dict]:
    rng = np.random.default_rng(14)
    out = []

    def add(name, enc, acc, gyr, quat=None, seq=1, t_us=1000, dt_us=0, heel=None):
        out.append({"name": name, "encoding": enc, "seq": seq, "t_us": t_us, "dt_us": dt_us,
                    "heel": heel, "acc_m_s2": acc, "gyr_rad_s": gyr, "quat_wxyz": quat})

    for enc in (F.ENC_I16, F.ENC_P12):
        la, lg = F.ACC_LSB_M_S2[enc], F.GYR_LSB_RAD_S[enc]
        bits = 12 if enc == F.ENC_P12 else 16
        lim = (1 << (bits - 1)) - 1
        add(f"enc{enc} worked-example values", enc, [[9.81, -0.02, 0.04]],
            [[0.004, -0.008, 1.0]], seq=0x1234, t_us=0x89ABCDEF)
        add(f"enc{enc} ties round half to even", enc,
            [[_tie(2, la), _tie(3, la), _tie(-2, la)]],
            [[_tie(-3, lg), _tie(0, lg), _tie(-1, lg)]])
        add(f"enc{enc} at and beyond the range: symmetric saturation", enc,
            [[lim * la, (lim + 7) * la, -(lim + 1) * la]],
            [[1e300, -1e300, -lim * lg]])
        add(f"enc{enc} inf saturates, NaN is 0", enc, [[math.inf, -math.inf, math.nan]],
            [[math.nan, 0.0, -0.0]])
        n = 16 if enc == F.ENC_I16 else 5
        add(f"enc{enc} {n} samples, heel down, seq and time at their wrap", enc,
            rng.normal(0, 5, (n, 3)).round(6).tolist(), rng.normal(0, 2, (n, 3)).round(6).tolist(),
            seq=0xFFFF, t_us=0xFFFFFFFF, dt_us=9615, heel=True)
        add(f"enc{enc} 2 samples, heel up", enc, [[0.0, 0.0, 9.80665], [0.1, 0.2, 9.7]],
            [[0.0, 0.0, 0.0], [0.01, -0.01, 0.02]], dt_us=5000, heel=False)
    q = (np.array([0.9, 0.1, -0.2, 0.3]) / np.linalg.norm([0.9, 0.1, -0.2, 0.3])).tolist()
    add("enc2 quaternion", F.ENC_I16Q, [[0.8, -2.1, 9.5]], [[0.12, -0.34, 0.05]], quat=[q])
    add("enc2 quaternion at ±1 and ties", F.ENC_I16Q, [[0.0, 0.0, 9.81]] * 2,
        [[0.0, 0.0, 0.0]] * 2, quat=[[1.0, -1.0, _tie(4, F.QUAT_LSB), _tie(-5, F.QUAT_LSB)],
                                     [2.0, math.nan, 0.0, 0.0]], dt_us=10000)
    return out


def _value(x) -> float:
    return float(x) if not isinstance(x, str) else float(x)


def encode_host(c: dict) -> bytes:
    acc = np.array([[_value(v) for v in row] for row in c["acc_m_s2"]])
    gyr = np.array([[_value(v) for v in row] for row in c["gyr_rad_s"]])
    quat = None if c["quat_wxyz"] is None else np.array(
        [[_value(v) for v in row] for row in c["quat_wxyz"]])
    return F.encode_data(c["seq"], c["t_us"], acc, gyr, quat, heel=c["heel"],
                         encoding=c["encoding"], dt_us=c["dt_us"])


def build() -> dict:
    vectors = []
    for c in cases():
        c = dict(c, frame_hex=encode_host(c).hex())
        for key in ("acc_m_s2", "gyr_rad_s", "quat_wxyz"):
            if c[key] is not None:
                c[key] = [[_num(float(v)) for v in row] for row in c[key]]
        vectors.append(c)
    return {"about": "DATA frames for given sample values (hardware_docs/protocol.md); values "
                     "'inf', '-inf', 'nan' are IEEE specials. Quantise: round half to even, "
                     "saturate symmetrically to ±(2^(bits-1) - 1), NaN -> 0.",
            "vectors": vectors}


def text() -> str:
    return json.dumps(build(), indent=1) + "\n"


if __name__ == "__main__":
    PATH.write_text(text())
    print(f"wrote {PATH} ({len(build()['vectors'])} vectors)")
