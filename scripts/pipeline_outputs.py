"""Pipeline outputs of the speed bench's hour and 12 simulated sessions, saved and compared, to
show a speed-up changed nothing: every readings column, event, rep and counter, two batch splits
each (10,000 samples, and 777 or 50). Sessions: ShankSim seeds 0-9 (wall/lunge alternating, half
with heel lifts on half the reps, one with a foot IMU, one with a heel switch) and two lossy
ones (25 gaps of 5-800 samples, NaN and implausible samples).

    PYTHONPATH=src:. python scripts/pipeline_outputs.py save before.pkl   # on the old code
    PYTHONPATH=src:. python scripts/pipeline_outputs.py save after.pkl    # on the new code
    PYTHONPATH=src:. python scripts/pipeline_outputs.py compare before.pkl after.pkl

``compare`` says per run whether it is bit-identical, else the largest float difference (a
difference over 1e-9, or in any flag, event or count, is a failure: exit status 1).
"""
import dataclasses
import hashlib
import pickle
import sys

import numpy as np

from bench.bench_speed import hour_recording
from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import ShankSim
from dorsimeter.sim.motion import script_spec
from dorsimeter.types import ImuBatch, Readings

FIELDS = ("t_s", "tibia_angle_deg", "knee_track_deg", "side", "heel_lift", "heel_source",
          "rep", "rep_valid", "clip_moved_deg")


def sessions():
    yield "hour", hour_recording(), SensorCalibration("bench", (0.001, -0.002, 0.001),
                                                      (0.05, -0.03, 0.02))
    for seed in range(10):
        script = "wall" if seed % 2 == 0 else "lunge"
        spec = script_spec(script).with_(lift_prob=0.5) if seed % 4 < 2 else script
        sim = ShankSim(rate_hz=200.0, seed=seed, script=spec, foot_imu=seed == 8,
                       heel_switch=seed == 9)
        b = sim.generate(int(240 * 200))
        yield f"sim{seed}-{script}", b, None
    # lossy and faulty variants (gaps, a restart, NaNs, an implausible sample)
    for seed in (11, 12):
        sim = ShankSim(rate_hz=200.0, seed=seed, script="wall" if seed == 11 else "lunge")
        b = sim.generate(int(240 * 200))
        rng = np.random.default_rng(seed)
        keep = np.ones(len(b), bool)
        for start in rng.integers(6000, len(b) - 2000, 25):
            keep[start:start + int(rng.choice([5, 10, 20, 300, 800]))] = False
        acc, gyr = b.acc_m_s2.copy(), b.gyr_rad_s.copy()
        acc[rng.integers(0, len(b), 5)] = np.nan
        gyr[rng.integers(0, len(b), 3)] = 1e6
        b = ImuBatch(b.t_s[keep], acc[keep], gyr[keep], side=b.side)
        yield f"lossy{seed}", b, None


def run(b, cal, step):
    pipe = Pipeline(200.0, sensor_cal=cal)
    parts, events = [], []
    for i in range(0, len(b), step):
        r, e = pipe.push(b.slice(i, i + step))
        parts.append(r)
        events += e
    r = Readings.concat(parts)
    cols = {f: np.asarray(getattr(r, f)) for f in FIELDS}
    ev = [(e.kind, e.t_s, e.side, e.message,
           None if e.rep is None else dataclasses.astuple(e.rep)) for e in events]
    extra = (pipe.fusion.bridged_samples, pipe.fusion.restarts, pipe.nonfinite_samples,
             pipe.implausible_samples, repr(pipe.calibrations))
    return cols, ev, extra


def digest(out):
    h = hashlib.sha256()
    cols, ev, extra = out
    for f in FIELDS:
        a = cols[f]
        h.update(a.astype(str).tobytes() if a.dtype == object else a.tobytes())
    h.update(repr(ev).encode())
    h.update(repr(extra).encode())
    return h.hexdigest()[:16]


def save(path):
    res = {}
    for name, b, cal in sessions():
        steps = (10_000, 777) if name == "hour" else (10_000, 50)
        for step in steps:
            out = run(b, cal, step)
            res[f"{name}/{step}"] = out
            n_lift = int(out[0]["heel_lift"].sum())
            n_rep = sum(1 for e in out[1] if e[0] == "rep")
            print(f"{name}/{step}: {len(out[0]['t_s'])} readings, {n_lift} lifted, "
                  f"{n_rep} reps, {len(out[1])} events, {digest(out)}", flush=True)
    with open(path, "wb") as fh:
        pickle.dump(res, fh)


def compare(pa, pb):
    a, b = (pickle.load(open(p, "rb")) for p in (pa, pb))
    assert a.keys() == b.keys()
    bad = 0
    for k in a:
        ca, ea, xa = a[k]
        cb, eb, xb = b[k]
        worst = 0.0
        same = True
        for f in FIELDS:
            u, v = ca[f], cb[f]
            if u.shape != v.shape or u.dtype != v.dtype:
                same = False
                print(k, f, "shape/dtype", u.shape, v.shape, u.dtype, v.dtype)
                continue
            if u.dtype.kind == "f":
                if not np.array_equal(u, v, equal_nan=True):
                    same = False
                    d = np.nanmax(np.abs(u - v))
                    worst = max(worst, float(d))
                    if not np.array_equal(np.isnan(u), np.isnan(v)) or d > 1e-9:
                        bad += 1
                        print(k, f, "differs by", d)
            elif not np.array_equal(u, v):
                same = False
                bad += 1
                print(k, f, "differs at", int(np.flatnonzero(u != v)[0]))
        if ea != eb:
            same = False
            bad += 1
            print(k, "events differ")
        if xa != xb:
            same = False
            bad += 1
            print(k, "stats differ", xa, xb)
        print(f"{k}: {'bit-identical' if same else f'max float diff {worst:.3g}'}"
              f" ({digest(a[k])} vs {digest(b[k])})")
    print("ALL EQUAL" if bad == 0 else f"{bad} DIFFERENCES")
    return bad


if __name__ == "__main__":
    if sys.argv[1] == "save":
        save(sys.argv[2])
    else:
        sys.exit(1 if compare(sys.argv[2], sys.argv[3]) else 0)
