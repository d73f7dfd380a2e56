"""Mounting calibration: where the tibia axes lie in the frame of a clip put on at any rotation.

A still stance gives the tibial long axis (up, with the athlete standing tall); a few knee drives
give the flexion axis (principal axis of the gyroscope signal). The flexion axis sign is chosen so
that driving the knee forward reads positive. The calibrator is streaming and decides on sample
counts only, so live monitoring and re-analysis of the recorded file find the same calibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dorsimeter.core.fusion import fill_gaps
from dorsimeter.core.lever_arm import (
    fit_lever_arm_and_offset,
    lowpassed,
    rotational_acc,
    smoothed_rates,
)
from dorsimeter.core.sensor_cal import as_vec3
from dorsimeter.core.tibia import tibia_angles_deg
from dorsimeter.errors import CalibrationError
from dorsimeter.text import terminal_safe
from dorsimeter.types import GRAVITY_M_S2

STILL_GYR_RAD_S = 0.15  # gyro steadiness within a still run (against its first sample)
# |gyro| this large is movement whatever the bias: an uncalibrated MPU-6500 (±5 °/s 1σ zero-rate
# offset) can read 15 °/s standing still, so stillness is judged on steadiness, not magnitude
STILL_GYR_ABS_RAD_S = 0.5
STILL_ACC_DEV_M_S2 = 0.3  # |acc| steadiness within a still run (against its first sample)
STILL_ACC_ABS_M_S2 = 2.5  # |acc| this far from g is not a still reading, whatever the sensor
MOVING_GYR_RAD_S = 0.2
# the stillness tests above judge the signal averaged over its last 20 ms, not single samples:
# white noise of density d through the chip's filter (bandwidth ODR/2) is d·√(rate/2) per
# sample, 22 times the 10 Hz figure at 1 kHz, whereas a 20 ms mean holds d·√(1/(2·0.02 s)) = 5 d
# at any rate from 50 Hz up (less below). The loosest part we support (MPU-6500: 300 µg/√Hz,
# 0.01 °/s/√Hz, calibration/sensors) then has 1.5 mg and 0.05 °/s of noise there, 20 and 170
# times under STILL_ACC_DEV_M_S2 and STILL_GYR_RAD_S, and movement (below 25 Hz) passes through
STILL_WINDOW_S = 0.02
# tilt allowed within the still stance (from its first sample): quiet standing sways up to
# 0.6° about the ankle and as much sideways (peak to peak 1.7° together), a stance beyond
# 2.5° is moving
MAX_STANCE_SWAY_DEG = 2.5
# the shortest stance taken (a rest between reps, 1.5 s, is not one) and the stance the user
# is asked for: quiet standing sways at 0.05-0.6 Hz, so a 2 s stance holds part of one slow
# cycle and its mean posture misses standing tall by up to the sway's RMS, and the drives'
# offset fit has fewer still samples to lean on; 5 s hold a cycle of sway at 0.2 Hz and more
# (``python -m bench accuracy`` prints the wall test at 3 s beside it). The calibrator takes
# the whole still run, so standing longer helps
STILL_S = 2.0
ASKED_STILL_S = 5.0
RESUMED_STILL_S = 1.5  # after the calibration started again mid-protocol (see MountingCalibrator)
STANCE_TAIL_S = 0.5  # end of the still run left out of the stance statistics
MIN_PLANARITY = 0.6  # below this the drives were not a hinge (random or twisting movement)
QUIET_GYR_RAD_S = 0.02  # "still" moments inside the drives, for the flexion gyro gain
QUIET_DGYR_RAD_S2 = 0.1
# flexion gyro gains further from 1 are not believed: the loosest datasheet sensitivity
# tolerance we support (MPU-6500, ±3 %) plus 1 % for temperature and clock drift
MAX_GAIN_ERROR = 0.04
# offsets beyond 200 mg are not believed: three times the loosest zero-g offset of the parts we
# support (MPU-6500, 60 mg 1σ) plus the 30 mg its 3 % scale error adds at 1 g, which the fitted
# offset also carries; nor is any offset from drives spanning under 15° (too little lever on it)
MAX_ACC_OFFSET_M_S2 = 0.2 * GRAVITY_M_S2
MIN_OFFSET_SPAN_RAD = math.radians(15.0)
# the fitted offset is not taken out as it stands nor gated on how far it stands out: it is
# shrunk toward none by what the datasheets say offsets are (the posterior mean under a prior of
# the zero-g offset of the parts we support, BMI270 / LSM6DSO typ. 20 mg per axis), with the
# error the fit's model cannot see added to its covariance (the datasheets' 1 % scale and
# cross-axis error at 1 g: 10 mg). The posterior mean is, on average over sensors, closer to the
# true offset than either the raw fit or none, so it is never worse than not fitting; a fit well
# inside its noise is mostly left out, one well outside is mostly kept
OFFSET_PRIOR_MG = 20.0
OFFSET_MODEL_MG = 10.0
# what the magnitude of gravity read standing still says about the offset along the stance's up
# is off by the part's scale and cross-axis error along that direction (the datasheets' 1 %,
# uniform within it: 5.8 mg 1σ along any direction), the site's gravity against the nominal
# 9.81 (9.780-9.832 m/s² equator to pole: 1.5 mg 1σ) and the sensitivity's temperature drift
# over a session (0.01 %/K over ±8 K: 0.8 mg); root-sum-square 6.0 mg, plus the nominal's 0.4 mg
# above the sites' mean
NORM_MODEL_MG = 6.5
# an accelerometer offset left in the sagittal plane moves a 40° reading by about 1° per 17 mg
# (the stance zero takes out what it does at 0°: g·sin over the span)
OFFSET_MG_PER_DEG = 17.0
# a stance that sways more than the top of the published range for quiet standing (0.1-0.6°)
# gives a zero the user should not trust: they are told to hold still
MAX_QUIET_SWAY_DEG = 0.6
# The calibration carries gravity from the stance through the drives by integrating the gyro, so
# a gap is rotation it did not see. Bridging the rate linearly over a gap of T seconds misses
# about J·T³/12 of rotation, J the angular jerk: a slow drive (25° in 1 s, minimum jerk) has
# J ≈ 1500 °/s³, so 0.1 s misses up to 0.1° and 0.2 s up to 1° (measured: a 0.2 s gap in the
# drives adds 0.4° to the worst rep, 0.1 s adds 0.1°). A longer gap ends the phase it falls in.
MAX_CAL_GAP_S = 0.1
# A still stance is still across a link gap: it keeps going over gaps up to 1 s (bridged at the
# stance's own rate), however short the fusion's bridge (``MAX_BRIDGE_S``, sized for drives)
MAX_STANCE_GAP_S = 1.0
# a gap in the drives up to this ends a gap-free segment (re-anchored at its next still rest, so
# nothing is bridged across it); a longer one restarts the drives: the athlete has likely moved
MAX_SEGMENT_GAP_S = 1.0
# the data before such a gap are enough when they hold one full drive forward and back (about
# 45° of rotation): the offset's angle span and the flexion axis are then already there
MIN_DRIVE_SHARE = 0.5
# Before that, a gap up to the fusion's bridge limit (bursty BLE loss) does not start the drives
# again: the stretch after it is a new segment, whose gravity is taken afresh at a still rest in
# it (held end range, or standing between drives: the shin still, heel down, so the
# accelerometer reads gravity and its offset alone) and carried from there by the gyro. A rest
# is a run of ``QUIET_GYR_RAD_S`` (the drives' still moments) long enough that the rate cannot
# change on average by more than ``QUIET_DGYR_RAD_S2`` within it: 2 × 0.02 rad/s / 0.1 rad/s²
# = 0.4 s. The tangential acceleration left in its mean is then under 0.1 rad/s² × 0.5 m
# (the longest shin) = 5 mg, 0.3°, and under 2 mg for clips 20 cm up; a turnaround of a drive
# (the rate passing zero at 0.5-2 rad/s²) stays under 0.02 rad/s for 20-80 ms and is no rest.
# A segment without such a rest is dropped (nothing says where gravity was in it).
REST_S = 2.0 * QUIET_GYR_RAD_S / QUIET_DGYR_RAD_S2
# The clip sits on the shin, so the ankle-to-sensor vector runs up the shin: at least 8 cm up
# and at most about 6 cm off the tibial axis (crest 2-3 cm in front of it, plus skin and clip)
# is at most 37° from the long axis, and a shin is under 50 cm long. A fitted lever arm
# further off means the "stance" was not the athlete standing tall (a held end range taken for
# it after the link dropped, say): every angle would be read from the wrong zero.
MAX_LEVER_TILT_DEG = 37.0
# The sensor sits on the shin: the ankle-to-sensor vector is shorter than the tibia (the
# longest adult tibiae are ~0.5 m); 1.7 m is a damaged or foreign file.
MAX_LEVER_ARM_M = 0.5
MIN_LEVER_ARM_M = 0.05  # below this the fit says little about the direction
#: two tall stances of one athlete differ by a few degrees, a held drive from a tall stance by
#: 20° and more: a new stance this far from another is another posture. After a stance was
#: refused as not standing tall (a held end range), one as near to it is the same kind of hold
STANCE_MOVED_DEG = 10.0


MAX_PLACEMENT_CM = 40.0  # no shin is longer below the tuberosity


def parse_placement_cm(text: str) -> float:
    """The clip's centre below the tibial tuberosity as typed (``15``, ``12,5``), 0–40 cm;
    ValueError with a one-line reason otherwise (the CLI and the monitor's field share it)."""
    try:
        v = float(text.strip().replace(",", "."))
    except ValueError:
        raise ValueError(f"'{terminal_safe(text)}': expected centimetres below the tibial "
                         "tuberosity, e.g. 15") from None
    if not 0.0 <= v <= MAX_PLACEMENT_CM:
        raise ValueError(f"{v:g} cm: expected 0–40 cm below the tibial tuberosity (the shin is "
                         "not longer)")
    return v


@dataclass(frozen=True)
class MountingCalibration:
    """The tibia frame in sensor coordinates, with quality figures for the user."""

    side: str
    x_axis: tuple[float, float, float]
    y_axis: tuple[float, float, float]
    z_axis: tuple[float, float, float]
    gyr_bias_rad_s: tuple[float, float, float]
    still_s: float
    drive_rotation_deg: float
    planarity: float  # 1 - λ2/λ1 of the drive gyro signal: 1 = pure hinge motion
    axis_tilt_deg: float  # how far the drive axis was from perpendicular to the shin
    t_defined_s: float  # device time of the sample that completed the calibration
    # ankle-to-sensor vector (sensor frame) fitted on the drives; zero when not estimated
    lever_arm_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lever_arm_residual_m_s2: float = 0.0  # RMS acceleration the fixed-pivot model left over
    stance_sway_deg: float = 0.0  # largest tilt of "up" from its mean during the stance
    # factor on the gyro's flexion-axis component that makes the gyro-integrated flexion match
    # the accelerometer's at the still moments of the drives (gyro scale error, clock drift)
    flexion_gyr_gain: float = 1.0
    # accelerometer offset in the sagittal plane (sensor frame), found from the drives with the
    # gyro measuring the poses; z_axis already has it taken out, and so must the fused "up"
    # (``corrected_up``): otherwise an uncalibrated unit's offset tilts readings away from the
    # stance, by about 1° per 17 mg at 40°
    acc_offset_m_s2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # how sure the calibration is, 1σ in degrees at a 40° reading: the stance's sway (its mean
    # posture stands for standing tall within the sway's RMS) and the accelerometer offset's
    # uncertainty (or, when none was taken out, what the fit saw of it)
    uncertainty_deg: float = 0.0
    acc_offset_sigma_mg: float = 0.0  # 1σ of the fitted offset
    # the tibia's axial rotation per radian of flexion (``axial_coupling``): the clip turns
    # with the bone about its long axis as the knee goes forward, the long axis does not
    axial_coupling: float = 0.0

    @property
    def unsteady(self) -> bool:
        """The stance swayed beyond quiet standing: the zero is less sure than it should be."""
        return self.stance_sway_deg > MAX_QUIET_SWAY_DEG

    @property
    def matrix(self) -> np.ndarray:
        """Rows: tibia x, y, z axes in the sensor frame."""
        return np.array([self.x_axis, self.y_axis, self.z_axis])

    @property
    def acc_offset_mg(self) -> float:
        return 1000.0 * float(np.linalg.norm(self.acc_offset_m_s2)) / GRAVITY_M_S2

    def angles_deg(self, up_sensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tibia_angle_deg, knee_track_deg) of fused "up" (sensor frame) with this
        calibration: its axes and the tibia's axial rotation taken out."""
        return tibia_angles_deg(up_sensor, self.matrix, self.side, self.axial_coupling)

    def corrected_up(self, up_sensor: np.ndarray) -> np.ndarray:
        """Fused "up" (unit, sensor frame) with the accelerometer offset taken out:
        ``normalise(g·up − b)``. A filter fed the raw accelerometer settles on the direction of
        ``g·up + b``, so this undoes it where the reading counts, at holds; element-wise, so the
        same floats for any batch split."""
        b = self.acc_offset_m_s2
        if not any(b):
            return up_sensor
        u = np.asarray(up_sensor, dtype=float) * GRAVITY_M_S2
        v = np.column_stack([u[:, 0] - b[0], u[:, 1] - b[1], u[:, 2] - b[2]])
        n = np.sqrt(v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1] + v[:, 2] * v[:, 2])
        return v / n[:, None]

    @property
    def lever_arm(self) -> np.ndarray:
        """Ankle-to-sensor vector in the sensor frame (m)."""
        return np.asarray(self.lever_arm_m, dtype=float)

    def summary(self) -> str:
        return (
            f"{self.side}: still {self.still_s:.1f} s, drives {self.drive_rotation_deg:.0f}° of "
            f"rotation, hinge quality {100 * self.planarity:.1f} %, "
            f"axis tilt {self.axis_tilt_deg:.1f}°, "
            f"sensor {100 * np.linalg.norm(self.lever_arm):.0f} cm from the ankle"
            + (f", accelerometer offset {self.acc_offset_mg:.0f} mg taken out"
               if any(self.acc_offset_m_s2) else "")
            + (f", sure to ±{self.uncertainty_deg:.1f}°" if self.uncertainty_deg else "")
            + (f"; hold still: sway {self.stance_sway_deg:.1f}° (calibrate again standing "
               "still for a surer zero)" if self.unsteady else "")
        )


