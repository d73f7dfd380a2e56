"""Decode throughput of the wire protocols (samples/s), goal ≥ 1,000,000 samples/s.

Streams are encoded once, then fed to a fresh decoder in 64 KiB chunks (as a serial reader or a
burst of notifications would); the best of three runs is reported, in samples per CPU-second of
this process (``time.process_time``), so that other work on a shared machine does not count.
Also: the firmware's pure-Python frame encoder (CPython here; MicroPython on the ESP32-S3 is
much slower, and only has to keep up with 100-400 samples/s).
Run: ``python -m bench.bench_protocol``.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from dorsimeter.wire import frames as F
from dorsimeter.wire import witmotion as W
from firmware_bridge import wire

GOAL_SAMPLES_S = 1_000_000
CHUNK = 64 * 1024


def _node_stream(n_samples: int, per_frame: int, enc: int, garbage: float = 0.0) -> bytes:
    rng = np.random.default_rng(0)
    acc = rng.normal(0, 5, (n_samples, 3))
    gyr = rng.normal(0, 1, (n_samples, 3))
    quat = rng.normal(0, 1, (n_samples, 4)) if enc == F.ENC_I16Q else None
    parts = []
    for i, k in enumerate(range(0, n_samples, per_frame)):
        sl = slice(k, k + per_frame)
        parts.append(F.encode_data(i, k * 5000, acc[sl], gyr[sl],
                                   quat=None if quat is None else quat[sl], encoding=enc,
                                   dt_us=5000))
        if garbage and rng.random() < garbage:
            parts.append(rng.integers(0, 256, 7, dtype=np.uint8).tobytes())
    return b"".join(parts)


def _time(make_decoder, data: bytes) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(3):
        dec = make_decoder()
        t0 = time.process_time()
        n = 0
        for i in range(0, len(data), CHUNK):
            for b in dec.feed(data[i:i + CHUNK]):
                n += len(b)
        best = min(best, time.process_time() - t0)
    return n / best, n


def cases() -> list[tuple[str, float, int]]:
    """(name, samples/s, samples decoded)."""
    rng = np.random.default_rng(1)
    n = 200_000
    out = []
    for name, data in (
        ("node P12, 1 sample/frame (MTU 23)", _node_stream(n, 1, F.ENC_P12)),
        ("node I16, 16 samples/frame (serial)", _node_stream(n, 16, F.ENC_I16)),
        ("node I16Q, 12 samples/frame (MTU 247)", _node_stream(n, 12, F.ENC_I16Q)),
        ("node P12, 1/frame, 5% frames + garbage", _node_stream(n, 1, F.ENC_P12, 0.05)),
    ):
        rate, got = _time(F.FrameDecoder, data)
        out.append((name, rate, got))
    ble = W.encode_ble_packet(rng.uniform(-2, 2, (n, 3)), rng.uniform(-300, 300, (n, 3)),
                              rng.uniform(-180, 180, (n, 3)))
    out.append(("WitMotion BLE 0x55 0x61", *_time(lambda: W.WitBleDecoder(100), ble)))
    uart = b"".join(W.encode_uart_sample(a, g, ang) for a, g, ang in zip(
        rng.uniform(-2, 2, (n // 4, 3)), rng.uniform(-300, 300, (n // 4, 3)),
        rng.uniform(-180, 180, (n // 4, 3)), strict=True))
    out.append(("WitMotion UART 0x51-0x53", *_time(lambda: W.WitUartDecoder(100), uart)))
    # the firmware encoder (pure Python): samples/s it can frame
    samples = [((0.1, 0.2, 9.8), (0.01, 0.02, 0.03), None)] * 16
    t0 = time.process_time()
    k = 0
    while time.process_time() - t0 < 0.5:
        wire.encode_data(k, k * 80_000, samples, wire.ENC_I16, 5000)
        k += 1
    out.append(("firmware encoder (CPython), 16/frame", k * 16 / (time.process_time() - t0),
                k * 16))
    return out


def run() -> list[str]:
    """The table, one line per case, for ``python -m bench``."""
    rows = cases()
    lines = ["protocol decode throughput (goal ≥ 1,000,000 samples/s for the decoders)",
             f"{'case':44s} {'samples/s':>14s} {'samples':>9s}  goal"]
    for name, rate, n in rows:
        goal = "" if name.startswith("firmware") else ("ok" if rate >= GOAL_SAMPLES_S
                                                       else "MISSED")
        lines.append(f"{name:44s} {rate:14,.0f} {n:9d}  {goal}")
    return lines


def main() -> int:
    """Prints the table; exit status 1 if a decoder misses the goal."""
    lines = run()
    for line in lines:
        print(line)
    return 1 if any(line.endswith("MISSED") for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
