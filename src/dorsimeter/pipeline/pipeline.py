"""The Pipeline: IMU batches in, tibia readings and events out. Pure and synchronous.

The same object serves live monitoring and the re-analysis of a recording; because fusion and
calibration are decided sample by sample, any split of the same stream gives identical readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
from vqf import VQF

from dorsimeter.core.fusion import StreamingFusion, up_in_sensor
from dorsimeter.core.lever_arm import AngularAcceleration, flexion_scaled, rotational_acc
from dorsimeter.core.mounting import (
    ASKED_STILL_S,
    RESUMED_STILL_S,
    STILL_S,
    CalibrationProgress,
    MountingCalibration,
    MountingCalibrator,
)
from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.core.tibia import tibia_angles_deg
from dorsimeter.detect.bank import Detectors, DetectorSettings
from dorsimeter.detect.reps import RepRecord
from dorsimeter.errors import CalibrationError
from dorsimeter.types import GRAVITY_M_S2, ImuBatch, Readings, repeated


@dataclass
class Event:
    """Something the session or UI should know about, at device time ``t_s``."""

    kind: str  # "calibrated" | "calibration_failed" | "rep" | "heel_lift" | "knee_drift" |
    #            "clip_slip" (standing rests no longer read the calibration's stance) |
    #            "restart" (the sensor restarted before the sample at t_s) |
    #            "calibration_restarted" (a link gap ended the stance or drives, or the drives
    #            showed the stance was not standing tall: calibrate again)
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


@dataclass
class SideState:
    """One side's mounting as the pipeline applies it: built when the side's calibration is
    known (found live, or given), with the corrections it makes ready to use."""

    calibration: MountingCalibration
    gyr_bias_rad_s: np.ndarray  # the stance's gyro bias
    acc_offset_m_s2: np.ndarray | None  # the accelerometer offset the drives found, if any
    lever_arm_m: np.ndarray | None  # ankle to sensor, None: no compensation
    active: bool = False  # the side's corrections are on in the fusion

    @classmethod
    def of(cls, cal: MountingCalibration, lever_arm: bool) -> SideState:
        return cls(cal, np.asarray(cal.gyr_bias_rad_s, dtype=float),
                   np.asarray(cal.acc_offset_m_s2) if any(cal.acc_offset_m_s2) else None,
                   cal.lever_arm if lever_arm and any(cal.lever_arm_m) else None)

    def defined_index(self, t_s: np.ndarray) -> int:
        """Index of the first sample after the calibration's defining one (``t_defined_s``)."""
        return int(np.searchsorted(t_s, self.calibration.t_defined_s, side="right"))

    def activation_index(self, t_s: np.ndarray) -> int:
        """Index of the first sample of this batch fused with the side's corrections: the one
        after the calibration's defining sample, so that re-analysing a recording with its
        saved calibration fuses exactly as the live session did; from the start for a stream
        that began after it (a later session)."""
        return 0 if self.active else self.defined_index(t_s)

    def gyro(self, gyr: np.ndarray) -> np.ndarray:
        """The (stance-bias-free) gyro with the mounting's flexion-axis gain once active."""
        cal = self.calibration
        if not self.active or cal.flexion_gyr_gain == 1.0:
            return gyr
        return flexion_scaled(gyr, cal.y_axis, cal.flexion_gyr_gain)

    def compensated(self, acc: np.ndarray, gyr: np.ndarray, dgyr: np.ndarray) -> np.ndarray:
        """The accelerometer without the offset the calibration drives found and without the
        rotational acceleration about the ankle, once active."""
        if not self.active:
            return acc
        if self.acc_offset_m_s2 is not None:
            acc = acc - self.acc_offset_m_s2
        if self.lever_arm_m is None:
            return acc
        return acc - rotational_acc(gyr - self.gyr_bias_rad_s, dgyr, self.lever_arm_m)

    def offset_corrected(self, up: np.ndarray, k: int) -> np.ndarray:
        """``up`` with its first ``k`` samples (fused from the raw accelerometer, before the
        side's corrections started, or a device's own quaternions) corrected for the
        accelerometer offset, as the calibrated axes are."""
        if not k or self.acc_offset_m_s2 is None:
            return up
        return np.concatenate([self.calibration.corrected_up(up[:k]), up[k:]])


