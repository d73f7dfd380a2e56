"""Soak: one simulated hour at 200 Hz from two sensors with faults injected throughout.

Each sensor is a simulated shank (left and right leg) framed by the node's wire protocol, 8
samples a frame, delivered in reads of ~16 frames. Throughout the hour: bursty loss (2 % of
frames, bursts of 4), corrupted frames (0.5 %, a flipped byte: CRC error), duplicated frames
(0.5 %), reordered frames (1 %, within a read), junk bytes between frames (0.2 %); the left
sensor's µs clock wraps 20 min in (and its sequence wraps too), the right one runs 100 ppm fast
and power-cycles at 30 min (sequence and clock restart). The live path is the real one:
FrameDecoder → Pipeline → RawCsvWriter, processing as it goes (the simulator generates a minute
at a time, so nothing grows with the hour).

Reported: resident memory at the start, every 10 min and at the end; samples lost beyond those
injected (must be 0) and each fault as the decoder counted it against what was injected; and
whether the live readings are identical (bit for bit, SHA-256 of every value) to an offline
re-analysis of the recorded raw CSV: through the same Pipeline calibrating as it goes, and as
``dorsimeter analyze`` does it (calibrate from the file first). ``DORSIMETER_SOAK_S`` shortens the
hour for a quick look. Run: ``python -m bench.bench_soak``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dorsimeter.io.rawcsv import RawCsvWriter, read_raw_csv
from dorsimeter.pipeline import Pipeline, analyze, calibrate_recording
from dorsimeter.sim import ShankSim
from dorsimeter.types import Readings
from dorsimeter.wire import frames as F

RATE_HZ = 200.0
HOUR_S = float(os.environ.get("DORSIMETER_SOAK_S", 3600.0))
CHUNK_S = 60.0
PER_FRAME = 8
READ_FRAMES = 16
LOSS, BURST, CORRUPT, DUP, SWAP, JUNK = 0.02, 4.0, 0.005, 0.005, 0.01, 0.002


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Sensor:
    """One simulated node and its faults; counters of what was injected."""

    side: str
    seed: int
    t0_us: int
    clock_ppm: float = 0.0
    restart_at_s: float | None = None
    sent: int = 0  # samples the node produced
    lost: int = 0  # samples in frames lost or corrupted (injected)
    lost_frames: int = 0
    corrupted: int = 0
    dups: int = 0
    swaps: int = 0
    restarts: int = 0
    seq: int = 0
    dev_offset_us: int = 0
    bad: bool = False  # Gilbert-Elliott state
    rng: np.random.Generator = field(init=False)
    sim: ShankSim = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed + 99)
        self.sim = ShankSim(rate_hz=RATE_HZ, side=self.side, seed=self.seed)
        self.seq = int(self.rng.integers(0, 65536))
        self.dev_offset_us = self.t0_us

    def reads(self, seconds: float) -> tuple[list[bytes], object]:
        """The next ``seconds`` as reads (bytes) with every fault applied; and the samples."""
        b = self.sim.generate(int(round(seconds * RATE_HZ)))
        self.sent += len(b)
        scale = 1.0 + self.clock_ppm * 1e-6
        dt_us = int(round(1e6 / RATE_HZ * scale))
        t_dev = np.rint(b.t_s * 1e6 * scale).astype(np.int64)
        frames: list[tuple[bytes, int, bool]] = []  # (frame, samples, protected)
        for i in range(0, len(b), PER_FRAME):
            t_first = float(b.t_s[i])
            if self.restart_at_s is not None and t_first >= self.restart_at_s and \
                    self.restarts == 0:
                # power cycle: sequence from 0, device clock from 0.3 s; nothing lost here
                self.restarts += 1
                self.seq = 0
                self.dev_offset_us = 300_000 - int(t_dev[i])
                protect = 12
            else:
                protect = max(0, getattr(self, "_protect", 0) - 1)
            self._protect = protect
            j = min(i + PER_FRAME, len(b))
            frame = F.encode_data(self.seq, int(t_dev[i] + self.dev_offset_us),
                                  b.acc_m_s2[i:j], b.gyr_rad_s[i:j], dt_us=dt_us)
            self.seq = (self.seq + 1) & 0xFFFF
            frames.append((frame, j - i, protect > 0 or self._near_restart(t_first)))
        out: list[bytes] = []
        r = self.rng
        for k in range(0, len(frames), READ_FRAMES):
            group = frames[k:k + READ_FRAMES]
            keep: list[bytes] = []
            broken: set[bytes] = set()  # frames not to reorder: corrupted, or at a restart
            for frame, n, protected in group:
                p_exit = 1.0 / BURST
                p_enter = LOSS * p_exit / (1.0 - LOSS)
                self.bad = (r.random() >= p_exit) if self.bad else (r.random() < p_enter)
                if self.bad and not protected:
                    self.lost += n
                    self.lost_frames += 1
                    continue
                if r.random() < CORRUPT and not protected:
                    data = bytearray(frame)
                    data[int(r.integers(9, len(data) - 2))] ^= 0x5A  # payload byte: CRC fails
                    keep.append(bytes(data))
                    broken.add(keep[-1])
                    self.lost += n
                    self.lost_frames += 1
                    self.corrupted += 1
                    continue
                keep.append(frame)
                if protected:
                    broken.add(frame)  # no reordering around a restart (a reboot can't be)
                if r.random() < DUP:
                    keep.append(frame)
                    self.dups += 1
            # adjacent swaps inside the read (never a duplicate pair), repaired by the decoder
            swapped = -2
            for m in range(len(keep) - 1):
                if r.random() < SWAP and m > swapped + 1 and keep[m] != keep[m + 1] and \
                        (m == 0 or keep[m - 1] != keep[m]) and \
                        keep[m] not in broken and keep[m + 1] not in broken:
                    keep[m], keep[m + 1] = keep[m + 1], keep[m]  # one frame arrives late
                    self.swaps += 1
                    swapped = m
            data = b""
            for frame in keep:
                if r.random() < JUNK:
                    junk = r.integers(0, 256, int(r.integers(1, 30)), dtype=np.uint8).tobytes()
                    data += junk.replace(bytes([F.SYNC]), b"\x00")
                data += frame
            out.append(data)
        return out, b

    def _near_restart(self, t_s: float) -> bool:
        """No loss just before the restart: a receiver cannot see loss at an epoch's end."""
        return self.restart_at_s is not None and self.restart_at_s - 0.5 <= t_s < \
            self.restart_at_s


