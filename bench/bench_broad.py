"""Real data: inclination RMSE on BROAD trials, ours beside VQF.

Data: BROAD — D. Laidig, M. Caruso, A. Cereatti, T. Seel, "BROAD — A Benchmark for Robust
Inertial Orientation Estimation", Data 6(7):72, 2021, doi:10.3390/data6070072, CC-BY-4.0.
Metric (the BROAD one): angle between estimated and true gravity direction in the sensor frame,
2·acos(√(w² + z²)) of q_est ⊗ q_true⁻¹, RMSE over samples with movement = 1 and valid truth.

"ours" is ``dorsimeter.core.fusion.estimate_orientation``: VQF defaults with the accelerometer
moved to the end of its sample interval (live), offline VQF on the same data (offline).

Data directory: ``$DORSIMETER_BROAD_DIR``, else ``../shared/data/broad`` next to the repo.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.io
from scipy.spatial.transform import Rotation
from vqf import VQF, offlineVQF

from dorsimeter.core.fusion import estimate_orientation

CREDIT = ("BROAD dataset: Laidig, Caruso, Cereatti, Seel (2021), Data 6(7):72, "
          "doi:10.3390/data6070072, CC-BY-4.0")
# Reference figures from the data README (VQF 2.1.2 defaults / offline), for the anchor column
ANCHORS = {"01": (0.60, 0.37), "21": (1.72, 0.95), "26": (0.56, 0.51)}


def data_dir() -> Path:
    env = os.environ.get("DORSIMETER_BROAD_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "broad"


def inclination_rmse_deg(q_est: np.ndarray, q_true: np.ndarray, movement: np.ndarray) -> float:
    ok = movement.astype(bool) & ~np.isnan(q_true).any(axis=1)
    err = (Rotation.from_quat(q_est[ok], scalar_first=True)
           * Rotation.from_quat(q_true[ok], scalar_first=True).inv()).as_quat(scalar_first=True)
    ang = 2.0 * np.arccos(np.clip(np.sqrt(err[:, 0] ** 2 + err[:, 3] ** 2), -1.0, 1.0))
    return float(np.degrees(np.sqrt(np.mean(ang**2))))


def evaluate(path: Path) -> dict[str, float]:
    d = scipy.io.loadmat(path)
    gyr = np.ascontiguousarray(d["imu_gyr"], dtype=float)
    acc = np.ascontiguousarray(d["imu_acc"], dtype=float)
    q_true, mov = d["opt_quat"], d["movement"].ravel()
    rate = float(np.ravel(d["sampling_rate"])[0])
    return {
        "VQF defaults": inclination_rmse_deg(VQF(1 / rate).updateBatch(gyr, acc)["quat6D"],
                                             q_true, mov),
        "ours live": inclination_rmse_deg(estimate_orientation(gyr, acc, rate), q_true, mov),
        "VQF offline": inclination_rmse_deg(offlineVQF(gyr, acc, None, 1 / rate)["quat6D"],
                                            q_true, mov),
        "ours offline": inclination_rmse_deg(estimate_orientation(gyr, acc, rate, offline=True),
                                             q_true, mov),
    }


def main() -> int:
    files = sorted(data_dir().glob("*.mat"))
    if not files:
        raise FileNotFoundError(f"no BROAD .mat files in {data_dir()} (set DORSIMETER_BROAD_DIR)")
    cols = ["VQF defaults", "ours live", "VQF offline", "ours offline"]
    print("Inclination RMSE (°) on BROAD trials, 6D (no magnetometer)")
    print(f"{'trial':40s}" + "".join(f"{c:>14s}" for c in cols) + f"{'README anchors':>18s}")
    rows = []
    for f in files:
        r = evaluate(f)
        rows.append(r)
        a = ANCHORS.get(f.name[:2])
        anchor = f"{a[0]:.2f} / {a[1]:.2f}" if a else "-"
        print(f"{f.stem:40s}" + "".join(f"{r[c]:14.3f}" for c in cols) + f"{anchor:>18s}")
    mean = {c: float(np.mean([r[c] for r in rows])) for c in cols}
    print(f"{'mean':40s}" + "".join(f"{mean[c]:14.3f}" for c in cols))
    live_ok = all(r["ours live"] <= r["VQF defaults"] + 1e-9 for r in rows)
    off_ok = mean["ours offline"] < mean["VQF offline"]
    worst = max(r["ours live"] - r["VQF defaults"] for r in rows)
    gain = 100 * (1 - mean["ours live"] / mean["VQF defaults"])
    print(f"\nlive no worse than VQF defaults on every trial: {'yes' if live_ok else 'NO'} "
          f"(worst trial {worst:+.3f}°; mean {mean['ours live']:.3f}° vs "
          f"{mean['VQF defaults']:.3f}°, {gain:+.1f} %)")
    print(f"offline better than offline VQF on average: {'yes' if off_ok else 'NO'} "
          f"({mean['ours offline']:.3f}° vs {mean['VQF offline']:.3f}°, "
          f"{100 * (1 - mean['ours offline'] / mean['VQF offline']):+.1f} %)")
    print(CREDIT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