@dataclass
class HeldReadings:
    """Fused "up" of a side still calibrating, held until its calibration reads them (``raw``:
    still without the accelerometer-offset correction)."""

    t_s: list[np.ndarray] = field(default_factory=list)
    up: list[np.ndarray] = field(default_factory=list)
    raw: list[bool] = field(default_factory=list)


#: How far back the fusion is warmed up when the side's corrections start with an accelerometer
#: offset to take out (``StreamingFusion.warm_start``): ten of VQF's accelerometer time
#: constants (``tauAcc``), after which what the filter started from weighs e^-10 of its state.
WARM_START_S = 10.0 * float(VQF(0.01).params["tauAcc"])


@dataclass
class Unfused:
    """The fusion's inputs (sensor-calibrated, before any side's corrections) of the samples
    fused since the current side was last active, the newest ``WARM_START_S`` of them: what
    the fusion is warmed up on when the side's corrections start (``Pipeline._fuse``).
    Trimmed by sample count only, so any batch split keeps the same samples."""

    t_s: list[np.ndarray] = field(default_factory=list)
    acc: list[np.ndarray] = field(default_factory=list)
    gyr: list[np.ndarray] = field(default_factory=list)
    dgyr: list[np.ndarray] = field(default_factory=list)
    n: int = 0

    def add(self, t_s: np.ndarray, acc: np.ndarray, gyr: np.ndarray, dgyr: np.ndarray,
            keep: int) -> None:
        if not len(t_s):
            return
        for buf, x in ((self.t_s, t_s), (self.acc, acc), (self.gyr, gyr), (self.dgyr, dgyr)):
            buf.append(np.array(x))
        self.n += len(t_s)
        if self.n > 2 * keep:  # memory stays bounded: keep the newest ``keep``
            t, a, g, d = self.newest(keep)
            self.t_s, self.acc, self.gyr, self.dgyr, self.n = [t], [a], [g], [d], len(t)

    def newest(self, keep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(t_s, acc, gyr, dgyr) of the newest ``keep`` samples."""
        if not self.n:
            return np.empty(0), np.empty((0, 3)), np.empty((0, 3)), np.empty((0, 3))
        t, a, g, d = (np.concatenate(b)[-keep:] for b in (self.t_s, self.acc, self.gyr,
                                                           self.dgyr))
        return t, a, g, d


@dataclass
class PipelineState:
    """Everything a ``Pipeline`` learns from the stream (its settings and its fusion and
    detector components aside): the sides, the calibration under way, what is held for it,
    the restarts and the samples it had to hold."""

    side: str
    sides: dict[str, SideState] = field(default_factory=dict)
    dgyr: AngularAcceleration | None = None  # ω̇ of the current stream
    bias_removed_rad_s: np.ndarray = field(default_factory=lambda: np.zeros(3))  # in fusion
    calibrator: MountingCalibrator | None = None
    held: HeldReadings = field(default_factory=HeldReadings)
    unfused: Unfused = field(default_factory=Unfused)  # what a warm start fuses again
    detector_events: list[Event] = field(default_factory=list)
    restart_pending: bool = False  # an empty batch said "restarted": the next sample is first
    resumed: bool = False  # the next calibration resumes one a restart cut (RESUMED_STILL_S)
    restarts: int = 0  # device restarts seen (``restart`` calls)
    last_good: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # acc, gyr, quat
    last_contact: float = 1.0  # the last plausible heel-switch load (before any: loaded)
    nonfinite_samples: int = 0  # samples with NaN/inf in acc, gyro or quaternion (held)
    implausible_samples: int = 0  # finite samples no sensor can give (held and counted)
    streaming: bool = False  # a sample has been pushed: the rate is the stream's (``set_rate``)


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

    Settings are attributes, the fusion and detectors its components; everything learnt from
    the stream is in ``state`` (``PipelineState``), each side's mounting in one ``SideState``.
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
        self.acc_is_reference = (sensor_cal is not None and sensor_cal.n_poses > 0) \
            if acc_offset is None else not acc_offset
        self.sensor_cal = sensor_cal
        self.lever_arm = lever_arm
        self.auto_calibrate = auto_calibrate
        self.detectors = Detectors(rate_hz, detector_settings)  # heel lift, reps, knee drift
        self.fusion = StreamingFusion(rate_hz)
        self.state = PipelineState(side, {s: SideState.of(c, lever_arm)
                                          for s, c in (calibrations or {}).items()},
                                   AngularAcceleration(rate_hz))

    def set_rate(self, rate_hz: float) -> None:
        """The stream's rate, known once it streams (a BLE family streams at the rate it offers
        nearest the one asked): the fusion, ω̇ and the detectors are made afresh at it. For a
        new stream, before its first batch (``LiveSession`` calls it there). After it, a
        different rate is refused (ValueError): the fusion's and detectors' state is of the
        samples so far, at their rate, and remaking them mid-stream would drop it silently."""
        if self.state.streaming:
            if rate_hz == self.rate_hz:
                return
            raise ValueError(f"the stream's rate is {self.rate_hz:g} Hz since its first "
                             f"batch: a change to {rate_hz:g} Hz mid-stream is refused (a new "
                             "rate needs a new Pipeline)")
        self.rate_hz = rate_hz
        self.detectors = Detectors(rate_hz, self.detectors.settings)
        self.fusion = StreamingFusion(rate_hz)
        self.state.dgyr = AngularAcceleration(rate_hz)

    @property
    def side(self) -> str:
        return self.state.side

    @property
    def calibrations(self) -> dict[str, MountingCalibration]:
        """The mounting of each side known so far (a copy: ``recalibrate`` forgets one)."""
        return {s: st.calibration for s, st in self.state.sides.items()}

    @property
    def restarts(self) -> int:
        return self.state.restarts

    @property
    def nonfinite_samples(self) -> int:
        return self.state.nonfinite_samples

    @property
    def implausible_samples(self) -> int:
        return self.state.implausible_samples

    def set_side(self, side: str) -> None:
        """The sensor is now on ``side``; an uncalibrated side starts a new calibration."""
        if side != self.state.side:
            self.state.side = side
            self.state.unfused = Unfused()  # the other side's samples
            self._reset_calibrator()

    def recalibrate(self) -> None:
        """Forget the current side's mounting (the clip was moved) and calibrate again. A rep
        under way is forgotten too: the new stance and drives are the calibration's, so it
        would otherwise end only after them, a trial spanning the calibration."""
        self.state.sides.pop(self.state.side, None)
        self.state.unfused = Unfused()  # fused with the mounting forgotten
        self._reset_calibrator()
        self.detectors.reps.forget(self.state.side)

    def _reset_calibrator(self) -> None:
        self.state.calibrator = None
        self.state.held = HeldReadings()

    @property
    def progress(self) -> CalibrationProgress:
        """Calibration progress of the current side, for the UI."""
        s = self.state
        if s.side in s.sides:
            return CalibrationProgress("calibrated")
        if s.calibrator is None:  # the next batch starts one
            return CalibrationProgress("stance",
                                       still_need_s=RESUMED_STILL_S if s.resumed else ASKED_STILL_S)
        return s.calibrator.progress

    def push(self, batch: ImuBatch) -> tuple[Readings, list[Event]]:
        """Process one batch; returns the readings that became available and any events."""
        if batch.side is not None:
            self.set_side(batch.side)
        s = self.state
        if len(batch) == 0:
            s.restart_pending |= batch.restart
            return Readings(), []
        s.streaming = True
        if not (batch.restart or s.restart_pending):
            return self._push(batch)
        s.restart_pending = False
        calibrating = s.calibrator is not None
        self.restart()
        event = Event("restart", float(batch.t_s[0]), s.side,
                      "sensor restarted: orientation taken afresh from the accelerometer"
                      + ("; calibration started again" if calibrating else ""))
        readings, events = self._push(batch)
        return readings, [event, *events]

    def _push(self, batch: ImuBatch) -> tuple[Readings, list[Event]]:
        s = self.state
        batch = self._finite(batch)
        acc, gyr = batch.acc_m_s2, batch.gyr_rad_s
        if self.sensor_cal is not None:
            acc, gyr = self.sensor_cal.apply(acc, gyr)
        assert s.dgyr is not None
        dgyr = s.dgyr.update(gyr, batch.t_s)
        known = s.side in s.sides
        cal_events, failed = ([], False) if known or not self.auto_calibrate else \
            self._calibrate(batch, acc, gyr)
        side = s.sides.get(s.side)  # built by ``_calibrate`` when this batch completed it
        quat, k = self._fuse(batch, acc, gyr, dgyr, side)
        up = up_in_sensor(quat)
        self.detectors.feed(batch, up, acc, gyr)  # sensor-calibrated signals
        if side is not None:
            up = side.offset_corrected(up, k)
        if known:
            assert side is not None
            return self._readings(batch.t_s, up, side), self._take_detector_events()
        if not self.auto_calibrate:
            return Readings(), []
        s.held.t_s.append(batch.t_s)
        s.held.up.append(up)
        s.held.raw.append(side is None and (batch.quat is None or not self.quat_is_ours))
        if failed:
            # a refused attempt: the next one starts afresh, and the readings held so far wait
            # for it (the clip has not moved, so its calibration reads them too)
            s.calibrator = None
            return Readings(), cal_events
        if side is None:
            return Readings(), cal_events
        return self._release(side, cal_events)

    def _calibrate(self, batch: ImuBatch, acc: np.ndarray, gyr: np.ndarray
                   ) -> tuple[list[Event], bool]:
        """Feed the current side's calibrator; builds the side's ``SideState`` when this batch
        completed its calibration. Returns its events (link-gap restarts, a refusal) and
        whether it refused."""
        s = self.state
        if s.calibrator is None:
            # a device's own orientation (WitMotion angles, BNO08x) comes from its own
            # accelerometer processing, which we cannot see: no offset fitted for it
            own = batch.quat is None or self.quat_is_ours
            s.calibrator = MountingCalibrator(
                s.side, self.rate_hz, estimate_acc_offset=own and not self.acc_is_reference,
                still_s=RESUMED_STILL_S if s.resumed else STILL_S)
            s.resumed = False
        cal = s.calibrator.state
        seen = len(cal.restarts)
        events, failed = [], False
        try:
            s.calibrator.add(batch.t_s, gyr, acc)
        except CalibrationError as e:
            failed = True
            events.append(Event("calibration_failed", float(batch.t_s[-1]), s.side, str(e)))
        # a link gap in the stance or drives: the calibration started again after it
        events[:0] = [Event("calibration_restarted", t, s.side, msg)
                      for t, msg in cal.restarts[seen:]]
        if cal.result is not None:
            s.sides[s.side] = SideState.of(cal.result, self.lever_arm)
        return events, failed

    def _fuse(self, batch: ImuBatch, acc: np.ndarray, gyr: np.ndarray, dgyr: np.ndarray,
              side: SideState | None) -> tuple[np.ndarray, int]:
        """The batch's orientation, and how many of its first samples were fused without the
        side's corrections (a device's own quaternions: all of them)."""
        if batch.quat is not None:
            return batch.quat, 0 if self.quat_is_ours else len(batch)
        t = batch.t_s
        k = len(t) if side is None else side.activation_index(t)
        head = self.fusion.update(self._gyro(gyr[:k], side), acc[:k], t[:k])
        s = self.state
        if side is None or not side.active:
            s.unfused.add(t[:k], acc[:k], gyr[:k], dgyr[:k], self._warm_start_n)
        if k == len(t):
            return head, k
        assert side is not None
        if not side.active:
            # the side's corrections start here: the gyro without the stance's bias, the
            # flexion gain, the lever arm (the same sample live and in any re-analysis)
            side.active = True
            self.fusion.remove_bias(side.gyr_bias_rad_s - s.bias_removed_rad_s)
            s.bias_removed_rad_s = side.gyr_bias_rad_s
            if side.acc_offset_m_s2 is not None:
                # VQF afresh from the offset-free accelerometer, warmed up on the samples
                # before (the stance and drives, with this side's corrections), not started
                # on this one sample, which may be mid-drive or on a wobbling clip
                tu, au, gu, du = s.unfused.newest(self._warm_start_n)
                self.fusion.warm_start(self._gyro(gu, side), side.compensated(au, gu, du), tu)
            s.unfused = Unfused()
        tail = self.fusion.update(self._gyro(gyr[k:], side),
                                  side.compensated(acc[k:], gyr[k:], dgyr[k:]), t[k:])
        return np.concatenate([head, tail]), k

    @property
    def _warm_start_n(self) -> int:
        return int(round(WARM_START_S * self.rate_hz))

    def _gyro(self, gyr: np.ndarray, side: SideState | None) -> np.ndarray:
        """The gyro as fused: without the sensor's stance bias (once one is known) and, with the
        side's corrections active, with the mounting's flexion-axis gain (element-wise). The
        stance bias is fresh and exact, and VQF's own estimate is clipped at 2 °/s, which cheap
        parts exceed; VQF goes on tracking what drifts after it."""
        removed = self.state.bias_removed_rad_s
        g = gyr - removed if removed.any() else gyr
        return g if side is None else side.gyro(g)

    def _release(self, side: SideState, events: list[Event]) -> tuple[Readings, list[Event]]:
        """The readings held while the side calibrated, now read with its calibration."""
        s = self.state
        cal = side.calibration
        held = s.held
        t = np.concatenate(held.t_s)
        u = np.concatenate([cal.corrected_up(x) if raw else x
                            for x, raw in zip(held.up, held.raw, strict=True)])
        self._reset_calibrator()
        event = Event("calibrated", cal.t_defined_s, s.side, cal.summary(), cal)
        return self._readings(t, u, side), [*events, event, *self._take_detector_events()]

    def restart(self) -> None:
        """The sensor restarted before the next sample (``ImuBatch.restart``): what came before
        says nothing about its orientation or motion now. The fusion starts afresh from the
        next accelerometer sample (keeping its gyro bias estimate), ω̇ starts a new stream and
        the heel detectors' signal history starts again. A mounting calibration under way
        starts again, readings held for it dropped (its drives carry the stance's "up" by the
        gyro, which the outage broke: a wrong zero for the whole session otherwise); so every
        reading already given was annotated before this. Finished calibrations, the side, the
        reps and the session go on."""
        s = self.state
        if s.calibrator is not None:
            self._reset_calibrator()
            s.resumed = True  # the athlete was mid-calibration: part of the stance is gone
        self.fusion.restart()
        s.unfused = Unfused()  # nothing before says anything about the orientation now
        s.dgyr = AngularAcceleration(self.rate_hz)
        self.detectors.restart()
        s.restarts += 1

    def _finite(self, batch: ImuBatch) -> ImuBatch:
        """Non-finite samples (NaN/inf from a faulty sensor or file) and implausible ones
        (beyond every supported part's full scale, ``ACC_LIMIT_M_S2``/``GYR_LIMIT_RAD_S``; a
        quaternion that is not unit-norm) replaced by the last good one: a single NaN or 1e300
        would otherwise poison VQF's state for good. A heel-switch load outside 0–1 is held at
        the last plausible one. Split-independent."""
        q = batch.quat
        if self._all_plausible(batch):  # the usual batch: one whole-array test per channel
            batch = self._plausible_contact(batch)
            bq = batch.quat
            self.state.last_good = (batch.acc_m_s2[-1].copy(), batch.gyr_rad_s[-1].copy(),
                                    np.array([1.0, 0, 0, 0]) if bq is None else bq[-1].copy())
            return batch
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
            self.state.nonfinite_samples += int(np.count_nonzero(~finite))
            self.state.implausible_samples += int(np.count_nonzero(finite & ~good))
            last = self.state.last_good or (np.array([0.0, 0.0, GRAVITY_M_S2]), np.zeros(3),
                                       np.array([1.0, 0.0, 0.0, 0.0]))
            src = np.maximum.accumulate(np.where(good, np.arange(len(batch)), -1))
            held = src >= 0
            acc = np.where(held[:, None], batch.acc_m_s2[np.maximum(src, 0)], last[0])
            gyr = np.where(held[:, None], batch.gyr_rad_s[np.maximum(src, 0)], last[1])
            quat = None if q is None else np.where(held[:, None], q[np.maximum(src, 0)], last[2])
            batch = replace(batch, acc_m_s2=acc, gyr_rad_s=gyr, quat=quat)
        i = len(batch) - 1
        bq = batch.quat  # None exactly when q is
        if good.any() or self.state.last_good is None:
            self.state.last_good = (batch.acc_m_s2[i].copy(), batch.gyr_rad_s[i].copy(),
                               np.array([1.0, 0, 0, 0]) if bq is None else bq[i].copy())
        return batch

    @staticmethod
    def _all_plausible(batch: ImuBatch) -> bool:
        """Every sample finite and plausible (``_finite``'s test for the whole batch at once: a
        NaN fails the comparisons too)."""
        q = batch.quat
        with np.errstate(invalid="ignore", over="ignore"):
            return bool(np.abs(batch.acc_m_s2).max() <= ACC_LIMIT_M_S2
                        and np.abs(batch.gyr_rad_s).max() <= GYR_LIMIT_RAD_S
                        and (q is None or np.abs(np.einsum("ij,ij->i", q, q) - 1.0).max()
                             <= QUAT_NORM_TOL))

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
            self.state.implausible_samples += int(np.count_nonzero(~ok))
            src = np.maximum.accumulate(np.where(ok, np.arange(len(c)), -1))
            c = np.where(src >= 0, c[np.maximum(src, 0)], self.state.last_contact)
            batch = replace(batch, heel_contact=c)
        if len(c):
            self.state.last_contact = float(c[-1])
        return batch

    def _readings(self, t_s: np.ndarray, up: np.ndarray, side: SideState) -> Readings:
        """Readings of the current side. The samples up to the calibration's defining one
        (``t_defined_s``: its stance and drives, as for the fusion's activation) are the
        calibration's own: annotated for the heel, never part of a rep, so calibration drives
        are never numbered, marked or counted as trials or heel-lift attempts."""
        name = self.state.side
        cal = side.calibration
        angle, track = tibia_angles_deg(up, cal.matrix, name, cal.axial_coupling)
        r = Readings(t_s, angle, track, repeated(name, len(t_s)))
        done, alerts = self.detectors.annotate(r, side.calibration,
                                               reps_from=side.defined_index(t_s))
        events = self.state.detector_events
        events += [Event(kind, t, name, msg) for kind, t, msg in alerts]
        events += [
            # a finished rep has its end time
            Event("rep", cast(float, rep.t_end_s), name, f"rep ended at {rep.end_range_deg:.1f}°"
                  + ("" if rep.valid else " (heel lifted, not scored)")
                  + (" (link lost during the rep, not scored)" if rep.link_lost else ""),
                  rep=rep)
            for rep in done]
        return r

    def _take_detector_events(self) -> list[Event]:
        events = sorted(self.state.detector_events, key=lambda e: e.t_s)
        self.state.detector_events = []
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
        calibrator = pipe.state.calibrator
        if calibrator is not None and calibrator.side in missing:
            raise CalibrationError(calibrator.refusal())
        raise CalibrationError(f"{', '.join(sorted(missing))}: no calibration could be made")
    return pipe.calibrations