class Digest:
    """SHA-256 of every reading's time, angle and knee track (one hash per column, so the
    digest does not depend on how the readings were batched)."""

    FIELDS = ("t_s", "tibia_angle_deg", "knee_track_deg")

    def __init__(self) -> None:
        self.h = {f: hashlib.sha256() for f in self.FIELDS}
        self.n = 0

    def add(self, r: Readings) -> None:
        if len(r):
            for f in self.FIELDS:
                self.h[f].update(np.ascontiguousarray(getattr(r, f), dtype=np.float64).tobytes())
            self.n += len(r)

    def hexdigest(self) -> str:
        return "".join(self.h[f].hexdigest() for f in self.FIELDS)


def run(hour_s: float = HOUR_S) -> list[str]:
    tmp = Path(tempfile.mkdtemp(prefix="dorsimeter-soak-"))
    sensors = [Sensor("left", 11, t0_us=(1 << 32) - 1_200_000_000),
               Sensor("right", 12, t0_us=5_000_000, clock_ppm=100.0,
                      restart_at_s=hour_s / 2)]
    live = {}
    for s in sensors:
        dec = F.FrameDecoder(side=s.side)
        pipe = Pipeline(RATE_HZ, side=s.side)
        live[s.side] = (dec, pipe, RawCsvWriter(tmp / f"raw-{s.side}.csv"), Digest(), [None, 0])
    t_wall = time.perf_counter()
    rss = [("start", rss_mb())]
    minutes = int(round(hour_s / CHUNK_S))
    for minute in range(minutes):
        for s in sensors:
            dec, pipe, writer, digest, last = live[s.side]
            reads, _ = s.reads(CHUNK_S)
            for data in reads:
                for batch in dec.feed(data):
                    if last[0] is not None and batch.t_s[0] <= last[0]:
                        raise AssertionError(f"{s.side}: device time stepped back")
                    last[0] = float(batch.t_s[-1])
                    last[1] += len(batch)
                    writer.write(batch, s.side)
                    readings, _ = pipe.push(batch)
                    digest.add(readings)
        if (minute + 1) % 10 == 0 or minute + 1 == minutes:
            rss.append((f"{(minute + 1) * CHUNK_S / 60:.0f} min", rss_mb()))
    t_live = time.perf_counter() - t_wall
    for _, _, writer, _, _ in live.values():
        writer.close()
    # offline: re-analyse the recordings through the same pipeline
    rows = []
    t0 = time.perf_counter()
    for s in sensors:
        dec, pipe, _, digest, (_, delivered) = live[s.side]
        rec = read_raw_csv(tmp / f"raw-{s.side}.csv")
        off_pipe = Pipeline(rec.rate_hz, side=s.side)
        off = Digest()
        for b in rec.batches():
            for i in range(0, len(b), 4096):
                off.add(off_pipe.push(b.slice(i, i + 4096))[0])
        # and as `dorsimeter analyze` does it: calibrate from the file, then analyse with that
        cli = Digest()
        cli.add(analyze(rec, calibrate_recording(rec.batches(), rec.rate_hz)))
        st = dec.stats
        beyond = s.sent - s.lost - delivered
        rows.append((s, st, delivered, beyond, len(rec.t_s), digest, off, rec.rate_hz, cli))
    t_off = time.perf_counter() - t0
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    lines = [f"one simulated hour ({hour_s:.0f} s) at {RATE_HZ:.0f} Hz, two sensors: "
             f"live {t_live:.1f} s, offline re-analysis {t_off:.1f} s"]
    lines.append(f"{'':26s} {'left':>14s} {'right':>14s}")

    def row(label, fn):
        lines.append(f"{label:26s} " + " ".join(f"{fn(r):>14}" for r in rows))

    row("samples sent", lambda r: r[0].sent)
    row("lost (injected)", lambda r: r[0].lost)
    row("lost (decoder counted)", lambda r: r[1].lost_samples)
    row("delivered", lambda r: r[2])
    row("lost beyond injected", lambda r: r[3])
    # a corrupted frame is one CRC error, or two when a 0xD5 in its payload looked like the
    # start of a frame as well
    row("frames corrupted / CRC", lambda r: f"{r[0].corrupted} / {r[1].crc_errors}")
    row("duplicates inj / counted", lambda r: f"{r[0].dups} / {r[1].duplicates}")
    row("reordered inj / counted", lambda r: f"{r[0].swaps} / {r[1].reordered}")
    row("late-dropped", lambda r: r[1].late_dropped)
    row("restarts inj / counted", lambda r: f"{r[0].restarts} / {r[1].restarts}")
    row("junk bytes skipped", lambda r: r[1].bytes_skipped)
    row("raw CSV rows", lambda r: r[4])
    row("readings live", lambda r: r[5].n)
    row("readings offline", lambda r: r[6].n)
    row("offline rate_hz", lambda r: f"{r[7]:g}")
    row("identical (SHA-256)", lambda r: "yes" if r[5].hexdigest() == r[6].hexdigest()
        and r[5].n == r[6].n else "NO")
    row("= `dorsimeter analyze`", lambda r: "yes" if r[5].hexdigest() == r[8].hexdigest()
        and r[5].n == r[8].n else f"NO ({r[8].n})")
    lines.append("resident memory (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss))
    lines.append(f"memory growth over the hour: {rss[-1][1] - rss[1][1]:+.1f} MB after the "
                 f"first 10 min, {rss[-1][1] - rss[0][1]:+.1f} MB in all")
    ok = all(r[3] == 0 and r[0].lost == r[1].lost_samples and r[5].hexdigest() ==
             r[6].hexdigest() and r[5].n == r[6].n and r[0].dups == r[1].duplicates
             and r[0].restarts == r[1].restarts and r[0].swaps == r[1].reordered
             and r[0].corrupted <= r[1].crc_errors <= 2 * r[0].corrupted
             and r[5].hexdigest() == r[8].hexdigest() for r in rows)
    lines.append("soak: " + ("PASS" if ok else "FAIL"))
    return lines


def main() -> int:
    lines = run()
    for line in lines:
        print(line, flush=True)
    return 0 if lines[-1].endswith("PASS") else 1


if __name__ == "__main__":
    sys.exit(main())
