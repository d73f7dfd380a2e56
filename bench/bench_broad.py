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


def inclination_errors_deg(q_est: np.ndarray, q_true: np.ndarray, movement: np.ndarray
                           ) -> np.ndarray:
    """Per-sample inclination error (°) over the samples that count (movement, valid truth)."""
    ok = movement.astype(bool) & ~np.isnan(q_true).any(axis=1)
    err = (Rotation.from_quat(q_est[ok], scalar_first=True)
           * Rotation.from_quat(q_true[ok], scalar_first=True).inv()).as_quat(scalar_first=True)
    ang = 2.0 * np.arccos(np.clip(np.sqrt(err[:, 0] ** 2 + err[:, 3] ** 2), -1.0, 1.0))
    return np.degrees(ang)


def inclination_rmse_deg(q_est: np.ndarray, q_true: np.ndarray, movement: np.ndarray) -> float:
    return float(np.sqrt(np.mean(inclination_errors_deg(q_est, q_true, movement) ** 2)))


#: block length of the paired bootstrap: errors are correlated over seconds (VQF's accelerometer
#: time constant is 3 s), so whole blocks are resampled, never single samples
BLOCK_S = 5.0


def paired_rmse_diff_ci(err_a: np.ndarray, err_b: np.ndarray, rate_hz: float,
                        n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """RMSE(a) − RMSE(b) and its 95 % block-bootstrap interval (same blocks for a and b)."""
    n = int(round(BLOCK_S * rate_hz))
    k = len(err_a) // n
    sa = (err_a[:k * n] ** 2).reshape(k, n).sum(axis=1)
    sb = (err_b[:k * n] ** 2).reshape(k, n).sum(axis=1)
    idx = np.random.default_rng(seed).integers(0, k, size=(n_boot, k))
    d = np.sqrt(sa[idx].sum(axis=1) / (k * n)) - np.sqrt(sb[idx].sum(axis=1) / (k * n))
    lo, hi = np.percentile(d, [2.5, 97.5])
    full = float(np.sqrt(np.mean(err_a ** 2)) - np.sqrt(np.mean(err_b ** 2)))
    return full, float(lo), float(hi)


def evaluate(path: Path) -> dict[str, float]:
    d = scipy.io.loadmat(path)
    gyr = np.ascontiguousarray(d["imu_gyr"], dtype=float)
    acc = np.ascontiguousarray(d["imu_acc"], dtype=float)
    q_true, mov = d["opt_quat"], d["movement"].ravel()
    rate = float(np.ravel(d["sampling_rate"])[0])
    quats = {
        "VQF defaults": VQF(1 / rate).updateBatch(gyr, acc)["quat6D"],
        "ours live": estimate_orientation(gyr, acc, rate),
        "VQF offline": offlineVQF(gyr, acc, None, 1 / rate)["quat6D"],
        "ours offline": estimate_orientation(gyr, acc, rate, offline=True),
    }
    errs = {k: inclination_errors_deg(q, q_true, mov) for k, q in quats.items()}
    out: dict = {k: float(np.sqrt(np.mean(e ** 2))) for k, e in errs.items()}
    out["live diff"] = paired_rmse_diff_ci(errs["ours live"], errs["VQF defaults"], rate)
    out["offline diff"] = paired_rmse_diff_ci(errs["ours offline"], errs["VQF offline"], rate)
    return out


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
    print(f"\nours − VQF, RMSE difference (°) with its 95 % paired block-bootstrap interval "
          f"({BLOCK_S:g} s blocks):")
    print(f"{'trial':40s}{'live − VQF defaults':>30s}{'offline − VQF offline':>30s}")
    for f, r in zip(files, rows, strict=True):
        cells = "".join(f"{r[k][0]:+10.4f} [{r[k][1]:+.4f}, {r[k][2]:+.4f}]"
                        for k in ("live diff", "offline diff"))
        print(f"{f.stem:40s}{cells}")
    live_ok = all(r["ours live"] <= r["VQF defaults"] + 1e-9 for r in rows)
    live_sig_worse = [f.stem[:2] for f, r in zip(files, rows, strict=True)
                      if r["live diff"][1] > 0]
    off_ok = mean["ours offline"] < mean["VQF offline"]
    worst = max(r["ours live"] - r["VQF defaults"] for r in rows)
    gain = 100 * (1 - mean["ours live"] / mean["VQF defaults"])
    print(f"\nlive no worse than VQF defaults on every trial: {'yes' if live_ok else 'NO'} "
          f"(worst trial {worst:+.4f}°; mean {mean['ours live']:.3f}° vs "
          f"{mean['VQF defaults']:.3f}°, {gain:+.1f} %)")
    print("live significantly worse (whole interval above 0) on: "
          + (", ".join(live_sig_worse) if live_sig_worse else "no trial"))
    print(f"offline better than offline VQF on average: {'yes' if off_ok else 'NO'} "
          f"({mean['ours offline']:.3f}° vs {mean['VQF offline']:.3f}°, "
          f"{100 * (1 - mean['ours offline'] / mean['VQF offline']):+.1f} %)")
    print(CREDIT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
