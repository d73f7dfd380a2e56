"""The Pipeline: IMU batches in, tibia readings and events out. Pure and synchronous.

The same object serves live monitoring and the re-analysis of a recording; because fusion and
calibration are decided sample by sample, any split of the same stream gives identical readings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dorsimeter.core.fusion import StreamingFusion, up_in_sensor
from dorsimeter.core.lever_arm import AngularAcceleration, flexion_scaled, rotational_acc
from dorsimeter.core.mounting import (
    RESUMED_STILL_S,
    STILL_S,
    MountingCalibration,
    MountingCalibrator,
)
from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.core.tibia import tibia_angles_deg
from dorsimeter.detect.bank import Detectors, DetectorSettings
from dorsimeter.detect.reps import RepRecord
from dorsimeter.errors import CalibrationError
from dorsimeter.types import GRAVITY_M_S2, ImuBatch, Readings


@dataclass
class Event:
    """Something the session or UI should know about, at device time ``t_s``."""

    kind: str  # "calibrated" | "calibration_failed" | "rep" | "heel_lift" | "knee_drift" |
    #            "clip_slip" (standing rests no longer read the calibration's stance) |
    #            "restart" (the sensor restarted before the sample at t_s) |
    #            "calibration_restarted" (a link gap ended the stance or drives: calibrate again)
    t_s: float
    side: str
    message: str
    calibration: MountingCalibration | None = None
    rep: RepRecord | None = None  # kind "rep": the rep that just ended


#: Samples beyond these are no sensor's reading (a corrupt cell, a decoding fault): the largest
#: full scale of the supported parts (16 g, 2000 °/s: BMI270, LSM6DSO, ICM-42688, MPU-6500,
#: WitMotion) plus 10 % for their scale and offset errors. They are held like NaNs.
ACC_LIMIT_M_S2 = 1.1 * 16.0 * GRAVITY_M_S2
GYR_LIMIT_RAD_S = 1.1 * float(np.radians(2000.0))
#: a device quaternion further than this from unit norm is corrupt (fixed-point parts: ~1e-3)
QUAT_NORM_TOL = 0.05


class Pipeline:
    """Sensor calibration → lever-arm compensation → fusion → mounting calibration (per side) →
    tibia angle and knee track.

    ``sensor_cal`` corrects the raw channels (accelerometer offset and scale, gyro bias). Once a
    side's mounting is known, the rotational acceleration about the ankle (``ω̇×r + ω×(ω×r)``,
    ``r`` from the calibration drives) is removed from the accelerometer before fusion
    (``lever_arm=False`` turns that off). The mounting calibrator needs no fused orientation, so
    a batch is calibrated first and then fused, the compensation starting at the sample after
    the one that completed the calibration: the same sample for any batch split. Lost samples
    (gaps in device time) are bridged in the fusion and in ω̇ (see ``StreamingFusion``).

    Without a box calibration the mounting calibration also fits the accelerometer's offset
    (``acc_offset``: None decides by ``sensor_cal``). From the same sample it is taken out of
    the accelerometer and VQF starts afresh from it. The "up" of samples fused before that, and
    of a device's own quaternions, is corrected instead (``quat_is_ours``: the batches'
    quaternions are our own offline fusion, already without it).
    """

    def __init__(self, rate_hz: float, calibrations: dict[str, MountingCalibration] | None = None,
                 side: str = "left", auto_calibrate: bool = True,
                 sensor_cal: SensorCalibration | None = None, lever_arm: bool = True,
                 detector_settings: DetectorSettings | None = None,
                 quat_is_ours: bool = False, acc_offset: bool | None = None) -> None:
        self.rate_hz = rate_hz
        # batches' quaternions come from our own (offline) fusion, the accelerometer offset
        # already out; a device's own quaternions get the offset taken out of their "up"
        self.quat_is_ours = quat_is_ours
        # the mounting calibration fits the accelerometer's offset to the gyro (``acc_offset``),
        # by default unless a box calibration made the accelerometer the reference
        self._acc_is_reference = (sensor_cal is not None and sensor_cal.n_poses > 0) \
            if acc_offset is None else not acc_offset
        self.detectors = Detectors(rate_hz, detector_settings)  # heel lift, reps, knee drift
        self._detector_events: list[Event] = []
        self.fusion = StreamingFusion(rate_hz)
        self.sensor_cal = sensor_cal
        self.lever_arm = lever_arm
        self._dgyr = AngularAcceleration(rate_hz)
        self._active: set[str] = set()  # sides whose corrections are on in the fusion
        self._bias_removed = np.zeros(3)  # gyro bias taken off before fusion (the sensor's)
        self.calibrations: dict[str, MountingCalibration] = dict(calibrations or {})
        self.side = side
        self.auto_calibrate = auto_calibrate
        self._calibrator: MountingCalibrator | None = None
        self._pending_t: list[np.ndarray] = []
        self._pending_up: list[np.ndarray] = []
        self._pending_raw: list[bool] = []  # up still without the offset correction

    def set_side(self, side: str) -> None:
        """The sensor is now on ``side``; an uncalibrated side starts a new calibration."""
        if side != self.side:
            self.side = side
            self._reset_calibrator()

    def recalibrate(self) -> None:
        """Forget the current side's mounting (the clip was moved) and calibrate again."""
        self.calibrations.pop(self.side, None)
        self._active.discard(self.side)
        self._reset_calibrator()

    def _reset_calibrator(self) -> None:
        self._calibrator = None
        self._pending_t, self._pending_up, self._pending_raw = [], [], []

    @property
    def status(self) -> str:
        """Calibration state of the current side, for the UI."""
        if self.side in self.calibrations:
            return "calibrated"
        if self._calibrator is None:
            return "stand tall and still"
        return self._calibrator.progress

    def push(self, batch: ImuBatch) -> tuple[Readings, list[Event]]:
        """Process one batch; returns the readings that became available and any events."""
        if batch.side is not None:
            self.set_side(batch.side)
        if len(batch) == 0:
            self._restart_pending |= batch.restart
            return Readings(), []
        if not (batch.restart or self._restart_pending):
            return self._push(batch)
        self._restart_pending = False
        calibrating = self._calibrator is not None
        self.restart()
        event = Event("restart", float(batch.t_s[0]), self.side,
                      "sensor restarted: orientation taken afresh from the accelerometer"
                      + ("; calibration started again" if calibrating else ""))
        readings, events = self._push(batch)
        return readings, [event, *events]

    def _push(self, batch: ImuBatch) -> tuple[Readings, list[Event]]:
        batch = self._finite(batch)
        acc, gyr = batch.acc_m_s2, batch.gyr_rad_s
        if self.sensor_cal is not None:
            acc, gyr = self.sensor_cal.apply(acc, gyr)
        dgyr = self._dgyr.update(gyr, batch.t_s)
        side = self.side
        done, failure, restarted = None, None, []
        if side not in self.calibrations and self.auto_calibrate:
            if self._calibrator is None:
                # a device's own orientation (WitMotion angles, BNO08x) comes from its own
                # accelerometer processing, which we cannot see: no offset fitted for it
                own = batch.quat is None or self.quat_is_ours
                self._calibrator = MountingCalibrator(
                    side, self.rate_hz, estimate_acc_offset=own and not self._acc_is_reference,
                    still_s=RESUMED_STILL_S if self._resumed else STILL_S)
                self._resumed = False
            seen = len(self._calibrator.restarts)
            try:
                done = self._calibrator.add(batch.t_s, gyr, acc)
            except CalibrationError as e:
                failure = Event("calibration_failed", float(batch.t_s[-1]), side, str(e))
            # a link gap in the stance or drives: the calibration started again after it
            restarted = [Event("calibration_restarted", t, side, msg)
                         for t, msg in self._calibrator.restarts[seen:]]
            if done is not None:
                self.calibrations[side] = self._calibrator.result
        k = len(batch)  # samples fused without the side's corrections
        if batch.quat is not None:
            quat = batch.quat
            k = 0 if self.quat_is_ours else len(batch)
        else:
            t = batch.t_s
            k = self._activation_index(t, side)
            head = self.fusion.update(self._gyro(gyr[:k], side), acc[:k], t[:k])
            if k < len(batch) and side not in self._active:
                # the side's corrections start here: the gyro without the stance's bias, the
                # flexion gain, the lever arm (the same sample live and in any re-analysis)
                self._active.add(side)
                bias = np.asarray(self.calibrations[side].gyr_bias_rad_s, dtype=float)
                self.fusion.remove_bias(bias - self._bias_removed)
                self._bias_removed = bias
                if any(self.calibrations[side].acc_offset_m_s2):
                    self.fusion.reset_orientation()  # from the offset-free accelerometer
            quat = head if k == len(batch) else np.concatenate(
                [head, self.fusion.update(self._gyro(gyr[k:], side),
                                          self._compensated(acc[k:], gyr[k:], dgyr[k:], side),
                                          t[k:])])
        up = up_in_sensor(quat)
        self.detectors.feed(batch, up, acc, gyr)  # sensor-calibrated signals
        cal = self.calibrations.get(side)
        if cal is not None and k:
            up = self._offset_corrected(up, k, cal)
        if side in self.calibrations and done is None:
            return self._readings(batch.t_s, up, side), self._take_detector_events()
        if not self.auto_calibrate:
            return Readings(), []
        self._pending_t.append(batch.t_s)
        self._pending_up.append(up)
        self._pending_raw.append(cal is None and (batch.quat is None or not self.quat_is_ours))
        if failure is not None:
            # a refused attempt: the next one starts afresh, and the readings held so far wait
            # for it (the clip has not moved, so its calibration reads them too)
            self._calibrator = None
            return Readings(), [*restarted, failure]
        if done is None:
            return Readings(), restarted
        cal = self._calibrator.result
        t = np.concatenate(self._pending_t)
        u = np.concatenate([cal.corrected_up(x) if raw else x
                            for x, raw in zip(self._pending_up, self._pending_raw, strict=True)])
        self._reset_calibrator()
        event = Event("calibrated", cal.t_defined_s, side, cal.summary(), cal)
        return self._readings(t, u, side), [*restarted, event, *self._take_detector_events()]

    _restart_pending = False  # an empty batch said "restarted": the next sample is the first

    def restart(self) -> None:
        """The sensor restarted before the next sample (``ImuBatch.restart``): what came before
        says nothing about its orientation or motion now. The fusion starts afresh from the
        next accelerometer sample (keeping its gyro bias estimate), ω̇ starts a new stream and
        the heel detectors' signal history starts again. A mounting calibration under way
        starts again, readings held for it dropped (its drives carry the stance's "up" by the
        gyro, which the outage broke: a wrong zero for the whole session otherwise); so every
        reading already given was annotated before this. Finished calibrations, the side, the
        reps and the session go on."""
        if self._calibrator is not None:
            self._reset_calibrator()
            self._resumed = True  # the athlete was mid-calibration: part of the stance is gone
        self.fusion.restart()
        self._dgyr = AngularAcceleration(self.rate_hz)
        self.detectors.restart()
        self.restarts += 1

    restarts = 0  # device restarts seen (``restart`` calls)
    _resumed = False  # the next calibration resumes one a restart cut (``RESUMED_STILL_S``)
    _last_good: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    _last_contact = 1.0  # the last plausible heel-switch load (before any: loaded, standing)
    nonfinite_samples = 0  # samples with NaN/inf in acc, gyro or quaternion (held, counted)
    implausible_samples = 0  # finite samples no sensor can give (held and counted the same)

    def _finite(self, batch: ImuBatch) -> ImuBatch:
        """Non-finite samples (NaN/inf from a faulty sensor or file) and implausible ones
        (beyond every supported part's full scale, ``ACC_LIMIT_M_S2``/``GYR_LIMIT_RAD_S``; a
        quaternion that is not unit-norm) replaced by the last good one: a single NaN or 1e300
        would otherwise poison VQF's state for good. A heel-switch load outside 0–1 is held at
        the last plausible one. Split-independent."""
        q = batch.quat
        acc_ok = np.isfinite(batch.acc_m_s2).all(axis=1)
        gyr_ok = np.isfinite(batch.gyr_rad_s).all(axis=1)
        finite = acc_ok & gyr_ok
        with np.errstate(invalid="ignore", over="ignore"):
            good = finite & (np.abs(batch.acc_m_s2) <= ACC_LIMIT_M_S2).all(axis=1) \
                & (np.abs(batch.gyr_rad_s) <= GYR_LIMIT_RAD_S).all(axis=1)
            if q is not None:
                q_ok = np.isfinite(q).all(axis=1)
                finite &= q_ok
                good &= q_ok & (np.abs(np.einsum("ij,ij->i", q, q) - 1.0) <= QUAT_NORM_TOL)
        batch = self._plausible_contact(batch)
        if not good.all():
            self.nonfinite_samples += int(np.count_nonzero(~finite))
            self.implausible_samples += int(np.count_nonzero(finite & ~good))
            last = self._last_good or (np.array([0.0, 0.0, GRAVITY_M_S2]), np.zeros(3),
                                       np.array([1.0, 0.0, 0.0, 0.0]))
            src = np.maximum.accumulate(np.where(good, np.arange(len(batch)), -1))
            held = src >= 0
            acc = np.where(held[:, None], batch.acc_m_s2[np.maximum(src, 0)], last[0])
            gyr = np.where(held[:, None], batch.gyr_rad_s[np.maximum(src, 0)], last[1])
            quat = None if q is None else np.where(held[:, None], q[np.maximum(src, 0)], last[2])
            batch = replace(batch, acc_m_s2=acc, gyr_rad_s=gyr, quat=quat)
        i = len(batch) - 1
        if good.any() or self._last_good is None:
            self._last_good = (batch.acc_m_s2[i].copy(), batch.gyr_rad_s[i].copy(),
                               np.array([1.0, 0, 0, 0]) if q is None else batch.quat[i].copy())
        return batch

    def _plausible_contact(self, batch: ImuBatch) -> ImuBatch:
        """The heel-switch load with NaN and values outside 0–1 held at the last plausible one
        (counted as implausible)."""
        c = batch.heel_contact
        if c is None:
            return batch
        c = np.asarray(c, dtype=float)
        with np.errstate(invalid="ignore"):
            ok = (c >= 0.0) & (c <= 1.0)
        if not ok.all():
            self.implausible_samples += int(np.count_nonzero(~ok))
            src = np.maximum.accumulate(np.where(ok, np.arange(len(c)), -1))
            c = np.where(src >= 0, c[np.maximum(src, 0)], self._last_contact)
            batch = replace(batch, heel_contact=c)
        if len(c):
            self._last_contact = float(c[-1])
        return batch

    def _compensated(self, acc: np.ndarray, gyr: np.ndarray, dgyr: np.ndarray, side: str
                     ) -> np.ndarray:
        """The accelerometer without the rotational acceleration about the ankle and without
        the offset the calibration drives found."""
        cal = self.calibrations.get(side)
        if cal is None or side not in self._active:
            return acc
        if any(cal.acc_offset_m_s2):
            acc = acc - np.asarray(cal.acc_offset_m_s2)
        if not self.lever_arm or not any(cal.lever_arm_m):
            return acc
        return acc - rotational_acc(gyr - np.asarray(cal.gyr_bias_rad_s), dgyr, cal.lever_arm)

    @staticmethod
    def _offset_corrected(up: np.ndarray, k: int, cal: MountingCalibration) -> np.ndarray:
        """``up`` with its first ``k`` samples (fused from the raw accelerometer, before the
        side's corrections started, or a device's own quaternions) corrected for the
        accelerometer offset, as the calibrated axes are."""
        if not any(cal.acc_offset_m_s2):
            return up
        return np.concatenate([cal.corrected_up(up[:k]), up[k:]])

    def _activation_index(self, t_s: np.ndarray, side: str) -> int:
        """Index of the first sample of this batch fused with the side's corrections: the one
        after the calibration's defining sample (``t_defined_s``), so that re-analysing a
        recording with its saved calibration fuses exactly as the live session did; from the
        start for a stream that began after it (a later session)."""
        if side in self._active:
            return 0
        cal = self.calibrations.get(side)
        if cal is None:
            return len(t_s)
        return int(np.searchsorted(t_s, cal.t_defined_s, side="right"))

    def _gyro(self, gyr: np.ndarray, side: str) -> np.ndarray:
        """The gyro as fused: without the sensor's stance bias (once one is known) and, with the
        side's corrections active, with the mounting's flexion-axis gain (element-wise). The
        stance bias is fresh and exact, and VQF's own estimate is clipped at 2 °/s, which cheap
        parts exceed; VQF goes on tracking what drifts after it."""
        g = gyr - self._bias_removed if self._bias_removed.any() else gyr
        cal = self.calibrations.get(side)
        if cal is None or side not in self._active or cal.flexion_gyr_gain == 1.0:
            return g
        return flexion_scaled(g, cal.y_axis, cal.flexion_gyr_gain)

    def _readings(self, t_s: np.ndarray, up: np.ndarray, side: str) -> Readings:
        """Readings of ``side``. The samples up to the calibration's defining one
        (``t_defined_s``: its stance and drives, as for the fusion's activation) are the
        calibration's own: annotated for the heel, never part of a rep, so calibration drives
        are never numbered, marked or counted as trials or heel-lift attempts."""
        cal = self.calibrations[side]
        angle, track = tibia_angles_deg(up, cal.matrix, side)
        r = Readings(t_s, angle, track, np.full(len(t_s), side, dtype=object))
        self._detect(r, side, int(np.searchsorted(t_s, cal.t_defined_s, side="right")))
        return r

    def _detect(self, r: Readings, side: str, calibrating: int = 0) -> None:
        """Heel lift, reps and knee drift for these readings (fills their columns)."""
        done, alerts = self.detectors.annotate(r, self.calibrations.get(side),
                                               reps_from=calibrating)
        self._detector_events += [Event(kind, t, side, msg) for kind, t, msg in alerts]
        self._detector_events += [
            Event("rep", rep.t_end_s, side, f"rep ended at {rep.end_range_deg:.1f}°"
                  + ("" if rep.valid else " (heel lifted, not scored)")
                  + (" (link lost during the rep, not scored)" if rep.link_lost else ""),
                  rep=rep)
            for rep in done]

    def _take_detector_events(self) -> list[Event]:
        events = sorted(self._detector_events, key=lambda e: e.t_s)
        self._detector_events = []
        return events


def calibrate_recording(batches: list[ImuBatch], rate_hz: float,
                        sensor_cal: SensorCalibration | None = None,
                        sides: set[str] | None = None) -> dict[str, MountingCalibration]:
    """Mounting calibration per side of a recording, exactly as the live pipeline finds it.

    ``sides``: every side the recording has, when known; the batches are then read only until
    each has its calibration (the first one stays: nothing later changes it)."""
    pipe = Pipeline(rate_hz, sensor_cal=sensor_cal)
    seen: set[str] = set()
    for b in batches:
        if sides is not None and sides <= set(pipe.calibrations):
            seen |= sides
            break
        seen.add(b.side or pipe.side)
        _, events = pipe.push(b)
        for e in events:
            if e.kind == "calibration_failed":
                raise CalibrationError(e.message)
    missing = seen - set(pipe.calibrations)
    if missing:
        if pipe._calibrator is not None and pipe._calibrator.side in missing:
            raise CalibrationError(pipe._calibrator.refusal())
        raise CalibrationError(f"{', '.join(sorted(missing))}: no calibration could be made")
    return pipe.calibrations
