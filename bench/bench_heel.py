"""Heel-lift detection from the shank IMU alone, on realistic shins.

Every simulated athlete (``--athletes``, default 21: a third each of knee-to-wall drives,
reverse lunges and band mobilisation) has every effect of ``sim.shin`` on, drawn from its seed:
postural sway in every still phase, an oblique talocrural axis, tibial rotation with
dorsiflexion, the clip's soft-tissue wobble after jolts, and an uncalibrated consumer unit
(accelerometer offset up to 40 mg, 1 % scale and cross-axis, gyro bias up to 1 °/s). No box
calibration: what a new user has. The clip sits at a random rotation and height on the shin;
the lever arm comes from the pipeline's own mounting calibration. The data go through the real
``Pipeline`` in 10-sample batches.

Per athlete, two sessions:
- lifting: each rep lifts the heel with probability 0.6, by 2–40 mm (uniform; the foot pitches
  about the metatarsal heads, rise 0.25–0.5 s);
- heel down: the same kind of session with no lift at all.

Metrics (beside the issue-11 targets):
- found: a lift counts as found when the heel-lift flag rises between its start and its end
  (+0.3 s); for lifts ≥ 10 mm at the heel (target ≥ 95 %) and, separately, for smaller ones;
- latency: flag rise − lift start, median and p90 over found lifts ≥ 10 mm;
- false alerts: flag rises in the heel-down sessions after calibration, per 10 minutes of the
  session (movement and rests; target ≤ 1 per 10 min), median and worst athlete; plus flag
  rises in the lifting sessions that no lift explains.
The heel switch and the foot IMU run on a few of the same athletes for comparison.

``python -m bench heel [--athletes N] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import Mount, ShankSim
from dorsimeter.sim.shin import ShinEffects
from dorsimeter.types import Readings

RATE_HZ = 100.0
SCRIPTS = ("wall", "lunge", "mobilisation")
BINS_MM = (2, 4, 6, 8, 10, 15, 20, 30, 40)
CHUNK = 1000  # samples the simulator makes at once (it is much faster in long batches)
BATCH = 10  # samples per pipeline push (a BLE notification or serial frame's worth)


def _sim(script: str, seed: int, lifts: bool, **channels) -> ShankSim:
    rng = np.random.default_rng(1000 + seed)
    mount = Mount(height_m=float(rng.uniform(0.10, 0.25)),
                  anterior_m=float(rng.uniform(0.02, 0.05)),
                  clip_rotation_deg=tuple(float(x) for x in rng.uniform(-20, 20, 2))  # pyright: ignore[reportArgumentType]
                  + (float(rng.uniform(0, 360)),))
    spec = ShankSim(script=script, effects=ShinEffects()).spec
    if lifts:
        spec = spec.with_(lift_prob=0.6, lift_range_m=(0.002, 0.040))
    return ShankSim(rate_hz=RATE_HZ, script=spec, seed=seed, mount=mount,
                    effects=ShinEffects(), **channels)


def _stream(sim: ShankSim, seconds: float) -> tuple[Readings, np.ndarray, np.ndarray, float]:
    """Readings, the true heel height (m) and its times, and when calibration completed."""
    pipe = Pipeline(RATE_HZ)
    parts, lift, t = [], [], []
    t_cal = np.inf
    for _ in range(int(seconds * RATE_HZ) // CHUNK):
        big = sim.generate(CHUNK)
        lift.append(big.truth["heel_lift_m"])  # pyright: ignore[reportOptionalSubscript]
        t.append(big.t_s)
        for i in range(0, CHUNK, BATCH):
            r, events = pipe.push(big.slice(i, i + BATCH))
            parts.append(r)
            t_cal = min([t_cal] + [e.t_s for e in events if e.kind == "calibrated"])
    return Readings.concat(parts), np.concatenate(t), np.concatenate(lift), t_cal


def _rises(r: Readings) -> np.ndarray:
    f = r.heel_lift.astype(int)
    idx = np.flatnonzero(np.diff(np.concatenate([[0], f])) == 1)
    return r.t_s[idx]


def _score_lifts(sim: ShankSim, r: Readings, t_truth, lift_truth, t_cal: float):
    """Per lift: (height m, found, latency from start s, latency from 10 mm s); and the
    number of flag rises no lift explains."""
    rises = _rises(r)
    used = np.zeros(len(rises), dtype=bool)
    out = []
    for rep in sim.counted_reps(until_s=float(r.t_s[-1]) - 1.0):
        if rep.lift_m <= 0 or rep.lift_start_s < t_cal + 2.0:  # pyright: ignore[reportOptionalOperand]
            continue
        hit = (rises >= rep.lift_start_s) & (rises <= rep.lift_end_s + 0.3)  # pyright: ignore[reportOptionalOperand]
        used |= hit
        over = t_truth[(t_truth >= rep.lift_start_s) & (lift_truth >= 0.010)]
        if hit.any():
            first = float(rises[hit][0])
            out.append((rep.lift_m, True, first - rep.lift_start_s,  # pyright: ignore[reportOperatorIssue]
                        first - float(over[0]) if len(over) else np.nan))
        else:
            out.append((rep.lift_m, False, np.nan, np.nan))
    spurious = int(np.sum(~used & (rises > t_cal + 2.0)))
    return out, spurious


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench heel", description=__doc__.split("\n")[0])  # pyright: ignore[reportOptionalMemberAccess]
    ap.add_argument("--athletes", type=int, default=21, help="simulated athletes (21)")
    ap.add_argument("--seconds", type=float, default=150.0,
                    help="length of each session, s (150)")
    args = ap.parse_args([] if argv is None else argv)
    t0 = time.perf_counter()
    lifts, quiet = [], []
    spurious_lifting, minutes_lifting = 0, 0.0
    print(f"{args.athletes} simulated athletes, every shin effect on, no box calibration; "
          f"{args.seconds:.0f} s lifting and {args.seconds:.0f} s heel-down session each",
          flush=True)
    for k in range(args.athletes):
        script = SCRIPTS[k % len(SCRIPTS)]
        sim = _sim(script, k, lifts=True)
        r, t, h, t_cal = _stream(sim, args.seconds)
        if not np.isfinite(t_cal):
            print(f"  athlete {k:2d} {script:>12}: no mounting calibration, skipped", flush=True)
            continue
        got, spur = _score_lifts(sim, r, t, h, t_cal)
        lifts += [(script, k, *g) for g in got]
        spurious_lifting += spur
        minutes_lifting += (float(r.t_s[-1]) - t_cal - 2.0) / 60.0
        sim = _sim(script, k, lifts=False)
        rq, _, _, tq = _stream(sim, args.seconds)
        n = int(np.sum(_rises(rq) > tq + 2.0)) if np.isfinite(tq) else 0
        minutes = (float(rq.t_s[-1]) - tq - 2.0) / 60.0 if np.isfinite(tq) else 0.0
        quiet.append((script, k, minutes, n))
        big = [g for g in got if g[0] >= 0.010]
        print(f"  athlete {k:2d} {script:>12}: {sum(g[1] for g in big)} of {len(big)} lifts "
              f"≥ 10 mm found, {spur} unexplained; heel down: {n} alerts in {minutes:.1f} min",
              flush=True)

    others: dict[str, list] = {"heel_switch": [], "foot_imu": []}
    for k, script in enumerate(SCRIPTS):  # the better sources, on three athletes
        for channel in others:
            sim = _sim(script, 500 + k, lifts=True, **{channel: True})
            r, t, h, t_cal = _stream(sim, min(args.seconds, 150.0))
            if np.isfinite(t_cal):
                others[channel] += _score_lifts(sim, r, t, h, t_cal)[0]

    h_mm = np.array([x[2] for x in lifts]) * 1000
    det = np.array([x[3] for x in lifts], dtype=bool)
    lat = np.array([x[4] for x in lifts])
    lat10 = np.array([x[5] for x in lifts])
    big = h_mm >= 10
    print("\nHeel lift from the shank IMU alone (every shin effect on, lever arm from "
          "calibration)\n")
    print("found against lift height at the heel")
    print(f"{'height mm':>12} {'lifts':>6} {'found':>8}")
    for lo, hi in zip(BINS_MM[:-1], BINS_MM[1:], strict=True):
        m = (h_mm >= lo) & (h_mm < hi)
        rate = f"{100 * det[m].mean():7.1f}%" if m.any() else "       —"
        print(f"{f'{lo}–{hi}':>12} {int(m.sum()):6d} {rate}")
    print()
    print(f"{'script':>13} {'lifts ≥10 mm':>13} {'found':>8} {'median lat ms':>14} "
          f"{'p90 lat ms':>11} {'< 10 mm found':>14}")
    scripts = np.array([x[0] for x in lifts])
    for s in (*SCRIPTS, "all"):
        sel = (scripts == s) if s != "all" else np.ones(len(lifts), dtype=bool)
        m, ok = sel & big, sel & big & det
        small = sel & ~big
        print(f"{s:>13} {int(m.sum()):13d} {100 * det[m].mean():7.1f}% "
              f"{1000 * np.median(lat[ok]) if ok.any() else np.nan:14.0f} "
              f"{1000 * np.percentile(lat[ok], 90) if ok.any() else np.nan:11.0f} "
              f"{100 * det[small].mean() if small.any() else np.nan:13.1f}%")
    ok = big & det
    if ok.any():
        print(f"\nlatency from the heel passing 10 mm (lifts ≥ 10 mm): median "
              f"{1000 * np.nanmedian(lat10[ok]):.0f} ms, p90 "
              f"{1000 * np.nanpercentile(lat10[ok], 90):.0f} ms")
    print("\nfalse alerts in heel-down sessions (after calibration)")
    print(f"{'script':>13} {'athletes':>9} {'minutes':>8} {'alerts':>7} {'per 10 min':>11} "
          f"{'worst athlete':>14}")
    qs = np.array([q[0] for q in quiet])
    for s in (*SCRIPTS, "all"):
        sel = [q for q, x in zip(quiet, qs, strict=True) if s in ("all", x)]
        mins = sum(q[2] for q in sel)
        n = sum(q[3] for q in sel)
        worst = max((10 * q[3] / q[2] for q in sel if q[2] > 0), default=np.nan)
        print(f"{s:>13} {len(sel):9d} {mins:8.1f} {n:7d} {10 * n / max(mins, 1e-9):11.2f} "
              f"{worst:14.2f}")
    tot_min = sum(q[2] for q in quiet)
    tot_n = sum(q[3] for q in quiet)
    print(f"\nflag rises no lift explains, in the lifting sessions: {spurious_lifting} in "
          f"{minutes_lifting:.0f} min ({10 * spurious_lifting / max(minutes_lifting, 1e-9):.2f}"
          " per 10 min)")
    print("\nother sources on three of the same kind of athletes (lifts ≥ 10 mm found; < 10 mm)")
    for channel, got in others.items():
        if not got:
            continue
        hh = np.array([g[0] for g in got]) * 1000
        dd = np.array([g[1] for g in got], dtype=bool)
        ll = np.array([g[2] for g in got])
        b = hh >= 10
        print(f"{channel:>13}: {100 * dd[b].mean():5.1f}% of {int(b.sum())}, median latency "
              f"{1000 * np.nanmedian(ll[b & dd]):.0f} ms; below 10 mm {100 * dd[~b].mean():5.1f}%"
              f" of {int((~b).sum())}")
    rate_big = det[big].mean() if big.any() else np.nan
    med = np.median(lat[ok]) if ok.any() else np.nan
    fa = 10 * tot_n / max(tot_min, 1e-9)
    print(f"\ntargets: found ≥ 95 % of lifts ≥ 10 mm → {100 * rate_big:.1f} % "
          f"{'met' if rate_big >= 0.95 else 'NOT met'}; false alerts ≤ 1 / 10 min → {fa:.2f} "
          f"{'met' if fa <= 1 else 'NOT met'}; median latency ≤ 250 ms → {1000 * med:.0f} ms "
          f"{'met' if med <= 0.25 else 'NOT met'}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
