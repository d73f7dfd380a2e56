"""The mounting calibration at any rate from 10 Hz to 1 kHz (issue 18).

The same simulated wall test (every ``ShinEffects`` on: sway, an oblique ankle axis, tibial
rotation, the clip's wobble after jolts, an uncalibrated BMI270 consumer unit with its datasheet
noise at that rate) is calibrated at each rate. The stance must be found at every rate (the
stillness tests judge 20 ms means, so 1 kHz noise does not break it), and the calibration must
agree with the 100 Hz one: the gyro is integrated to the accelerometer's sample instants, so
nothing half a sample long turns into an accelerometer offset at 10 Hz.
"""

from __future__ import annotations

import numpy as np
import pytest

from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import Mount, ShankSim, ShinEffects
from dorsimeter.types import Readings

RATES_HZ = (10, 25, 50, 100, 200, 400, 1000)
SEED = 0
SECONDS = 30.0


def _session(rate_hz: float):
    sim = ShankSim(rate_hz=rate_hz, seed=SEED, effects=ShinEffects(),
                   mount=Mount(height_m=0.2, clip_rotation_deg=(10.0, -15.0, 120.0)))
    b = sim.generate(int(round(SECONDS * rate_hz)))
    pipe = Pipeline(float(rate_hz))
    step = max(1, int(round(0.05 * rate_hz)))  # 50 ms batches, as a live link sends them
    r = Readings.concat([pipe.push(b.slice(i, i + step))[0] for i in range(0, len(b), step)])
    cal = pipe.calibrations.get("left")
    ours = np.full(len(b), np.nan)
    ours[np.searchsorted(b.t_s, r.t_s)] = r.tibia_angle_deg
    errs = []
    for rep in sim.counted_reps(until_s=SECONDS - 2.0):
        m = (b.t_s >= rep.t_start_s) & (b.t_s <= rep.t_end_s)
        if np.isfinite(ours[m]).any():
            errs.append(abs(float(np.nanmax(ours[m]) - b.truth["tibia_angle_deg"][m].max())))
    return cal, errs, pipe.progress.text


@pytest.fixture(scope="module")
def sessions():
    return {rate: _session(rate) for rate in RATES_HZ}


def _angle_deg(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))


# a lever-arm error δr adds at most (|ω̇| + |ω|²)·δr of wrong acceleration, and only while the
# shin turns: a knee drive (40° in 1 s, minimum jerk: ω̇ ≤ 4 rad/s², ω ≤ 1.3 rad/s) with 4 cm
# gives under 0.23 m/s² (1.3°) mid-drive and nothing at the held end range that is scored
LEVER_ARM_TOL_M = 0.04
# the tibia axis carries the fitted offset (1° per 17 mg): two calibrations of the same athlete
# agree within 3σ of the uncertainties they state
AXIS_SIGMAS = 3.0
# the end-range reading against the truth, the same bound at every rate: under the inclinometer's
# 1.3° standard error of measurement, the clinical reference
END_RANGE_TOL_DEG = 1.0


@pytest.mark.parametrize("rate_hz", RATES_HZ)
def test_the_wall_test_calibrates_alike_at_every_rate(sessions, rate_hz):
    cal, errs, progress = sessions[rate_hz]
    assert cal is not None, f"{rate_hz} Hz: {progress}"
    assert cal.still_s >= 2.0
    ref = sessions[100][0]
    dr = float(np.linalg.norm(cal.lever_arm - ref.lever_arm))
    assert dr < LEVER_ARM_TOL_M, (rate_hz, cal.lever_arm, ref.lever_arm)
    dz = _angle_deg(cal.z_axis, ref.z_axis)
    assert dz < AXIS_SIGMAS * np.hypot(cal.uncertainty_deg, ref.uncertainty_deg), dz
    assert _angle_deg(cal.y_axis, ref.y_axis) < 3.0  # the hinge: the drives' principal axis
    assert len(errs) >= 2
    assert max(errs) < END_RANGE_TOL_DEG, (rate_hz, errs)


@pytest.mark.parametrize("seed", range(3))
def test_the_loosest_part_finds_its_stance_at_1_khz(seed):
    """MPU-6500 (300 µg/√Hz): at 1 kHz its per-sample |acc| noise is 0.066 m/s², which broke
    per-sample stillness tests against the run's first sample (seed 2 found no 2 s still
    stretch); the 20 ms means hold 1.5 mg. The lever arm is the simulator's true one."""
    from dorsimeter.pipeline.pipeline import calibrate_recording

    mount = Mount(height_m=0.2, clip_rotation_deg=(10.0, -15.0, 120.0))
    sim = ShankSim(rate_hz=1000.0, seed=seed, effects=ShinEffects(sensor_model="mpu6500"),
                   mount=mount)
    cal = calibrate_recording([sim.generate(14000)], 1000.0)["left"]
    assert cal.still_s >= 2.0
    true_norm = float(np.linalg.norm(mount.lever_arm_m))
    assert abs(float(np.linalg.norm(cal.lever_arm)) - true_norm) < LEVER_ARM_TOL_M