def carried_rotations(gyr_rad_s: np.ndarray, rate_hz: float, t_s: np.ndarray | None = None
                      ) -> np.ndarray:
    """(N,3,3) rotations R_k taking sensor-frame vectors at sample k to the frame of the first
    sample, from the (bias-free) gyro. A world-fixed vector v reads ``R_k.T @ v_0`` at sample k.

    The rotations are aligned with the accelerometer samples they carry gravity to: gyro and
    accelerometer sample the same instants (point samples) or average over the same interval
    (a chip's decimation filter: then both stand, to second order, for the interval's
    midpoint), so in either case the rotation between samples k−1 and k is the trapezoid of
    their rates, ``(ω_{k−1} + ω_k)·Δt/2``, composed exactly (rotation vectors,
    ``scipy.spatial.transform.Rotation``). Taking sample k's rate over the whole step ending at
    k instead puts the carried gravity half a sample ahead of the accelerometer's: at 10 Hz
    and 1 rad/s of drive that is 0.05 rad, 50 mg passed off as an accelerometer offset.

    With the samples' times ``t_s``, lost samples (steps over 1.5 intervals) are bridged by the
    interpolated rate, so a lossy link does not lose the rotation made while its packets were
    missing. Only short gaps: a gap longer than ``MAX_STANCE_GAP_S`` is rotation nobody
    measured, and interpolating over it would make one up (ValueError; the calibrator ends its
    phase at such a gap, and in the drives at any gap over ``MAX_CAL_GAP_S``)."""
    from scipy.spatial.transform import Rotation

    g = np.asarray(gyr_rad_s, dtype=float)
    idx = None
    if t_s is not None:
        t = np.asarray(t_s, dtype=float)
        if len(t) > 1 and float(np.max(np.diff(t))) - 1.0 / rate_hz > MAX_STANCE_GAP_S + 1e-9:
            raise ValueError(f"a gap of {float(np.max(np.diff(t))):.2f} s cannot be bridged by "
                             "interpolating the gyro")
        g, _, idx = fill_gaps(t, g, g, rate_hz, MAX_STANCE_GAP_S)
    n = len(g)
    out = np.empty((n, 3, 3))
    if n == 0:
        return out if idx is None else out[idx]
    steps = Rotation.from_rotvec(0.5 * (g[:-1] + g[1:]) / rate_hz).as_matrix()
    r = np.eye(3)
    out[0] = r
    for k in range(1, n):
        r = r @ steps[k - 1]
        out[k] = r
    return out if idx is None else out[idx]


