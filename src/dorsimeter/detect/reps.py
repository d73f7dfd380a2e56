"""Streaming rep segmentation: drives, lunges and mobilisation reps from the tibia angle.

A rep starts when the tibia angle rises above ``start_deg`` and ends when it falls back below
``end_deg`` (the calibrated stance reads 0°). Inside a rep, a *hold* is a run of samples whose
angular rate (over ``rate_window_s``) stays below ``hold_rate_deg_s``; the rep's end-range
angle is the median of its best hold lasting at least ``hold_s`` (the highest such hold). A rep
with a heel lift is kept but marked invalid; only valid reps with a hold are scored.
A rep the link dropped out of for longer than ``MAX_GAP_IN_REP_S`` is kept but not scored
(``gap_s``): the fusion bridges a gap by interpolating the gyro, which during a drive misses
the rotation by up to α·T²/8 (α the drive's peak angular acceleration), and after a longer gap
starts afresh from the accelerometer; neither is a measured angle. A rep that began while the
link was down for longer than that is no rep at all (its start was never seen): the tracker
waits for the angle to come back to rest. A rep such a drop cut into is a trial only for what
was seen before it (``t_lost_s``): its hold reached, or the heel lifted; a hold it reaches
after the drop was not seen whole (its start or the rep's arrival at end range was lost), so
it neither counts the rep nor makes it a trial, as a physio would not count an attempt they
looked away from. A few lost packets (up to ``MAX_GAP_IN_REP_S``) change nothing of that.
Vectorised: a Python loop runs only over rep, hold and gap boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dorsimeter.detect.hysteresis import hysteresis

#: Peak angular acceleration of the tibia in a drive: a minimum-jerk 40° drive in 1.5 s peaks
#: at 5.77·40°/1.5² ≈ 100°/s².
DRIVE_PEAK_ACC_DEG_S2 = 100.0
#: What a bridged gap may cost a scored angle: half the live p95 target (0.5°).
BRIDGE_ERROR_DEG = 0.25
#: Longest gap a scored rep may contain: α·T²/8 ≤ BRIDGE_ERROR_DEG → T ≈ 0.14 s (a few lost
#: packets pass; a link drop does not).
MAX_GAP_IN_REP_S = float(np.sqrt(8.0 * BRIDGE_ERROR_DEG / DRIVE_PEAK_ACC_DEG_S2))


def median(x: np.ndarray) -> float:
    """``np.median`` of a non-empty 1-D float array, the same value (the same partition, mean of
    the two middle values, NaN when any is), without its general-purpose overhead."""
    n = len(x)
    h = n // 2
    part = np.partition(x, [h - 1, h, -1] if n % 2 == 0 else [h, -1])
    if np.isnan(part[-1]):
        return float("nan")
    return float(part[h]) if n % 2 else float((part[h - 1] + part[h]) / 2.0)


@dataclass
class RepRecord:
    """One rep as the coach reads it. Angles in degrees, times device seconds.

    ``end_range_deg``: the held angle (median of the best hold), or the peak when the rep never
    held. ``hold_reached_s``: when the hold reached the required length (None: never), which is
    when a guided exercise counts the rep. ``valid``: no heel lift during the rep.
    ``peak_valgus_deg``: largest knee track (toward the midline) in the rep;
    ``knee_drift_deg``: how far the knee moved toward the midline from the rep's start.
    ``gap_s``: the longest stretch of samples the link lost inside the rep (a rep with more
    than ``MAX_GAP_IN_REP_S`` is not scored: its angle was not measured throughout).
    ``t_lost_s``: device time of the last sample before the first such drop (None: none); a
    hold reached after it is not ``held``, a heel lift after it makes no trial.
    """

    index: int
    side: str
    t_start_s: float
    t_end_s: float | None = None
    peak_deg: float = -np.inf
    end_range_deg: float | None = None
    hold_s: float = 0.0
    hold_reached_s: float | None = None
    valid: bool = True
    heel_source: str = "none"
    lift_t_s: float | None = None
    start_track_deg: float = 0.0
    peak_valgus_deg: float = -np.inf
    knee_drift_deg: float = 0.0
    knee_drift_alert: bool = False
    holds: list[tuple[float, float, float]] = field(default_factory=list)  # (t0, t1, median)
    exercise: str | None = None  # set by the session ("wall_test" when None)
    set_no: int | None = None  # the session's set (a guided set, or the wall-test trial)
    rep_no: int | None = None  # the session's 1-based number per leg and exercise (None: not
    #                            a rep the session counted, e.g. a quick movement)
    gap_s: float = 0.0
    t_lost_s: float | None = None

    @property
    def link_lost(self) -> bool:
        """The link dropped out inside the rep for longer than a scored angle allows."""
        return self.gap_s > MAX_GAP_IN_REP_S

    @property
    def held(self) -> bool:
        """The end-range hold lasted long enough."""
        return self.hold_reached_s is not None

    @property
    def scored(self) -> bool:
        """Counts toward results: held at end range with the heel down, measured throughout."""
        return self.valid and self.held and not self.link_lost

    @property
    def is_trial(self) -> bool:
        """A test attempt: held at end range, or invalidated by a heel lift, before any link
        drop cut into it. Quick movements without a hold (the calibration drives) are not
        trials."""
        lifted = not self.valid and (self.t_lost_s is None or self.lift_t_s is None
                                     or self.lift_t_s <= self.t_lost_s)
        return self.held or lifted

    @property
    def angle_deg(self) -> float | None:
        """The angle stored for the rep: the held end-range angle, else its peak (None: no
        sample above the start threshold was seen, e.g. a rep cut short before it began)."""
        if self.end_range_deg is not None:
            return float(self.end_range_deg)
        return float(self.peak_deg) if np.isfinite(self.peak_deg) else None

    @property
    def score_deg(self) -> float | None:
        """The wall-test score of this rep (None when not scored)."""
        return self.end_range_deg if self.scored else None


@dataclass(frozen=True)
class RepSettings:
    """The rep tracker's thresholds, defined once: the pipeline's detectors track reps with them
    (``DetectorSettings.reps``) and the session segments a readings file with the same
    (``SessionSettings.reps``). Defaults from the protocol."""

    hold_s: float = 1.0  # end-range hold that scores a wall-test drive
    rep_start_deg: float = 8.0  # a rep starts above this tibia angle …
    rep_end_deg: float = 4.0  # … and ends back below this one (the stance reads 0°)
    drift_alert_deg: float = 5.0  # knee toward the midline during a drive

    def tracker(self, rate_hz: float) -> RepTracker:
        """A rep tracker with these thresholds."""
        return RepTracker(rate_hz, self.rep_start_deg, self.rep_end_deg, self.hold_s,
                          drift_alert_deg=self.drift_alert_deg)


class RepTracker:
    """Assigns samples to reps and reports each rep when it ends (see module docstring)."""

    def __init__(self, rate_hz: float, start_deg: float = 8.0, end_deg: float = 4.0,
                 hold_s: float = 1.0, hold_rate_deg_s: float = 3.0, rate_window_s: float = 0.2,
                 drift_alert_deg: float = 5.0) -> None:
        self.rate_hz = rate_hz
        self.start_deg, self.end_deg = start_deg, end_deg
        self.hold_s = hold_s
        self.hold_rate_deg_s = hold_rate_deg_s
        self.lag = max(1, int(round(rate_window_s * rate_hz)))
        self.drift_alert_deg = drift_alert_deg
        self.next_index = 0
        self.current: RepRecord | None = None
        self.reps: list[RepRecord] = []
        self._in_rep = False
        self._hist = np.empty(0)  # the last ``lag`` angles (rate window)
        self._run: list[np.ndarray] = []  # angles of the hold under way
        self._run_t0: float | None = None
        self._run_last_t = 0.0  # device time of the hold's last sample so far
        self._side: str | None = None
        self._last_t: float | None = None  # device time of the last sample (for gaps)
        # the link came back mid-rep after a drop longer than ``MAX_GAP_IN_REP_S`` that began
        # before the rep: its start was never seen, so no rep until the angle is back at rest
        self._unseen = False

    @property
    def hold_started_s(self) -> float | None:
        """Start of the hold under way in the current rep (None: not holding, or a hold that
        cannot count: the link dropped out of the rep)."""
        cur = self.current
        return self._run_t0 if cur is not None and cur.t_lost_s is None else None

    @property
    def hold_angle_deg(self) -> float | None:
        """Median angle of the hold under way (None: not holding)."""
        if self.current is None or self._run_t0 is None or not self._run:
            return None
        return float(np.median(np.concatenate(self._run)))

    def set_hold(self, hold_s: float) -> None:
        """The end-range hold a rep needs from now on (a guided exercise's own, or back to the
        settings' one). The rep under way is judged by it too: its hold is reached when one of
        its holds so far (or the one under way) lasted ``hold_s``."""
        if hold_s == self.hold_s:
            return
        self.hold_s = hold_s
        cur = self.current
        if cur is None:
            return
        seen = np.inf if cur.t_lost_s is None else cur.t_lost_s + 1.5 / self.rate_hz
        cur.hold_reached_s = next((t0 + hold_s for t0, t1, _ in cur.holds
                                   if t1 - t0 >= hold_s and t1 <= seen), None)
        if cur.hold_reached_s is None and self._run_t0 is not None and self._last_t is not None:
            self._check_hold(self._last_t)

    def reset(self) -> None:
        """Forget the rep under way (the sensor moved to the other leg)."""
        self.current, self._in_rep, self._hist = None, False, np.empty(0)
        self._run, self._run_t0, self._unseen = [], None, False

    def update(self, t_s: np.ndarray, angle_deg: np.ndarray, track_deg: np.ndarray,
               heel_lift: np.ndarray, side: str, heel_source: str = "none",
               t_before_s: float | None = None
               ) -> tuple[np.ndarray, np.ndarray, list[RepRecord], list[tuple[str, float, str]]]:
        """Rep index and running validity per sample, reps finished, and alerts.

        Alerts are ``(kind, t_s, message)`` with kind ``heel_lift`` or ``knee_drift``.
        ``t_before_s``: device time of the sample before ``t_s[0]`` that the tracker was not
        given (the calibration's last): a link gap after it is a gap here too.
        """
        if side != self._side:
            self.reset()
            self._side = side
        n = len(t_s)
        rep = np.full(n, -1, dtype=int)
        valid = np.ones(n, dtype=bool)
        done: list[RepRecord] = []
        alerts: list[tuple[str, float, str]] = []
        if n == 0:
            return rep, valid, done, alerts
        full = np.concatenate([self._hist, angle_deg])
        prev = full[:n] if len(self._hist) >= self.lag else np.concatenate(
            [np.full(self.lag - len(self._hist), full[0]), full])[:n]
        rate = np.abs(angle_deg - prev) * self.rate_hz / self.lag
        self._hist = full[-self.lag:]
        holding = rate < self.hold_rate_deg_s
        in_rep, _ = hysteresis(angle_deg, self.start_deg, self.end_deg,
                                              self._in_rep)
        # samples lost before each sample (against the last one seen: split-independent)
        seen = [x for x in (self._last_t, t_before_s) if x is not None]
        prev_t = max(seen) if seen else t_s[0]
        lost_s = np.diff(np.concatenate([[prev_t], t_s])) - 1.0 / self.rate_hz
        self._last_t = float(t_s[-1])
        gap = lost_s > 0.5 / self.rate_hz
        # segment boundaries: where in_rep or holding or heel_lift changes, and gaps
        change = np.flatnonzero((np.diff(in_rep.astype(int)) != 0)
                                | (np.diff(holding.astype(int)) != 0)
                                | (np.diff(heel_lift.astype(int)) != 0) | gap[1:]) + 1
        bounds = np.concatenate([[0], change, [n]])
        # per segment, as Python values: its flags at its first sample and its maxima (one
        # pass; a maximum is exact, so these are the floats of ``seg.max()``)
        starts = bounds[:-1]
        seg_top_a = np.maximum.reduceat(angle_deg, starts).tolist()
        seg_top_k = np.maximum.reduceat(track_deg, starts).tolist()
        seg_in_rep, seg_gap = in_rep[starts].tolist(), gap[starts].tolist()
        seg_lost_s = lost_s[starts].tolist()
        for s, (a, b) in enumerate(zip(starts.tolist(), bounds[1:].tolist(), strict=True)):
            seg_in = seg_in_rep[s]
            if seg_gap[s] and self.current is not None:  # the link dropped out inside the rep
                self.current.gap_s = max(self.current.gap_s, seg_lost_s[s])
                if seg_lost_s[s] > MAX_GAP_IN_REP_S:  # a drop, not a few lost packets
                    if self.current.t_lost_s is None:
                        # the last sample before the drop: nothing after it makes a trial
                        self.current.t_lost_s = float(t_s[a] - lost_s[a]) - 1.0 / self.rate_hz
                    self._close_run(float(t_s[a]))  # a hold is not held across a drop
            if seg_in and self.current is None and seg_gap[s] \
                    and seg_lost_s[s] > MAX_GAP_IN_REP_S:
                self._unseen = True  # the rep began while the link was down: not seen begin
            if not seg_in:
                self._unseen = False
            if seg_in and self._unseen:
                continue  # the rest of a rep whose start the link lost: no rep, no trial
            if seg_in:
                cur = self.current
                if cur is None:
                    cur = self._begin(float(t_s[a]), side, float(track_deg[a]), heel_source)
                    if seg_gap[s]:  # the rep began in a few lost packets
                        cur.gap_s = seg_lost_s[s]
                seg_t, seg_a, seg_k = t_s[a:b], angle_deg[a:b], track_deg[a:b]
                top_k = seg_top_k[s]
                cur.peak_deg = max(cur.peak_deg, seg_top_a[s])
                cur.peak_valgus_deg = max(cur.peak_valgus_deg, top_k)
                drift = top_k - cur.start_track_deg
                cur.knee_drift_deg = max(cur.knee_drift_deg, drift)
                if drift > self.drift_alert_deg and not cur.knee_drift_alert:
                    cur.knee_drift_alert = True
                    k = a + int(np.argmax(seg_k - cur.start_track_deg > self.drift_alert_deg))
                    alerts.append(("knee_drift", float(t_s[k]),
                                   f"knee drifting toward the midline ({drift:.0f}°): "
                                   "drive the knee straight forward"))
                if heel_lift[a] and cur.valid:
                    cur.valid, cur.lift_t_s = False, float(t_s[a])
                    alerts.append(("heel_lift", float(t_s[a]),
                                   f"heel lifted ({heel_source}): this rep is not scored"))
                if holding[a]:
                    if self._run_t0 is None:
                        self._run_t0 = float(seg_t[0])
                    self._run.append(seg_a)
                    self._run_last_t = float(seg_t[-1])
                    self._check_hold(self._run_last_t)
                else:
                    self._close_run(float(seg_t[0]))
                rep[a:b] = cur.index
                valid[a:b] = cur.valid
            elif self.current is not None:
                self._close_run(float(t_s[a]))
                done.append(self._finish(float(t_s[a])))
        self._in_rep = bool(in_rep[-1])
        return rep, valid, done, alerts

    def _begin(self, t_s: float, side: str, track_deg: float, heel_source: str) -> RepRecord:
        cur = self.current = RepRecord(self.next_index, side, t_s, start_track_deg=track_deg,
                                       heel_source=heel_source)
        self.next_index += 1
        return cur

    def _check_hold(self, t_last_s: float) -> None:
        cur = self.current
        # called inside a rep, just after the run's start was set
        assert cur is not None and self._run_t0 is not None
        dur = t_last_s - self._run_t0 + 1.0 / self.rate_hz
        if dur >= self.hold_s and cur.hold_reached_s is None and cur.t_lost_s is None:
            cur.hold_reached_s = self._run_t0 + self.hold_s

    def _close_run(self, t_s: float) -> None:
        if self._run_t0 is None:
            return
        angles = np.concatenate(self._run)
        cur = self.current
        assert cur is not None  # a run is only open inside a rep
        # the sample slots the hold spans: a few packets lost inside it are held time too
        dur = round((self._run_last_t - self._run_t0) * self.rate_hz + 1.0) / self.rate_hz
        med = median(angles)
        cur.holds.append((self._run_t0, self._run_t0 + dur, med))
        if dur >= self.hold_s and (cur.end_range_deg is None or cur.hold_s < self.hold_s
                                   or med > cur.end_range_deg):
            cur.end_range_deg, cur.hold_s = med, dur
        elif cur.hold_s < self.hold_s and dur > cur.hold_s and med > 0.5 * cur.peak_deg:
            cur.end_range_deg, cur.hold_s = med, dur
        self._run, self._run_t0 = [], None

    def _finish(self, t_s: float) -> RepRecord:
        cur = self.current
        assert cur is not None  # only finished while one is open
        cur.t_end_s = t_s
        if cur.end_range_deg is None:
            cur.end_range_deg = cur.peak_deg
        self.reps.append(cur)
        self.current = None
        return cur


class SideReps:
    """Each leg's rep tracker under one settings object: the one rep segmentation. The
    pipeline's detectors run it on the readings they annotate; the session runs it on readings
    that come without the pipeline's events (a stored session ``recover`` scores). ``set_hold``:
    a guided exercise's own hold, for every leg's tracker (None: the settings' own)."""

    def __init__(self, settings: RepSettings, rate_hz: float | None = None) -> None:
        self.settings = settings
        self.rate_hz = rate_hz  # of a leg whose rate ``start`` is not given
        self.trackers: dict[str, RepTracker] = {}  # per side: each leg numbers its own reps
        self._hold_s: float | None = None

    @property
    def hold_s(self) -> float:
        """The end-range hold the reps need now."""
        return self.settings.hold_s if self._hold_s is None else self._hold_s

    def set_hold(self, hold_s: float | None) -> None:
        """Reps need an end-range hold of ``hold_s`` from now on (None: the settings' own)."""
        self._hold_s = hold_s
        for tracker in self.trackers.values():
            tracker.set_hold(self.hold_s)

    def forget(self, side: str) -> None:
        """Forget the leg's rep under way (its mounting is being calibrated again)."""
        if side in self.trackers:
            self.trackers[side].reset()

    def start(self, side: str, rate_hz: float | None = None) -> RepTracker:
        """The leg's tracker, made at ``rate_hz`` (default: ``self.rate_hz``) on first use."""
        tracker = self.trackers.get(side)
        if tracker is None:
            rate = rate_hz or self.rate_hz
            assert rate is not None, "a leg's rate is needed to track its reps"
            tracker = self.trackers[side] = self.settings.tracker(rate)
            tracker.set_hold(self.hold_s)
        return tracker

    def update(self, side: str, t_s: np.ndarray, angle_deg: np.ndarray, track_deg: np.ndarray,
               heel_lift: np.ndarray, heel_source: str = "none",
               t_before_s: float | None = None
               ) -> tuple[np.ndarray, np.ndarray, list[RepRecord], list[tuple[str, float, str]]]:
        """The leg's next samples through its tracker (``RepTracker.update``)."""
        return self.start(side).update(t_s, angle_deg, track_deg, heel_lift, side, heel_source,
                                       t_before_s)
