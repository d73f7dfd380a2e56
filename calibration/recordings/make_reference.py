"""Regenerate the reference recordings the tests read (run this file with the venv python).

- ``poses_bmi270_s11.csv``: a simulated BMI270 unit (profile ``calibration/sensors/bmi270.json``,
  seed 11) laid still on six faces and four tilts: the input of a sensor calibration;
- ``wall_bmi270_s11_left.csv``: the same unit on the left shin (clip rotated 15°/-10°/140°,
  mid-shin preset) doing stance, calibration drives and wall-test reps;
- ``reference.json``: the ground truth (unit errors, mount, per-rep end-range tibia angles).

Files use the raw CSV contract (``dorsimeter.io.rawcsv``), so they go through the same reader
as any user's recording.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dorsimeter.io.rawcsv import RawCsvWriter
from dorsimeter.sim import Mount, SensorErrors, ShankSim
from dorsimeter.sim.errors import still_pose_recording
from dorsimeter.types import ImuBatch

HERE = Path(__file__).resolve().parent
SEED = 11
RATE_HZ = 100.0
MOUNT = Mount(height_m=0.20, anterior_m=0.04, clip_rotation_deg=(15.0, -10.0, 140.0))


def main() -> None:
    errors = SensorErrors.realistic("bmi270", RATE_HZ, SEED)
    t, acc, gyr = still_pose_recording(errors, RATE_HZ, SEED, n_random=4, hold_s=2.5)
    with RawCsvWriter(HERE / f"poses_bmi270_s{SEED}.csv") as w:
        w.write(ImuBatch(t, acc, gyr), "left")
    sim = ShankSim(rate_hz=RATE_HZ, seed=SEED, errors=errors, mount=MOUNT)
    b = sim.generate(int(40 * RATE_HZ))
    with RawCsvWriter(HERE / f"wall_bmi270_s{SEED}_left.csv") as w:
        w.write(b, "left")
    reps = [{"index": int(r.index), "t_start_s": r.t_start_s, "t_end_s": r.t_end_s,
             "end_range_deg": float(b.truth["tibia_angle_deg"][
                 (b.t_s >= r.t_start_s) & (b.t_s < r.t_end_s)].max())}
            for r in sim.counted_reps(until_s=float(b.t_s[-1]))]
    doc = {"seed": SEED, "rate_hz": RATE_HZ, "errors": asdict(errors), "mount": asdict(MOUNT),
           "reps": reps, "tibia_angle_max_deg": float(np.max(b.truth["tibia_angle_deg"]))}
    (HERE / "reference.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
