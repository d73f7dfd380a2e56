"""Memory: max RSS of ``analyze`` (plain, ``--offline``, ``--clip-axis``) and ``export`` on a
10 h 200 Hz raw recording (7.2 M samples), as ``/usr/bin/time -v`` reports it.

The recording is the speed bench's 2 simulated minutes (stance, calibration drives, wall-test
reps, realistic BMI270 errors) repeated to 10 h with continuous timestamps, written by
:class:`RawCsvWriter` (the recorder's own writer) into ``DIR/raw10h.csv`` (owner-only). It is
made once and kept: ``python -m bench.bench_memory --dir DIR [--hours H] [--rows analyze,...]``
reuses a file already there. ``--windows MINUTES`` instead compares the windowed offline
fusion with the whole stretch fused at once (tibia angle, every rep's score; goal < 0.01°).
``export`` needs a stored session: ``record --sensor replay:FILE
--speed 0`` stores one from the same file (``DIR/home``), once: slow (the replay pushes
10-sample batches, as a BLE source does; ~35 min for 10 h on a loaded 2-core machine), so
``--hours 1 --rows export`` is the quick check, and export is measured only when asked.
Target: every row under 500 MB. Each analyze row takes minutes (the file is parsed twice:
checked, then analysed).

Measured (2026-12-02, 10 h, 2 loaded cores): ``analyze`` 349 MB, ``--clip-axis`` 347 MB,
``--offline`` 459 MB (3,498 MB before the windows); ``export`` of a 1 h session 121 MB; windows
vs whole, 60 min: tibia angle within 0.0034°, every one of 554 reps the same, scores within
0.0016°.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RATE_HZ = 200.0
PART_S = 120.0
TARGET_MB = 500.0
ROWS = ("analyze", "offline", "clip-axis", "export")


def make_raw(path: Path, hours: float) -> None:
    """``hours`` of the 2-minute simulated part, tiled with continuous timestamps."""
    from dorsimeter.io.rawcsv import RawCsvWriter
    from dorsimeter.sim import SensorErrors, ShankSim
    from dorsimeter.types import ImuBatch

    errors = SensorErrors.realistic("bmi270", RATE_HZ, seed=0)
    part = ShankSim(rate_hz=RATE_HZ, errors=errors, seed=0).generate(int(PART_S * RATE_HZ))
    m = len(part)
    reps = int(round(hours * 3600.0 / PART_S))
    tmp = path.with_suffix(".part")
    tmp.unlink(missing_ok=True)
    with RawCsvWriter(tmp) as w:
        for k in range(reps):
            t = (k * m + np.arange(m)) / RATE_HZ
            for i in range(0, m, 10_000):
                w.write(ImuBatch(t[i:i + 10_000], part.acc_m_s2[i:i + 10_000],
                                 part.gyr_rad_s[i:i + 10_000], side="left"), "left")
    os.chmod(tmp, 0o600)
    tmp.rename(path)


def windows_vs_whole(t: np.ndarray, acc: np.ndarray, gyr: np.ndarray, rate_hz: float) -> dict:
    """``analyze --offline``'s windowed fusion (``offline_chunks``, as the command streams it)
    against the whole stretch fused at once (``pipeline.analyze``), through the same
    calibration and Pipeline: max |difference| of the tibia angle, of every rep's score (held
    end range) and peak, and whether the reps are the same ones."""
    from dorsimeter.io.rawcsv import CHUNK_ROWS, RawRecording
    from dorsimeter.pipeline import Pipeline, analyze, calibrate_recording
    from dorsimeter.pipeline.offline import offline_chunks
    from dorsimeter.types import Readings

    n = len(t)
    rec = RawRecording(t, acc, gyr, None, np.full(n, "left", dtype=object), False)
    cals = calibrate_recording(rec.chunks(), rate_hz, sides={"left"})
    whole_ev: list = []
    whole = analyze(rec, cals, offline=True, events=whole_ev)
    pipe = Pipeline(rate_hz, cals, quat_is_ours=True)
    parts, win_ev = [], []
    pieces = offline_chunks((rec.slice(i, i + CHUNK_ROWS) for i in range(0, n, CHUNK_ROWS)),
                            rate_hz, cals)
    for piece in pieces:
        for b in piece.batches():
            for i in range(0, len(b), CHUNK_ROWS):
                r, ev = pipe.push(b.slice(i, i + CHUNK_ROWS))
                parts.append(r)
                win_ev += ev
    win = Readings.concat(parts)
    reps_w = [e.rep for e in whole_ev if e.kind == "rep" and e.rep is not None]
    reps_s = [e.rep for e in win_ev if e.kind == "rep" and e.rep is not None]
    same = [(a.t_start_s, a.t_end_s, a.valid) == (b.t_start_s, b.t_end_s, b.valid)
            for a, b in zip(reps_w, reps_s, strict=False)]
    scored = [(a, b) for a, b in zip(reps_w, reps_s, strict=False)
              if a.end_range_deg is not None and b.end_range_deg is not None]
    return {
        "minutes": n / rate_hz / 60.0,
        "angle_deg": float(np.max(np.abs(win.tibia_angle_deg - whole.tibia_angle_deg))),
        "reps": (len(reps_w), len(reps_s), sum(same)),
        "score_deg": max((abs(a.end_range_deg - b.end_range_deg) for a, b in scored),
                         default=0.0),
        "peak_deg": max((abs(a.peak_deg - b.peak_deg) for a, b in zip(reps_w, reps_s,
                                                                        strict=False)),
                        default=0.0),
        "n_scored": len(scored),
    }


def windows_row(minutes: float, seed: int = 1) -> int:
    """The ``--windows`` row: one continuous simulation (not tiled: VQF's memory runs through
    it), generated a minute at a time."""
    from dorsimeter.sim import SensorErrors, ShankSim

    sim = ShankSim(rate_hz=RATE_HZ, errors=SensorErrors.realistic("bmi270", RATE_HZ, seed=seed),
                   seed=seed)
    parts = [sim.generate(int(60 * RATE_HZ)) for _ in range(int(round(minutes)))]
    res = windows_vs_whole(np.concatenate([p.t_s for p in parts]),
                           np.concatenate([p.acc_m_s2 for p in parts]),
                           np.concatenate([p.gyr_rad_s for p in parts]), RATE_HZ)
    whole, win, same = res["reps"]
    print(f"windowed vs whole-stretch offline fusion, {res['minutes']:.0f} min at {RATE_HZ:g} Hz "
          f"(seed {seed}): max |tibia angle difference| {res['angle_deg']:.4f}°, reps "
          f"{whole} / {win} ({same} the same), max |score difference| {res['score_deg']:.4f}° "
          f"over {res['n_scored']} scored, max |peak difference| {res['peak_deg']:.4f}°")
    return 0 if whole == win == same and res["angle_deg"] < 0.01 else 1


def max_rss_mb(argv: list[str], env: dict) -> tuple[float, float, int]:
    """(max RSS in MB, wall s, exit code) of ``argv`` under ``/usr/bin/time -v``."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    if m is None:
        raise RuntimeError(f"no max RSS in /usr/bin/time's output: {p.stderr[-500:]}")
    if p.returncode != 0:
        print(p.stdout[-2000:], p.stderr[-2000:], file=sys.stderr)
    return int(m.group(1)) / 1024.0, wall, p.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_memory")
    ap.add_argument("--dir", default="/tmp/dorsimeter-bench-memory",
                    help="where the recording (and the export's store) are kept")
    ap.add_argument("--hours", type=float, default=10.0)
    ap.add_argument("--rows", default="analyze,offline,clip-axis",
                    help="comma-separated, of: " + ", ".join(ROWS) + " (export: on request, its "
                         "stored session takes long to make)")
    ap.add_argument("--windows", type=float, metavar="MINUTES", default=0.0,
                    help="instead: the windowed offline fusion against the whole stretch on a "
                         "continuous simulated recording this long (realistic shin, 200 Hz)")
    args, _ = ap.parse_known_args(argv or [])  # `python -m bench` passes every module's
    if args.windows:
        return windows_row(args.windows)
    rows = [r for r in args.rows.split(",") if r]
    d = Path(args.dir)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    raw = d / f"raw{args.hours:g}h.csv"
    if not raw.exists():
        t0 = time.perf_counter()
        make_raw(raw, args.hours)
        print(f"made {raw} ({raw.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s",
              flush=True)
    env = dict(os.environ)
    cli = [sys.executable, "-m", "dorsimeter.cli"]
    out = d / "out"
    out.mkdir(mode=0o700, exist_ok=True)
    cmds = {
        "analyze": ["analyze", str(raw), "--out", str(out / "plain.csv"), "--force"],
        "offline": ["analyze", str(raw), "--offline", "--out", str(out / "offline.csv"),
                    "--force"],
        "clip-axis": ["analyze", str(raw), "--clip-axis", "--out", str(out / "clip.csv"),
                      "--force"],
    }
    home = d / "home"
    if "export" in rows and not (home / ".stored").exists():
        t0 = time.perf_counter()
        rec = d / "stored.csv"
        rec.unlink(missing_ok=True)
        subprocess.run([*cli, "record", "--sensor", f"replay:{raw}", "--speed", "0",
                        "--duration", f"{args.hours * 3600 + 60:g}", "--out", str(rec),
                        "--home", str(home)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        (home / ".stored").touch()
        print(f"stored the session in {home} in {time.perf_counter() - t0:.0f} s", flush=True)
    cmds["export"] = ["export", "latest", "--format", "csv", "--out", str(out / "export"),
                      "--home", str(home)]
    print(f"max RSS on {raw.name} ({args.hours:g} h at {RATE_HZ:g} Hz), target < {TARGET_MB:g} MB")
    failed = False
    for row in rows:
        if row == "export":
            import shutil

            shutil.rmtree(out / "export", ignore_errors=True)
        mb, wall, rc = max_rss_mb([*cli, *cmds[row]], env)
        ok = rc == 0 and mb < TARGET_MB
        failed |= not ok
        print(f"  {row:<10} {mb:7.0f} MB  {wall:6.0f} s  exit {rc}  "
              f"{'ok' if ok else 'OVER' if rc == 0 else 'FAILED'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