def stance_gyro_bias(gyr_rad_s: np.ndarray, acc_m_s2: np.ndarray, t_s: np.ndarray,
                     rate_hz: float, iterations: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Gyro bias from a stance that sways: the bias that keeps gravity still once the gyro has
    de-rotated the accelerometer samples into the stance's first frame.

    A stance of a few seconds holds only part of a sway cycle (0.05-0.6 Hz), so its mean rate
    is sway, not bias (0.4° of sway at 0.3 Hz averages up to 0.7 °/s over 2 s). Gravity is
    fixed in the world, so de-rotated by the true rate it stays fixed; with a bias error ``δ``
    it drifts by ``t (a × δ)``. Starting from the mean rate, ``R_k a_k = g0 − t_k [a_k]× δ`` is
    solved for ``g0`` and the two components of ``δ`` across gravity (Gauss-Newton). The
    component along gravity does not turn gravity and cannot be seen that way; sway turns the
    shin about horizontal axes, so there the mean rate is the bias. Noise: an accelerometer
    direction noise of about 1 mrad per sample over 2 s gives under 0.01 °/s.

    Returns the bias and the stance's rotations with it removed (``carried_rotations``)."""
    g = np.asarray(gyr_rad_s, dtype=float)
    a = np.asarray(acc_m_s2, dtype=float)
    t = np.asarray(t_s, dtype=float)
    bias = g.mean(axis=0)
    if len(g) < 10:
        return bias, carried_rotations(g - bias, rate_hz, t)
    up = a.mean(axis=0)
    up /= np.linalg.norm(up)
    h1 = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
    h1 /= np.linalg.norm(h1)
    h2 = np.cross(up, h1)
    dt = (t - t[0])[:, None]
    for _ in range(iterations):
        rots = carried_rotations(g - bias, rate_hz, t)
        v = np.einsum("kij,kj->ki", rots, a)
        cols = [np.broadcast_to(np.eye(3), (len(a), 3, 3))]
        for h in (h1, h2):
            cols.append((-dt * np.cross(a, h))[..., None])
        design = np.concatenate(cols, axis=2).reshape(len(a) * 3, 5)
        sol = np.linalg.lstsq(design, v.reshape(-1), rcond=None)[0]
        bias = bias + sol[3] * h1 + sol[4] * h2
    return bias, carried_rotations(g - bias, rate_hz, t)


def shrunk_offset(offset_m_s2: np.ndarray, offset_cov: np.ndarray, x: np.ndarray,
                  z: np.ndarray, stance_acc_m_s2: np.ndarray | None = None,
                  across: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(offset, 1σ mg): the fitted accelerometer offset shrunk toward none by the datasheets'
    prior (``OFFSET_PRIOR_MG``, per axis, in 3-D), with the model error (``OFFSET_MODEL_MG``)
    added to the fit's covariance; the posterior mean (sensor frame) and the larger principal
    1σ of its sagittal part (tibia x, z).

    The fit saw the offset in the plane across the flexion axis: tibia x and ``across`` (z made
    perpendicular to the axis; z itself when not given, the hinge of an ideal ankle).
    ``stance_acc_m_s2``, the stance's mean reading, adds one more observation: standing still
    the accelerometer reads gravity plus its offset, so ``|a − b| = g`` and, to first order,
    ``û·b = |a| − g`` along the stance's up ``û``, with the error ``NORM_MODEL_MG`` (scale,
    cross-axis, the site's gravity). It is the one look at the offset along the shin that does
    not pass through the gyro's scale (which the fit trusts, see ``fit_lever_arm_and_offset``),
    and on an oblique ankle it reaches a little of the offset along the flexion axis.

    A gate (take the fit out when it stands out of its noise, else nothing) throws away half of
    what a fit near the gate knows and takes all of a lucky one; the posterior mean weighs it."""
    mg_m_s2 = GRAVITY_M_S2 / 1000.0
    seen = np.array([x, z if across is None else across])  # the plane the fit saw
    fit_cov = seen @ offset_cov @ seen.T + (OFFSET_MODEL_MG * mg_m_s2) ** 2 * np.eye(2)
    fit_info = np.linalg.inv(fit_cov)
    info = np.eye(3) / (OFFSET_PRIOR_MG * mg_m_s2) ** 2 + seen.T @ fit_info @ seen
    vec = seen.T @ fit_info @ (seen @ offset_m_s2)
    if stance_acc_m_s2 is not None:
        norm = float(np.linalg.norm(stance_acc_m_s2))
        u = np.asarray(stance_acc_m_s2, dtype=float) / norm
        w = 1.0 / (NORM_MODEL_MG * mg_m_s2) ** 2
        info = info + w * np.outer(u, u)
        vec = vec + w * (norm - GRAVITY_M_S2) * u
    post_cov = np.linalg.inv(info)
    sagittal = np.array([x, z])
    sigma_mg = float(np.sqrt(max(0.0, float(np.linalg.eigvalsh(
        sagittal @ post_cov @ sagittal.T)[-1])))) / mg_m_s2
    return post_cov @ vec, sigma_mg


def sway_deg(rotations: np.ndarray, up: np.ndarray) -> tuple[float, float]:
    """(peak, RMS) tilt of the shin from its mean during a stance, from the gyro's rotations
    (``carried_rotations``): sway is rotation, and the gyro sees it without the accelerometer's
    noise. The component about ``up`` (turning on the spot) does not tilt the shin."""
    from scipy.spatial.transform import Rotation

    rv = Rotation.from_matrix(rotations).as_rotvec()
    u = np.asarray(up, dtype=float) / np.linalg.norm(up)
    tilt = rv - np.outer(rv @ u, u)
    dev = np.linalg.norm(tilt - tilt.mean(axis=0), axis=1)
    return float(np.degrees(dev.max())), float(np.degrees(np.sqrt(np.mean(dev**2))))


#: A quiet moment of the smoothed rate (``smoothed_rates``, 0.15 s) can still hold the clip's
#: wobble after a jolt (12-25 Hz, 0.2-1.5° of the clip on the skin, ``sim.shin``): smoothing takes
#: its rotation out of the rate while the accelerometer still reads its translation (0.3-2 mm at
#: 12-25 Hz: up to 5 g at the clip). Its rate is 2π·12 Hz·0.2° = 0.26 rad/s at least (half that
#: for a jolt of half strength), 7-13 times ``QUIET_GYR_RAD_S``, so a sample is quiet only when the
#: raw rate is quiet too (the gyro's own noise there is 0.002-0.004 rad/s per sample for the
#: parts we support, well under the limit).
def flexion_gyro_gain(up_carried: np.ndarray, acc_m_s2: np.ndarray, gyr_rad_s: np.ndarray,
                      dgyr_rad_s2: np.ndarray, x: np.ndarray, z: np.ndarray,
                      rate_hz: float, raw_gyr_rad_s: np.ndarray | None = None) -> float:
    """Gyro scale about the flexion axis: slope of the accelerometer's flexion angle against
    the gyro-carried one over the quasi-static samples of the drives (holds, rests).

    Quasi-static: the smoothed rate and its derivative quiet, and (``raw_gyr_rad_s``) the raw
    rate quiet as well, which a wobbling clip is not. The slope is fitted robustly (Huber
    weights at 3σ of the residuals, σ from their median absolute deviation, as the lever-arm
    fit does): a wobble moment that still passes (the raw rate crossing zero in its oscillation)
    is degrees off the line where the noise is hundredths (one such pair of samples made a
    3.2 % gain out of a 0.7 % error on a simulated shin), and counts little.

    1.0 when the still moments do not span at least 10° of flexion or the slope is implausible
    (beyond ``MAX_GAIN_ERROR``: more than any supported part's datasheet allows; on real shins
    sway and wobble at the quiet moments can fake 7-12 %), or not distinguishable from 1."""
    quiet = (np.linalg.norm(gyr_rad_s, axis=1) < QUIET_GYR_RAD_S) & (
        np.linalg.norm(dgyr_rad_s2, axis=1) < QUIET_DGYR_RAD_S2)
    if raw_gyr_rad_s is not None:
        quiet &= np.linalg.norm(np.asarray(raw_gyr_rad_s, dtype=float), axis=1) < QUIET_GYR_RAD_S
    if quiet.sum() < int(0.2 * rate_hz):
        return 1.0
    u, a = up_carried[quiet], acc_m_s2[quiet]
    th_g = np.arctan2(-(u @ x), u @ z)
    th_a = np.arctan2(-(a @ x), a @ z)
    if np.ptp(th_g) < np.radians(10.0):
        return 1.0
    design = np.column_stack([th_g, np.ones_like(th_g)])
    wts = np.ones(len(th_g))
    slope, icpt = 1.0, 0.0
    for it in range(GAIN_ROBUST_ITERATIONS + 1):
        if it:
            r = th_a - design @ np.array([slope, icpt])
            sigma = 1.4826 * float(np.median(np.abs(r - np.median(r))))
            wts = np.minimum(1.0, GAIN_HUBER_SIGMAS * sigma / np.maximum(np.abs(r), 1e-300))
        sw = np.sqrt(wts)
        slope, icpt = (float(v) for v in np.linalg.lstsq(design * sw[:, None], th_a * sw,
                                                          rcond=None)[0])
    # believed only when the residuals show it explains the data: its distance from 1 beyond
    # 1.96 standard errors (95 %), the residuals counted as the independent samples they hold
    # (AR(1): the quiet moments come in runs of correlated samples), weighted as fitted
    e = (th_a - (slope * th_g + icpt)) * np.sqrt(wts)
    n = float(np.sum(wts))
    rho = float(np.clip(np.sum(e[1:] * e[:-1]) / max(float(np.sum(e * e)), 1e-300), 0.0, 0.999))
    n_eff = max(n * (1.0 - rho) / (1.0 + rho), 3.0)
    mean_g = float(np.sum(wts * th_g) / n)
    sxx = float(np.sum(wts * (th_g - mean_g) ** 2))
    se = np.sqrt(float(np.sum(e * e)) / max(n - 2.0, 1.0) / sxx * n / n_eff)
    if abs(slope - 1.0) > MAX_GAIN_ERROR or abs(slope - 1.0) < 1.96 * se:
        return 1.0
    return slope


#: the gain fit's robust reweighting: Huber weights beyond 3σ of Gaussian noise (σ from the
#: residuals' median absolute deviation: noise alone keeps full weight for 99.7 % of samples)
GAIN_ROBUST_ITERATIONS = 3
GAIN_HUBER_SIGMAS = 3.0


#: Tibial rotation with dorsiflexion is 0.05-0.25° per degree (issue 11's published range); a
#: fitted coupling beyond twice the top of it is not the bone's rotation (sway, a twisting
#: drive) and is not believed
MAX_AXIAL_COUPLING = 0.5


def axial_coupling(gyr_rad_s: np.ndarray, up_sensor: np.ndarray, runs: np.ndarray,
                   x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """How far the clip's frame turns about the tibia's long axis per radian of flexion, learnt
    from the drives (``x``, ``y``, ``z``: the calibration's tibia axes).

    The tibia turns about its long axis as it flexes (internal rotation with dorsiflexion:
    R = R_hinge(θ)·R_z(ψ(θ))). The long axis does not move with it, but the clip's frame does:
    "up" read in it turns by β = −ψ about the long axis, which moves the sagittal reading by
    θ(1 − cos β) and puts θ·sin β into the knee track. The gyro shows β: the hinge axis is fixed
    in the bone, so in the clip's frame the drive rate's azimuth about ``z`` turns by β too
    (``gyr_rad_s``: the moving samples, below the wobble), linearly in the flexion
    (``up_sensor``: gravity carried through the same samples). An oblique hinge does not drift
    (its axis is fixed in the bone whatever its tilt), nor does a knee that travels in a
    straight line within a drive (a valgus in step with the flexion: a fixed rotation axis per
    drive, though a different one for each drive). So each movement (``runs``: a label per
    sample, one per run of moving samples) keeps its own azimuth and they share one slope, the
    coupling c = dβ/dθ. Weighted least squares (weight |ω⊥|²: the azimuth's noise is 1/|ω⊥|);
    believed only when the slope stands out of its own uncertainty (1.96 σ, the residuals
    counted as the independent samples they hold) and is plausible (``MAX_AXIAL_COUPLING``),
    else 0: never worse than not fitting. The axes stay as given: the sagittal plane is the
    one the drives move the knee in (the principal axis, their average direction), as without
    the coupling; the foot's own sagittal plane is not observable from the shin (the hinge's
    transverse tilt, 0-10°, turns it from both), and turning ``y`` to the hinge's direction at
    zero flexion read worse on the simulated shins (all effects, wall, seeds 0-19: live
    end-range p95/worst 0.63/0.69° against 0.60/0.65°)."""
    w = np.asarray(gyr_rad_s, dtype=float)
    u = np.asarray(up_sensor, dtype=float)
    if len(w) < 10:
        return 0.0
    hy, hx = w @ y, w @ x
    s = np.where(hy < 0.0, -1.0, 1.0)
    hy, hx = hy * s, hx * s
    beta = np.arctan2(-hx, hy)  # the hinge's azimuth from y, about +z
    theta = np.arctan2(-(u @ x), u @ z)
    wt = hx * hx + hy * hy
    labels = np.unique(runs, return_inverse=True)[1]
    sw = np.bincount(labels, wt)
    if np.ptp(theta) < np.radians(10.0) or not np.all(sw > 0.0):
        return 0.0
    dt = theta - (np.bincount(labels, wt * theta) / sw)[labels]
    db = beta - (np.bincount(labels, wt * beta) / sw)[labels]
    sxx = float(np.sum(wt * dt * dt))
    if sxx <= 0.0:
        return 0.0
    slope = float(np.sum(wt * dt * db) / sxx)
    e = db - slope * dt
    n, k = len(e), int(labels.max()) + 1
    rho = float(np.clip(np.sum(e[1:] * e[:-1]) / max(float(np.sum(e * e)), 1e-300), 0.0, 0.999))
    n_eff = max(n * (1.0 - rho) / (1.0 + rho), float(k + 3))
    # weighted residual variance per unit weight, over the independent samples left
    se = float(np.sqrt(float(np.sum(wt * e * e)) / sxx * (n / n_eff) / max(n_eff - k - 1.0, 1.0)))
    if abs(slope) > MAX_AXIAL_COUPLING or abs(slope) < 1.96 * se:
        return 0.0
    return slope


@dataclass
class StillRun:
    """The still run being grown, the stance's candidate: its raw samples and the 20 ms means of
    its first sample, which the stillness tests compare against."""

    acc_m_s2: list[np.ndarray] = field(default_factory=list)
    gyr_rad_s: list[np.ndarray] = field(default_factory=list)
    t_s: list[np.ndarray] = field(default_factory=list)
    n: int = 0
    first_dir: np.ndarray = field(default_factory=lambda: np.zeros(3))  # unit acc direction
    first_norm_m_s2: float = GRAVITY_M_S2
    first_gyr_rad_s: np.ndarray = field(default_factory=lambda: np.zeros(3))


@dataclass(frozen=True)
class Stance:
    """The still stance the calibration stands on."""

    up: np.ndarray  # mean accelerometer direction (unit, sensor frame) without the tail
    gyr_bias_rad_s: np.ndarray
    n: int  # samples in the still run
    sway_deg: float  # peak tilt from the mean
    sway_rms_deg: float
    gyr_rad_s: np.ndarray  # the whole run's raw gyro
    acc_m_s2: np.ndarray  # the run's accelerometer without its tail (``STANCE_TAIL_S``)
    t_s: np.ndarray  # the whole run's device times


@dataclass
class DriveSegment:
    """A stretch of the knee drives without a link gap in it (over ``MAX_CAL_GAP_S``):
    bias-free gyro, accelerometer, times, which samples moved and the rotation they add up to.
    The first follows the stance, whose gravity it carries; a later one is anchored at its first
    still rest (``REST_S``), ``rest`` its sample range once found."""

    after_stance: bool = False
    gyr_rad_s: list[np.ndarray] = field(default_factory=list)  # without the stance's bias
    acc_m_s2: list[np.ndarray] = field(default_factory=list)
    t_s: list[np.ndarray] = field(default_factory=list)
    moving: list[np.ndarray] = field(default_factory=list)
    n: int = 0
    rotation_rad: float = 0.0
    quiet_n: int = 0  # quiet samples in a row at its end (a rest being found)
    rest: tuple[int, int] | None = None  # [start, stop) of its anchoring rest

    @property
    def anchored(self) -> bool:
        return self.after_stance or self.rest is not None


def _rest_slice(g: DriveSegment) -> slice:
    """The sample range of an anchored later segment's rest (always found: it anchors it)."""
    assert g.rest is not None
    return slice(*g.rest)


@dataclass
class Drives:
    """The knee drives after the stance, in gap-free segments (the current one last)."""

    segments: list[DriveSegment] = field(
        default_factory=lambda: [DriveSegment(after_stance=True)])
    kept_rad: float = 0.0  # rotation of the anchored segments before the current one

    @property
    def rotation_rad(self) -> float:
        """The rotation of the anchored segments (what the calibration can use)."""
        cur = self.segments[-1]
        return self.kept_rad + cur.rotation_rad if cur.anchored else self.kept_rad

    def next_segment(self) -> None:
        """A link gap: the current segment ends (kept when anchored) and a new one begins."""
        cur = self.segments[-1]
        if cur.anchored:
            self.kept_rad += cur.rotation_rad
        else:
            self.segments.pop()
        self.segments.append(DriveSegment())


class NotStandingTall(CalibrationError):
    """The drives show the "stance" was not the athlete standing tall (``MAX_LEVER_TILT_DEG``):
    the calibrator drops it and looks for the next stance."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # without the side and the advice


@dataclass
class CalibratorState:
    """Everything a ``MountingCalibrator`` learns as samples arrive (its settings aside)."""

    still_n: int  # samples of still stance needed (fewer once the calibration started again)
    run: StillRun = field(default_factory=StillRun)
    longest_still_n: int = 0  # the longest still run seen, for the refusal
    # the last window_n − 1 raw samples (gyro, acc) seen, for the stillness tests' means
    window: tuple[np.ndarray, np.ndarray] | None = None
    stance: Stance | None = None
    drives: Drives = field(default_factory=Drives)
    result: MountingCalibration | None = None
    last_t_s: float | None = None  # device time of the last sample seen (for gaps)
    notice: str = ""  # why the calibration started again (a link gap), for the UI
    restarts: list[tuple[float, str]] = field(default_factory=list)  # (device time, message)
    # long axes of stances refused as not standing tall: the next stance is none of them
    refused_ups: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class CalibrationProgress:
    """Where a side's mounting calibration stands, for the UI: data, not a sentence to parse.

    ``phase``: "stance" (stand tall and still), "drives" (drive the knee forward) or
    "calibrated". ``notice``: why it started again, if it did (a link gap, a refused stance)."""

    phase: str
    still_s: float = 0.0  # still stance held so far
    still_need_s: float = ASKED_STILL_S  # the stance asked for (``STILL_S`` is the least taken)
    drive_deg: float = 0.0  # rotation of the knee drives so far
    drive_need_deg: float = 90.0
    notice: str = ""

    @property
    def fraction(self) -> float:
        """How far the current phase is (0..1)."""
        if self.phase == "calibrated":
            return 1.0
        if self.phase == "stance":
            return min(1.0, self.still_s / max(1e-9, self.still_need_s))
        return min(1.0, self.drive_deg / max(1e-9, self.drive_need_deg))

    @property
    def text(self) -> str:
        """What the athlete should do next. The stance's seconds stop at what it needs
        ("1.5 s of 1.5 s", not "3.0 s of 1.5 s": the calibrator takes the stance when the
        drives begin, so standing longer is fine but not more progress)."""
        if self.phase == "calibrated":
            return "calibrated"
        lead = f"{self.notice}; " if self.notice else ""
        if self.phase == "stance":
            return lead + (f"stand tall and still ({min(self.still_s, self.still_need_s):.1f} s "
                           f"of {self.still_need_s:.1f} s)")
        return lead + (f"drive the knee forward slowly ({self.drive_deg:.0f}° of "
                       f"{self.drive_need_deg:.0f}° of movement)")


class MountingCalibrator:
    """Streams samples of one side until the mounting is defined.

    Rule: the first run of ≥ ``still_s`` still samples is the stance (its mean "up" is the tibia
    axis, its mean gyro the bias); after it, moving samples are collected until they add up to
    ``drive_rotation_deg`` of rotation (about two drives forward and back). The drives also give
    the lever arm (ankle to sensor) and, unless ``estimate_acc_offset`` is off, the
    accelerometer's offset in the sagittal plane (:func:`fit_lever_arm_and_offset`: the gyro
    measures how far gravity turned, so what the accelerometer adds is its offset). Refusals:
    swaying during the stance, drives that are not a forward hinge (twisting about the shin,
    random movement).

    Which sensor is the reference decides what is fitted. Without a box calibration the gyro is
    the reference, because its scale is the better-specified of the two (datasheets), and the
    accelerometer's offset is fitted to it. After a box calibration (``dorsimeter sensor-cal``)
    the accelerometer is the reference: ``estimate_acc_offset`` is off, and the flexion-axis
    gyro gain is fitted to the accelerometer.

    The settings are attributes; everything learnt from the samples is in ``state``
    (``CalibratorState``), the result in ``state.result``."""

    # The user is asked to stand still for 5 s and 2 s are taken: a 1.5 s rest between reps is
    # not a stance. After the calibration had to start again mid-protocol (a link gap here, a
    # sensor reboot in the pipeline) the athlete is already drilling, and part of the stance
    # may be gone (a reboot 1.2 s into a 3 s stance leaves 1.8 s): ``RESUMED_STILL_S`` is
    # accepted then. A rest between reps is standing tall (a right zero); a held end range is
    # refused by the lever arm (``MAX_LEVER_TILT_DEG``).
    def __init__(self, side: str, rate_hz: float, still_s: float = STILL_S,
                 drive_rotation_deg: float = 90.0, estimate_acc_offset: bool = True) -> None:
        self.side = side
        self.estimate_acc_offset = estimate_acc_offset
        self.rate_hz = rate_hz
        self.need_rad = np.radians(drive_rotation_deg)
        self.window_n = max(1, int(round(STILL_WINDOW_S * rate_hz)))
        self.state = CalibratorState(still_n=int(round(still_s * rate_hz)))

    def _reset(self) -> None:
        """Forget the stance and drives (not the side, settings or notices)."""
        s = self.state
        s.run, s.stance, s.drives = StillRun(), None, Drives()

    @property
    def progress(self) -> CalibrationProgress:
        """Where the calibration stands, for the UI."""
        s = self.state
        if s.result is not None:
            return CalibrationProgress("calibrated")
        need_s = s.still_n / self.rate_hz
        # a full calibration asks for ``ASKED_STILL_S``; one started again mid-protocol for
        # what it takes (the athlete is drilling)
        ask_s = max(need_s, ASKED_STILL_S) if need_s >= STILL_S else need_s
        return CalibrationProgress(
            "stance" if s.stance is None else "drives", s.run.n / self.rate_hz,
            ask_s, float(np.degrees(s.drives.rotation_rad)),
            float(np.degrees(self.need_rad)), s.notice)

    def add(self, t_s: np.ndarray, gyr: np.ndarray, acc: np.ndarray,
            up: np.ndarray | None = None) -> int | None:
        """Feed samples; returns the index in this batch that completed calibration, if any
        (0 when the samples before a link gap completed it: the gap is before this batch's
        sample 0 or inside it, and the calibration is defined by the last sample before it).

        Needs no fused orientation (``up`` is ignored): the stance gives up from the
        accelerometer and the drives carry it by integrating the bias-corrected gyro, so the
        pipeline can calibrate before it fuses a batch.

        A gap in device time longer than ``MAX_CAL_GAP_S`` ends the phase it falls in (gaps are
        found against the carried last time, so any batch split finds the same ones): drives
        that already hold ``MIN_DRIVE_SHARE`` of the rotation needed are solved with the data
        before the gap; otherwise the calibration starts again after it (``notice`` and
        ``restarts`` say so)."""
        s = self.state
        t = np.asarray(t_s, dtype=float)
        n = len(t)
        if n == 0 or s.result is not None:
            return None
        prev = s.last_t_s
        steps = np.diff(t) if prev is None else np.diff(np.concatenate([[prev], t]))
        missing_s = steps - 1.0 / self.rate_hz
        cuts = (np.flatnonzero(missing_s > MAX_CAL_GAP_S) + (1 if prev is None else 0)).tolist()
        s.last_t_s = float(t[-1])
        steady = self._window_means(np.asarray(gyr, dtype=float), np.asarray(acc, dtype=float))
        start = 0
        for stop in [*cuts, n]:
            if stop > start:
                j = self._add_span(t[start:stop], gyr[start:stop], acc[start:stop],
                                   steady[0][start:stop], steady[1][start:stop])
                if j is not None:
                    return start + j
            if stop < n:
                if stop:
                    t_before = float(t[stop - 1])
                else:
                    # a cut before sample 0 is only found against the carried last time
                    assert prev is not None
                    t_before = float(prev)
                if self._gap(t_before, float(t[stop])):
                    return stop
            start = stop
        return None

    def _bridgeable(self, gap_s: float) -> bool:
        """A gap inside a still stance up to ``MAX_STANCE_GAP_S`` keeps the stance going:
        the shin is still on both sides of it (the stillness tests go on against the run's
        first sample), so the bridged rate is the stance's. In the drives nothing longer than
        ``MAX_CAL_GAP_S`` is bridged."""
        return self.state.stance is None and self.state.run.n > 0 and gap_s <= MAX_STANCE_GAP_S

    def _gap(self, t_before_s: float, t_after_s: float) -> bool:
        """A link gap between two samples: solve with what came before it, or start again.
        True when that completed the calibration."""
        s = self.state
        if self._bridgeable(t_after_s - t_before_s - 1.0 / self.rate_hz):
            return False
        if s.stance is not None and s.drives.rotation_rad >= MIN_DRIVE_SHARE * self.need_rad:
            try:
                s.result = self._solve(t_before_s)
            except NotStandingTall as e:
                self._refuse_stance(t_after_s, e)
                return False
            return True
        if (s.stance is not None
                and t_after_s - t_before_s - 1.0 / self.rate_hz <= MAX_SEGMENT_GAP_S):
            s.drives.next_segment()  # bursty loss: the drives go on, re-anchored after it
            return False
        if s.stance is not None or s.run.n >= s.still_n:
            gap = t_after_s - t_before_s
            s.notice = (f"link lost during calibration ({gap:.1f} s): stand tall and still, "
                        "then drive the knee forward again")
            s.restarts.append((t_after_s, s.notice))
            s.still_n = min(s.still_n, int(round(RESUMED_STILL_S * self.rate_hz)))
        self._reset()
        return False

    def _refuse_stance(self, t_s: float, e: NotStandingTall) -> None:
        """The stance was no tall stance (a held end range, say): drop it and look for the
        next one, the athlete told so; they are mid-protocol, so a rest between reps will do
        (``RESUMED_STILL_S``)."""
        s = self.state
        assert s.stance is not None
        s.refused_ups.append(s.stance.up)
        s.notice = f"{e.reason}: stand tall and still, then drive the knee forward again"
        s.restarts.append((t_s, s.notice))
        s.still_n = min(s.still_n, int(round(RESUMED_STILL_S * self.rate_hz)))
        self._reset()

    def _window_means(self, gyr: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(gyro, acc) averaged over the ``STILL_WINDOW_S`` ending at each sample, for the
        stillness tests (the stream's first sample stands in before it; the previous batch's
        samples are carried, and the sums run in a fixed order: the same floats for any batch
        split). A window may span a link gap: the calibrator ends its phase at a long one."""
        w = self.window_n
        if w == 1:
            return gyr, acc
        s = self.state
        if s.window is None:
            s.window = (np.repeat(gyr[:1], w - 1, axis=0), np.repeat(acc[:1], w - 1, axis=0))
        out = []
        for prev, x in zip(s.window, (gyr, acc), strict=True):
            full = np.concatenate([prev, x])
            total = full[:len(x)].copy()
            for m in range(1, w):
                total += full[m:m + len(x)]
            out.append(total / w)
        s.window = (np.concatenate([s.window[0], gyr])[-(w - 1):],
                    np.concatenate([s.window[1], acc])[-(w - 1):])
        return out[0], out[1]

    def _add_span(self, t_s, gyr, acc, gyr_mean, acc_mean) -> int | None:
        """Samples without a long gap between them (``*_mean``: their ``_window_means``)."""
        s = self.state
        i = 0
        n = len(t_s)
        while i < n and s.result is None:
            if s.stance is None:
                i = self._add_still(t_s, gyr, acc, gyr_mean, acc_mean, i)
            else:
                i = self._add_drives(t_s, gyr, acc, gyr_mean, i)
                if s.result is not None:
                    return i - 1
        return None

    def _add_still(self, t_s, gyr, acc, gm, am, i: int) -> int:
        """Grow the current still run from sample ``i``; returns where to continue.

        The tests judge the 20 ms means ``gm``, ``am`` (``STILL_WINDOW_S``: the same noise at
        any rate); the run keeps the raw samples. A sample is still when the gyro and |acc| are
        quiet and the accelerometer's direction
        stays within ``MAX_STANCE_SWAY_DEG`` of the run's first sample: slow swaying, which the
        gyro threshold alone lets through, starts a new run instead of spoiling the stance."""
        s = self.state
        run = s.run
        n = len(gyr)
        still = (np.linalg.norm(gm[i:], axis=1) < STILL_GYR_ABS_RAD_S) & (
            np.abs(np.linalg.norm(am[i:], axis=1) - GRAVITY_M_S2) < STILL_ACC_ABS_M_S2)
        if run.n == 0:
            first = np.flatnonzero(still)
            if len(first) == 0:
                return n
            i += int(first[0])
            still = still[first[0]:]
            run.first_norm_m_s2 = float(np.linalg.norm(am[i]))
            run.first_dir = am[i] / run.first_norm_m_s2
            run.first_gyr_rad_s = gm[i].copy()
        a = acc[i:]
        norm = np.linalg.norm(am[i:], axis=1)
        cos = (am[i:] @ run.first_dir) / norm
        ok = still & (cos > np.cos(np.radians(MAX_STANCE_SWAY_DEG))) & (
            np.abs(norm - run.first_norm_m_s2) < STILL_ACC_DEV_M_S2) & (
            np.linalg.norm(gm[i:] - run.first_gyr_rad_s, axis=1) < STILL_GYR_RAD_S)
        breaks = np.flatnonzero(~ok)
        end = len(ok) if len(breaks) == 0 else int(breaks[0])
        run.acc_m_s2.append(a[:end])
        run.gyr_rad_s.append(gyr[i:i + end])
        run.t_s.append(np.asarray(t_s[i:i + end], dtype=float))
        run.n += end
        s.longest_still_n = max(s.longest_still_n, run.n)
        if end == len(ok):
            return n
        if run.n >= s.still_n:  # the stance ended with the first movement
            stance = self._stance_of(run)
            if not any(float(stance.up @ u) > np.cos(np.radians(STANCE_MOVED_DEG))
                       for u in s.refused_ups):  # not the hold refused before, again
                s.stance = stance
        s.run = StillRun()
        return i + end

    def _stance_of(self, run: StillRun) -> Stance:
        """The stance from a still run long enough for one."""
        accs = np.concatenate(run.acc_m_s2)
        dirs = accs / np.linalg.norm(accs, axis=1)[:, None]
        gyrs = np.concatenate(run.gyr_rad_s)
        # the run's tail already holds the (slow) onset of the first drive: leave it out of
        # the stance's up and gyro bias
        keep = len(dirs) - min(int(round(STANCE_TAIL_S * self.rate_hz)), len(dirs) // 4)
        mean_up = dirs[:keep].mean(axis=0)
        mean_up = mean_up / np.linalg.norm(mean_up)
        t_run = np.concatenate(run.t_s)
        bias, rots = stance_gyro_bias(gyrs[:keep], accs[:keep], t_run[:keep], self.rate_hz)
        return Stance(mean_up, bias, run.n, *sway_deg(rots, mean_up), gyrs, accs[:keep], t_run)

    def _add_drives(self, t_s, gyr, acc, gm, i: int) -> int:
        """Add samples from ``i`` to the current drive segment; returns where to continue (one
        past the sample that completed the calibration, or refused the stance)."""
        s = self.state
        d = s.drives
        seg = d.segments[-1]
        assert s.stance is not None
        bias = s.stance.gyr_bias_rad_s
        w = gyr[i:] - bias
        rate = np.linalg.norm(w, axis=1)
        moving = rate > MOVING_GYR_RAD_S
        # one sequential running sum from the carried total: the same floats for any batch split
        steps = np.where(moving, rate, 0.0) / self.rate_hz
        cum = np.cumsum(np.concatenate([[seg.rotation_rad], steps]))[1:]
        usable = np.ones(len(w), dtype=bool)
        if not seg.anchored:
            usable = self._find_rest(seg, np.linalg.norm(gm[i:] - bias, axis=1))
        done = np.flatnonzero(usable & (d.kept_rad + cum >= self.need_rad))
        stop = len(w) if len(done) == 0 else done[0] + 1
        seg.moving.append(moving[:stop])
        seg.gyr_rad_s.append(w[:stop])
        seg.acc_m_s2.append(acc[i:i + stop])
        seg.t_s.append(np.asarray(t_s[i:i + stop], dtype=float))
        seg.n += stop
        seg.rotation_rad = float(cum[stop - 1])
        if len(done):
            try:
                s.result = self._solve(float(t_s[i + stop - 1]))
            except NotStandingTall as e:
                self._refuse_stance(float(t_s[i + stop - 1]), e)
        return i + stop

    def _find_rest(self, seg: DriveSegment, rate_rad_s: np.ndarray) -> np.ndarray:
        """Track the quiet run (20 ms mean rate under ``QUIET_GYR_RAD_S``) of a segment not yet
        anchored; True from the sample that completes its first rest (``REST_S``) on. Only the
        samples up to that one are taken into the run (the caller may stop before the end)."""
        need = max(2, int(round(REST_S * self.rate_hz)))
        quiet = rate_rad_s < QUIET_GYR_RAD_S
        # quiet samples in a row at each sample, from the carried count
        run = np.empty(len(quiet), dtype=int)
        k = seg.quiet_n
        for j, q in enumerate(quiet):
            k = k + 1 if q else 0
            run[j] = k
        hit = np.flatnonzero(run >= need)
        if len(hit) == 0:
            seg.quiet_n = k
            return np.zeros(len(quiet), dtype=bool)
        j = int(hit[0])
        seg.rest = (seg.n + j + 1 - need, seg.n + j + 1)
        usable = np.zeros(len(quiet), dtype=bool)
        usable[j:] = True
        return usable

    def _solve(self, t_defined_s: float) -> MountingCalibration:
        st, d = self.state.stance, self.state.drives
        assert st is not None
        bias, sway, sway_rms = st.gyr_bias_rad_s, st.sway_deg, st.sway_rms_deg
        z = st.up / np.linalg.norm(st.up)
        # the anchored segments (the first carries the stance's gravity; one after a link gap
        # its rest's): each one's (gyro, acc, times, moving)
        segs = [g for g in d.segments if g.anchored and g.n]
        parts = [tuple(np.concatenate(c) for c in (g.gyr_rad_s, g.acc_m_s2, g.t_s, g.moving))
                 for g in segs]
        w, a, t_drive, moving = (np.concatenate(c) for c in zip(*parts, strict=True))
        # the flexion axis from the drives' rotation below the clip's wobble (12-25 Hz about
        # any axis after a jolt)
        wm = np.concatenate([lowpassed(p[0], self.rate_hz)[p[3]] for p in parts])
        evals, evecs = np.linalg.eigh(wm.T @ wm)
        axis = evecs[:, -1]
        planarity = float(1.0 - evals[-2] / evals[-1])
        if planarity < MIN_PLANARITY:
            raise CalibrationError(
                f"{self.side}: the movements after the stance were not knee drives (hinge "
                f"quality {100 * planarity:.0f} %, need {100 * MIN_PLANARITY:.0f} %); drive the "
                "knee straight forward and back, slowly")
        tilt = float(np.degrees(np.arcsin(min(1.0, abs(axis @ z)))))
        if tilt > 45.0:
            raise CalibrationError(
                f"{self.side}: the knee drives turned the shin about its own axis "
                f"({tilt:.0f}° from a forward hinge); drive the knee straight forward")
        first = segs[0].after_stance  # the segment after the stance is kept
        later = [(g, p) for g, p in zip(segs, parts, strict=True) if not g.after_stance]
        t_all = np.concatenate([st.t_s, parts[0][2] if first else parts[0][2][:0]])
        ns, nk = len(st.gyr_rad_s), len(st.acc_m_s2)
        # the lever arm and the accelerometer offset, both in the sagittal plane; the whole
        # drive phase at once, so a smoothing (non-causal) derivative is fine and gives the same
        # result for any batch split (segment by segment: the derivative cannot span a gap)
        rates = [smoothed_rates(p[0], self.rate_hz) for p in parts]
        w_s, dw_s = (np.concatenate(c) for c in zip(*rates, strict=True))
        # time since the gravity each segment carries was read (the residual bias's drift)
        t_since = np.concatenate(
            [p[2] - (t_all[0] if g.after_stance else float(np.mean(p[2][_rest_slice(g)])))
             for g, p in zip(segs, parts, strict=True)])
        # the drives see the offset across the flexion axis: x and z made perpendicular to it
        across = z - (z @ axis) * axis
        across /= np.linalg.norm(across)
        r_m = np.zeros(3)
        for second in (False, True):
            if second:
                # sway turns the shin about the ankle, so the stance's accelerometer also reads
                # its rotational acceleration (0.6° at 0.6 Hz, 25 cm up: 4 mg, enough to pass
                # for 0.2 °/s of bias over 2 s); with the lever arm the drives found, the bias
                # again without it
                gs, dgs = smoothed_rates(st.gyr_rad_s[:nk] - bias, self.rate_hz)
                bias, _ = stance_gyro_bias(
                    st.gyr_rad_s[:nk], st.acc_m_s2 - rotational_acc(gs, dgs, r_m),
                    st.t_s[:nk], self.rate_hz)
            rots = carried_rotations(np.concatenate([st.gyr_rad_s - bias, parts[0][0][:len(
                t_all) - ns]]), self.rate_hz, t_all)
            # the stance's mean reading, carried to the frame of its first sample
            acc_st = np.einsum("kij,kj->i", rots[:nk], st.acc_m_s2) / nk
            # each segment's rotations (to the frame its gravity was read in) and that gravity
            # reading: the stance's, or the mean of a later segment's rest
            seg_rots, anchors = ([rots[ns:]], [acc_st]) if first else ([], [])
            for g, p in later:
                assert g.rest is not None  # a segment not after the stance has its rest
                rk = carried_rotations(p[0], self.rate_hz, p[2])
                rk = np.einsum("ji,kjl->kil", rk[g.rest[0]], rk)  # to the rest's first frame
                rest = slice(*g.rest)
                seg_rots.append(rk)
                anchors.append(np.einsum("kij,kj->i", rk[rest], p[1][rest]) / len(rk[rest]))
            drive_rots = seg_rots[0] if len(seg_rots) == 1 else np.concatenate(seg_rots)
            anchor = anchors[0] if len(anchors) == 1 else np.concatenate(
                [np.broadcast_to(v, (len(r), 3)) for r, v in zip(seg_rots, anchors, strict=True)])
            # gravity through the drives (sensor frame): the stance's, turned by the gyro
            u = np.concatenate([np.einsum("kji,j->ki", r, v / np.linalg.norm(v))
                                for r, v in zip(seg_rots, anchors, strict=True)])
            x, y = self._sagittal_axes(axis, z, u[moving])
            fit = fit_lever_arm_and_offset(w_s, dw_s, a, drive_rots, anchor, np.array([x, z]),
                                           y, t_since, rate_hz=self.rate_hz,
                                           offset_basis=np.array([x, across]))
            r_m = fit.r_m
        self._check_lever_arm(fit.r_m, x, z)
        offset = fit.offset_m_s2
        span = float(np.ptp(np.arctan2(-(u @ x), u @ z)))
        # applied only where identifiable (the drives' span) and plausible (the datasheets), and
        # then as the posterior mean under the datasheets' prior (``OFFSET_PRIOR_MG``); else no
        # offset, which is never worse than not fitting
        offset_sigma_mg = 1000.0 * fit.offset_sigma_m_s2 / GRAVITY_M_S2
        if not self.estimate_acc_offset or span < MIN_OFFSET_SPAN_RAD or \
                np.linalg.norm(offset) > MAX_ACC_OFFSET_M_S2:
            # what stays unknown is the offset the fit saw (or its noise), left in
            unknown_mg = max(offset_sigma_mg, 1000.0 * float(np.linalg.norm(offset)) /
                             GRAVITY_M_S2) if self.estimate_acc_offset else 0.0
            offset = np.zeros(3)
        else:
            offset, unknown_mg = shrunk_offset(fit.offset_m_s2, fit.offset_cov, x, z,
                                               stance_acc_m_s2=acc_st, across=across)
        # how sure the zero and the scale are (1σ, degrees at a 40° reading): the stance's mean
        # posture stands for standing tall within the sway's RMS (a few seconds hold part of
        # a cycle), and an offset's uncertainty tilts a 40° reading by about 1° per 17 mg
        uncertainty = float(np.hypot(sway_rms, unknown_mg / OFFSET_MG_PER_DEG))
        # the tibia axis and the gravity the drives turn, without the offset
        z = st.acc_m_s2.mean(axis=0) - offset
        z /= np.linalg.norm(z)
        up_all = np.concatenate([np.einsum("kji,j->ki", r, (v - offset) / np.linalg.norm(
            v - offset)) for r, v in zip(seg_rots, anchors, strict=True)])
        x, y = self._sagittal_axes(axis, z, up_all[moving])
        # the tibia's axial rotation with flexion turns the clip's frame about the long axis
        coupling = axial_coupling(wm, up_all[moving], np.cumsum(np.diff(
            moving.astype(np.int8), prepend=0) > 0)[moving], x, y, z)
        a_grav = a - offset - rotational_acc(w_s, dw_s, fit.r_m)
        # the gain is the accelerometer's verdict on the gyro's scale, so only where the
        # accelerometer is the reference (box-calibrated): uncalibrated, its offset (up to 40 mg,
        # fitted only when it stands out) bends the accelerometer's angle by as much as a 10 %
        # gain would, and the datasheets put the gyro's scale within 1-3 %
        gain = 1.0 if self.estimate_acc_offset else flexion_gyro_gain(
            up_all, a_grav, w_s, dw_s, x, z, self.rate_hz, raw_gyr_rad_s=w)
        return MountingCalibration(
            self.side, as_vec3(x), as_vec3(y), as_vec3(z),
            as_vec3(bias), st.n / self.rate_hz, float(np.degrees(d.rotation_rad)),
            planarity, tilt, t_defined_s, as_vec3(fit.r_m),
            float(fit.residual_m_s2), sway, gain, as_vec3(offset), uncertainty,
            unknown_mg if any(offset) else 0.0, coupling)

    def _check_lever_arm(self, r_m: np.ndarray, x: np.ndarray, z: np.ndarray) -> None:
        """Refuse a lever arm no clip on a shin can have (see ``MAX_LEVER_TILT_DEG``)."""
        norm = float(np.linalg.norm(r_m))
        tilt = float(np.degrees(np.arctan2(abs(r_m @ x), r_m @ z)))
        if norm > MAX_LEVER_ARM_M or (norm > MIN_LEVER_ARM_M and tilt > MAX_LEVER_TILT_DEG):
            reason = (f"the stance was not standing tall (the drives put the sensor "
                      f"{100 * norm:.0f} cm from the ankle, {tilt:.0f}° off the shin's long axis)")
            raise NotStandingTall(f"{self.side}: {reason}; stand tall and still, then drive the "
                                  "knee forward", reason)

    @staticmethod
    def _sagittal_axes(axis: np.ndarray, z: np.ndarray, up_moving: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Tibia x (anterior) and y from the drive axis made perpendicular to ``z``, signed so
        that the drives (``up_moving``: gravity in the sensor frame while moving) read
        knee-forward."""
        y = axis - (axis @ z) * z
        y /= np.linalg.norm(y)
        x = np.cross(y, z)
        u = up_moving
        angle = np.arctan2(-(u @ x), u @ z)
        if angle[np.argmax(np.abs(angle))] < 0:  # drives go knee-forward: make that positive
            x, y = -x, -y
        return x, y

    def refusal(self) -> str:
        """Why the samples seen so far do not define a calibration (and why the last attempt
        started again, if one did)."""
        s = self.state
        before = f"; before that: {s.notice}" if s.notice else ""
        if s.stance is None:
            return (f"{self.side}: no still stance of {s.still_n / self.rate_hz:.1f} s "
                    f"(the longest still stretch was {s.longest_still_n / self.rate_hz:.1f} s; "
                    "the shin moved or swayed: stand tall without moving before the knee drives)"
                    + before)
        return (f"{self.side}: not enough knee drives after the stance "
                f"({np.degrees(s.drives.rotation_rad):.0f}° of movement, need "
                f"{np.degrees(self.need_rad):.0f}°; drive the knee forward 2-3 times)" + before)
