"""The detectors the pipeline runs after the tibia angle: heel lift, reps, knee drift.

The pipeline feeds every batch (raw signals and the fused "up") as it arrives, and asks for
annotations when it emits readings — which, before the mounting calibration is defined, can be
a while later and cover many batches at once. The bank buffers the raw samples in between.
The heel-lift source is the best the data offer: heel switch, then foot IMU, then the shank
IMU alone (which needs the calibration's lever arm); ``none`` when there is none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dorsimeter.detect.clipslip import ClipSlipCheck
from dorsimeter.detect.heel import (
    SHANK_MIN_RATE_HZ,
    FootImuDetector,
    HeelSwitchDetector,
    ShankLiftDetector,
)
from dorsimeter.detect.heel_sources import FOOT_IMU, HEEL_SWITCH, NO_SOURCE, SHANK_IMU
from dorsimeter.detect.reps import RepRecord, RepSettings, SideReps
from dorsimeter.types import ImuBatch, Readings, repeated

BUFFER_S = 120.0  # raw samples kept while waiting for readings (an uncalibrated stretch)


def _all_finite(x: np.ndarray) -> bool:
    """Every value finite; a channel the batch lacks (NaN-filled) is told by its first value."""
    return len(x) == 0 or (bool(np.all(np.isfinite(x[0]))) and bool(np.all(np.isfinite(x))))


def lever_arm_of(calibration) -> np.ndarray | None:
    """The ankle-to-sensor vector (sensor frame, m) a calibration carries, if it has one."""
    r = getattr(calibration, "lever_arm_m", None)
    if r is None:
        return None
    r = np.asarray(r, dtype=float).reshape(-1)
    ok = r.shape == (3,) and np.all(np.isfinite(r)) and np.any(r != 0.0)
    return r if ok else None  # all zeros: the calibration did not estimate it


@dataclass
class DetectorSettings:
    """Thresholds a coach may want to change (defaults from the protocol)."""

    reps: RepSettings = field(default_factory=RepSettings)  # hold, rep start/end, knee drift
    heel_to_mth_m: float = 0.19  # heel to metatarsal heads (foot IMU heel height)
    shank_v_on_m_s: float = 0.010  # shank-only detector: ankle vertical velocity threshold


class Detectors:
    """Heel lift → reps → alerts, per sensor (one pipeline). Pure, streaming."""

    def __init__(self, rate_hz: float, settings: DetectorSettings | None = None) -> None:
        self.rate_hz = rate_hz
        self.settings = settings or DetectorSettings()
        self.reps = SideReps(self.settings.reps, rate_hz)  # each leg numbers its own reps
        self.clip: dict[str, tuple[object, ClipSlipCheck]] = {}  # per side: (calibration, check)
        self._buf: dict[str, list[np.ndarray]] = {}
        self._side: str | None = None
        self._reset_heel()

    def set_rep_hold(self, hold_s: float | None) -> None:
        """Reps need an end-range hold of ``hold_s`` from now on (a guided exercise's: its
        runner counts the pipeline's reps, one rep tracker); None: the settings' own again."""
        self.reps.set_hold(hold_s)

    def _reset_heel(self) -> None:
        self.switch = HeelSwitchDetector()
        self.foot: FootImuDetector | None = None
        self.shank: ShankLiftDetector | None = None
        self._shank_cal = None

    def restart(self) -> None:
        """The sensor restarted (``ImuBatch.restart``): the heel detectors' signal history
        starts again (across the jump in the signals it makes a false heel lift); what they
        learnt of the part (foot reference, shank error model) is kept. Reps go on: the
        pipeline's readings are right from the first sample after a restart."""
        if self.foot is not None:
            self.foot.fusion.restart()
        if self.shank is not None:
            self.shank.restart()

    # -- raw data in ------------------------------------------------------------------------
    def feed(self, batch: ImuBatch, up: np.ndarray, acc_m_s2: np.ndarray | None = None,
             gyr_rad_s: np.ndarray | None = None) -> None:
        """Keep this batch's samples until the pipeline emits readings for them.

        ``acc_m_s2``/``gyr_rad_s``: the batch's signals after sensor calibration, when the
        pipeline has one (else the batch's own)."""
        n = len(batch)
        acc = batch.acc_m_s2 if acc_m_s2 is None else acc_m_s2
        gyr = batch.gyr_rad_s if gyr_rad_s is None else gyr_rad_s
        # a channel the batch lacks: a read-only NaN view (no memory written; concatenated
        # with others it becomes a real array)
        cols = {"t": batch.t_s, "gyr": gyr, "acc": acc, "up": up,
                "contact": (np.broadcast_to(np.nan, (n,)) if batch.heel_contact is None
                            else np.asarray(batch.heel_contact, float)),
                "facc": (np.broadcast_to(np.nan, (n, 3)) if batch.foot_acc_m_s2 is None
                         else np.asarray(batch.foot_acc_m_s2, float)),
                "fgyr": (np.broadcast_to(np.nan, (n, 3)) if batch.foot_gyr_rad_s is None
                         else np.asarray(batch.foot_gyr_rad_s, float))}
        for k, v in cols.items():
            self._buf.setdefault(k, []).append(v)

    def _take(self, t_s: np.ndarray) -> dict[str, np.ndarray] | None:
        if not self._buf:
            return None
        if len(self._buf["t"]) == 1 and self._buf["t"][0] is t_s:  # the usual live case
            cols = {k: v[0] for k, v in self._buf.items()}
            self._buf = {}
            return cols
        cols = {k: np.concatenate(v) for k, v in self._buf.items()}
        t = cols["t"]
        start = int(np.searchsorted(t, t_s[0] - 1e-9))
        stop = start + len(t_s)
        if stop > len(t) or not np.allclose(t[start:stop], t_s):
            return None
        keep = t >= t[-1] - BUFFER_S
        keep[:stop] = False
        self._buf = {k: [v[keep]] for k, v in cols.items()} if keep.any() else {}
        return {k: v[start:stop] for k, v in cols.items()}

    # -- readings out -----------------------------------------------------------------------
    def annotate(self, r: Readings, calibration=None, reps_from: int = 0
                 ) -> tuple[list[RepRecord], list[tuple[str, float, str]]]:
        """Fill ``r.heel_lift``, ``heel_source``, ``rep``, ``rep_valid``, ``clip_moved_deg``;
        finished reps, alerts (``heel_lift``, ``knee_drift``, ``clip_slip``).

        The samples before ``reps_from`` (the calibration's stance and drives) get their heel
        columns but belong to no rep: the rep tracker starts after them."""
        if len(r) == 0:
            return [], []
        side = str(r.side[-1])
        if side != self._side:
            self._side = side
            self._reset_heel()
        raw = self._take(r.t_s)
        lift, source = np.zeros(len(r), dtype=bool), NO_SOURCE
        if raw is not None:
            at_rest = np.abs(r.tibia_angle_deg) < 0.5 * self.settings.reps.rep_end_deg
            lift, source = self._heel(raw, calibration, at_rest)
        r.heel_lift = lift
        r.heel_source = repeated(source, len(r)) if isinstance(source, str) \
            else source  # per sample: the shank detector was blind for part of it (a gap)
        if not isinstance(source, str):
            source = SHANK_IMU if (source == SHANK_IMU).all() else NO_SOURCE
        k = min(max(0, reps_from), len(r))
        rep, valid = np.full(len(r), -1, dtype=int), np.ones(len(r), dtype=bool)
        rep[k:], valid[k:], done, alerts = self.reps.update(
            side, r.t_s[k:], r.tibia_angle_deg[k:], r.knee_track_deg[k:], lift[k:], source,
            float(r.t_s[k - 1]) if k else None)  # a gap right after the calibration is one
        r.rep, r.rep_valid = rep, valid
        if side not in self.clip or self.clip[side][0] is not calibration:  # a new stance
            self.clip[side] = (calibration, ClipSlipCheck(self.rate_hz, stance_deg=self.settings
                                                          .reps.rep_end_deg))
        r.clip_moved_deg, slip = self.clip[side][1].update(
            r.t_s, r.tibia_angle_deg, r.knee_track_deg, rep)
        return done, alerts + slip

    def _heel(self, raw: dict[str, np.ndarray], calibration, at_rest: np.ndarray
              ) -> tuple[np.ndarray, str | np.ndarray]:
        """Flags and the source that judged them (per sample for the shank detector, which
        judges nothing for a while after a gap: ``none`` there)."""
        if _all_finite(raw["contact"]):
            return self.switch.update(raw["contact"]), HEEL_SWITCH
        if _all_finite(raw["facc"]) and _all_finite(raw["fgyr"]):
            if self.foot is None:
                self.foot = FootImuDetector(self.rate_hz, self.settings.heel_to_mth_m)
            return self.foot.update(raw["facc"], raw["fgyr"], raw["t"]), FOOT_IMU
        lever = lever_arm_of(calibration)
        if lever is None or self.rate_hz < SHANK_MIN_RATE_HZ:  # see SHANK_MIN_RATE_HZ
            return np.zeros(len(raw["t"]), dtype=bool), NO_SOURCE
        if self.shank is None or self._shank_cal is not calibration:
            bias = getattr(calibration, "gyr_bias_rad_s", (0.0, 0.0, 0.0))
            offset = getattr(calibration, "acc_offset_m_s2", None)  # the fitted one, if any
            self.shank = ShankLiftDetector(self.rate_hz, lever, bias,
                                           v_on_m_s=self.settings.shank_v_on_m_s,
                                           acc_offset_m_s2=(0.0, 0.0, 0.0) if offset is None
                                           else offset,
                                           heel_down_until_s=float(getattr(
                                               calibration, "t_defined_s", -np.inf)))
            self._shank_cal = calibration
        flags = self.shank.update(raw["gyr"], raw["acc"], raw["up"], at_rest, raw["t"])
        watching = self.shank.watching
        if watching.all():  # the usual case: one source for the whole batch
            return flags, SHANK_IMU
        source = repeated(SHANK_IMU, len(flags))
        source[~watching] = NO_SOURCE
        return flags, source
