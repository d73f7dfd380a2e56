"""What the monitor shows, kept apart from the widgets: pure Python and numpy, no textual.

``LiveModel`` ingests the pipeline's readings and events batch by batch and keeps the few things
the screen draws: the latest angle, a trace of the last seconds, rep markers, heel-lift and
knee-drift alerts (from the pipeline's detectors: events and per-sample columns), and
per-sensor link figures. Fields that later stages add to ``Readings``
(``heel_lift``, ``heel_source``, ``rep``, ``rep_valid``) are read when present and ignored when
absent, so the UI works with whatever the pipeline provides.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dorsimeter.detect.heel_sources import SOURCES, SPOKEN
from dorsimeter.types import SIDES, ImuBatch, Readings

TRACE_S = 10.0
HEEL_SOURCE_NAMES = SPOKEN  # "shank_imu" → "shin sensor"
ALERT_TITLES = {"heel_lift": "HEEL LIFT", "knee_drift": "KNEE DRIFT"}
MDC_DEG = 4.6  # minimal detectable change of the tibia angle (DESIGN.md)
DEG_PER_CM = 3.6  # Bennell 1998 rule of thumb, knee-to-wall distance vs tibia angle
NORMAL_LOW_DEG = 35.0  # lower end of the normal tibia angle range (DESIGN.md)
ALERT_HOLD_S = 2.0  # an alert stays on screen this long (device time) after its cause ends


@dataclass
class RepMarker:
    """A rep seen in the readings: where it started, its number and whether it counts.

    ``index`` is the pipeline's own rep index; ``rep`` the number shown (the session's, once
    the app numbers it: ``MonitorApp.rep_markers``; None: no number yet)."""

    t_s: float
    rep: int | None
    side: str
    valid: bool | None = None
    index: int = -1


@dataclass
class Alert:
    """An alert on screen: heel lift or knee drift, since ``t_s``, last seen at ``last_t_s``."""

    kind: str
    text: str
    t_s: float
    last_t_s: float
    count: int = 1


@dataclass
class LinkFigures:
    """Per-sensor link figures measured from the batches themselves (device time)."""

    window_s: float = 2.0
    batches: deque = field(default_factory=lambda: deque(maxlen=2000))
    received: int = 0
    lost: int = 0
    last_seq: int | None = None

    def note(self, batch: ImuBatch) -> None:
        n = len(batch)
        if n == 0:
            return
        self.batches.append((float(batch.t_s[0]), float(batch.t_s[-1]), n))
        while self.batches and self.batches[-1][1] - self.batches[0][0] > self.window_s:
            self.batches.popleft()
        self.received += n
        if batch.seq is not None and len(batch.seq):
            seq = np.asarray(batch.seq, dtype=np.int64)
            first = int(seq[0])
            if self.last_seq is not None and first > self.last_seq + 1:
                self.lost += first - self.last_seq - 1
            steps = np.diff(seq)
            self.lost += int(np.sum(np.clip(steps - 1, 0, None)))
            self.last_seq = int(seq[-1])

    @property
    def rate_hz(self) -> float | None:
        """Samples per second of device time over the last ``window_s``."""
        if len(self.batches) < 2:
            return None
        span = self.batches[-1][1] - self.batches[0][0]
        n = sum(b[2] for b in self.batches) - 1
        return n / span if span > 0 else None

    @property
    def loss(self) -> float | None:
        total = self.received + self.lost
        return None if self.last_seq is None or total == 0 else self.lost / total


def calibration_progress(status: str) -> tuple[str, float]:
    """The calibration step ("still" | "drives" | "done" | "?") and its fraction done (0..1).

    Read from ``Pipeline.status``: "stand tall and still (0.4 s of 1.5 s)",
    "drive the knee forward slowly (35° of 90° of movement)" or "calibrated"."""
    if status.startswith("calibrated"):
        return "done", 1.0
    m = re.search(r"\(([\d.]+) s of ([\d.]+) s\)", status)
    if m:
        return "still", min(1.0, float(m.group(1)) / max(1e-9, float(m.group(2))))
    if status.startswith("stand tall"):
        return "still", 0.0
    m = re.search(r"\((\d+)° of (\d+)°", status)
    if m:
        return "drives", min(1.0, float(m.group(1)) / max(1e-9, float(m.group(2))))
    return "?", 0.0


def shown_status(status: str) -> str:
    """``Pipeline.status`` as the athlete should read it: the stance's seconds stop at what it
    needs ("1.5 s of 1.5 s", not "3.0 s of 1.5 s": the calibrator takes the stance when the
    drives begin, so standing longer is fine but not more progress)."""
    def cap(m: re.Match) -> str:
        need = float(m.group(2))
        return f"({min(float(m.group(1)), need):.1f} s of {need:.1f} s)"

    return re.sub(r"\(([\d.]+) s of ([\d.]+) s\)", cap, status)


def stance_need_s(status: str) -> float | None:
    """The seconds of still stance the calibrator needs, read from its status."""
    m = re.search(r"\(([\d.]+) s of ([\d.]+) s\)", status)
    return float(m.group(2)) if m else None


BAND_COLOURS = ("green", "yellow", "red")  # < 10 %, 10–25 %, > 25 %


@dataclass
class Asymmetry:
    """Left/right difference of the best angles, as the per-side table shows it."""

    diff_deg: float  # left − right
    pct: float  # |difference| / better side × 100
    cm: float  # |difference| as knee-to-wall centimetres
    cm_method: str  # "geometry" (athlete's lengths) or "rule" (3.6°/cm)
    band: str  # "<10 %", "10–25 %", ">25 %"
    colour: str  # traffic light of the band
    beyond_mdc: bool
    mdc_deg: float


def _colour(pct: float) -> str:
    return BAND_COLOURS[0] if pct < 10 else (BAND_COLOURS[1] if pct <= 25 else BAND_COLOURS[2])


def asymmetry(left_deg: float, right_deg: float, mdc_deg: float = MDC_DEG,
              athlete=None, found=None) -> Asymmetry:
    """The session logic's asymmetry (``found``, or computed by ``dorsimeter.session``), as the
    UI shows it; the 3.6°/cm rule and the same bands when the session module is absent."""
    if found is None:
        try:
            from dorsimeter.session.asymmetry import asymmetry as session_asymmetry
        except ImportError:
            session_asymmetry = None
        if session_asymmetry is not None:
            found = session_asymmetry(left_deg, right_deg, mdc_deg, athlete)
    if found is not None:
        return Asymmetry(found.diff_deg, found.percent, found.cm, found.cm_method, found.band,
                         _colour(found.percent), found.beyond_mdc, found.mdc_deg)
    diff = left_deg - right_deg
    big = max(abs(left_deg), abs(right_deg))
    pct = 100.0 * abs(diff) / big if big > 0 else 0.0
    band = "<10 %" if pct < 10 else ("10–25 %" if pct <= 25 else ">25 %")
    return Asymmetry(diff, pct, abs(diff) / DEG_PER_CM, "rule", band, _colour(pct),
                     abs(diff) > mdc_deg, mdc_deg)


def _field(r: Readings, name: str):
    v = getattr(r, name, None)
    return None if v is None or len(v) != len(r) else np.asarray(v)


class LiveModel:
    """The state of the monitor screen, fed batch by batch from the pipeline."""

    def __init__(self, rate_hz: float, trace_s: float = TRACE_S) -> None:
        self.trace_s = trace_s
        n = int(rate_hz * trace_s * 1.5) + 10
        self.t_s: deque[float] = deque(maxlen=n)
        self.angle_deg: deque[float] = deque(maxlen=n)
        self.heel: deque[bool] = deque(maxlen=n)
        self.reps: deque[RepMarker] = deque(maxlen=200)
        self.latest_t_s: float | None = None
        self.latest_angle_deg: float | None = None
        self.latest_knee_track_deg: float | None = None
        self.latest_side: str | None = None
        self.heel_source: str | None = None
        self.alerts: dict[str, Alert] = {}
        self.bell_pending = 0
        self.heel_lifts = 0
        self.knee_drifts = 0
        self.events: list = []  # every pipeline event, in order
        self.links: dict[str, LinkFigures] = {}
        self._rep: int | None = None
        self._rep_valid = True

    # -- input ------------------------------------------------------------------------------

    def note_batch(self, batch: ImuBatch, sensor: str = "sensor") -> None:
        self.links.setdefault(sensor, LinkFigures()).note(batch)

    def add(self, r: Readings, events: list | None = None) -> None:
        """Take the readings and events of one pipeline push."""
        for e in events or []:
            self.events.append(e)
            kind = getattr(e, "kind", "")
            t = float(getattr(e, "t_s", self.latest_t_s or 0.0))
            if kind in ALERT_TITLES:
                msg = getattr(e, "message", "") or ""
                for code in SOURCES:  # "shank_imu" → "shin sensor"
                    msg = msg.replace(code, HEEL_SOURCE_NAMES[code])
                self._raise(kind, f"{ALERT_TITLES[kind]} — {msg}" if msg else ALERT_TITLES[kind],
                            t, t)
            rec = getattr(e, "rep", None)
            if kind == "rep" and rec is not None:  # a RepRecord: the rep that just ended
                self._mark_rep(float(getattr(rec, "t_start_s", t)), int(rec.index) + 1,
                               str(getattr(rec, "side", getattr(e, "side", ""))),
                               getattr(rec, "valid", None), int(rec.index))
        n = len(r)
        if n == 0:
            return
        t = np.asarray(r.t_s, dtype=float)
        a = np.asarray(r.tibia_angle_deg, dtype=float)
        heel = _field(r, "heel_lift")
        lifted = np.zeros(n, bool) if heel is None else heel.astype(float) > 0.5
        self.t_s.extend(t.tolist())
        self.angle_deg.extend(a.tolist())
        self.heel.extend(lifted.tolist())
        self.latest_t_s, self.latest_angle_deg = float(t[-1]), float(a[-1])
        self.latest_side = str(r.side[-1])
        self.latest_knee_track_deg = float(np.asarray(r.knee_track_deg)[-1])
        src = _field(r, "heel_source")
        if src is not None and str(src[-1]) not in ("", "none", "None"):
            self.heel_source = HEEL_SOURCE_NAMES.get(str(src[-1]), str(src[-1]))
        if lifted.any():
            i = np.flatnonzero(lifted)
            self._raise("heel_lift", ALERT_TITLES["heel_lift"], float(t[i[0]]), float(t[i[-1]]))
        self._reps_from(r, t)
        self._expire(float(t[-1]))

    def _reps_from(self, r: Readings, t: np.ndarray) -> None:
        """Rep markers from the per-sample ``rep`` index (-1 between reps) and ``rep_valid``
        (False from a rep's first heel lift on; the rep's last sample carries the verdict)."""
        rep = _field(r, "rep")
        if rep is None:
            return
        valid = _field(r, "rep_valid")
        rep = np.asarray(rep, dtype=float)
        for i in range(len(rep)):
            k = int(rep[i]) if np.isfinite(rep[i]) and rep[i] >= 0 else None
            if self._rep is not None and k != self._rep and self.reps:
                self.reps[-1].valid = self._rep_valid  # the rep ended: its verdict is final
            if k is not None and k != self._rep:
                self._mark_rep(float(t[i]), k + 1, str(r.side[i]), None, k)
                self._rep_valid = True
            if k is not None and valid is not None:
                self._rep_valid = bool(valid[i])
                if not self._rep_valid and self.reps:
                    self.reps[-1].valid = False
            self._rep = k

    def _mark_rep(self, t_s: float, rep: int, side: str, valid: bool | None,
                  index: int | None = None) -> None:
        index = rep - 1 if index is None else index
        for m in reversed(self.reps):
            if m.index == index and m.side == side:
                if valid is not None:
                    m.valid = valid
                return
        self.reps.append(RepMarker(t_s, rep, side, valid, index))

    @property
    def in_rep(self) -> bool:
        """The last readings were inside a rep (the last marker's rep is under way)."""
        return self._rep is not None

    def _raise(self, kind: str, text: str, t0: float, t1: float) -> None:
        a = self.alerts.get(kind)
        if a is None:
            self.alerts[kind] = Alert(kind, text, t0, t1)
            self.bell_pending += 1
            if kind == "heel_lift":
                self.heel_lifts += 1
            else:
                self.knee_drifts += 1
        else:
            a.last_t_s = max(a.last_t_s, t1)

    def _expire(self, now_s: float) -> None:
        for kind in [k for k, a in self.alerts.items() if now_s - a.last_t_s > ALERT_HOLD_S]:
            del self.alerts[kind]

    def clear_trace(self) -> None:
        self.t_s.clear()
        self.angle_deg.clear()
        self.heel.clear()
        self.alerts.clear()

    # -- output -----------------------------------------------------------------------------

    def trace(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Times, angles and heel-lift flags of the last ``trace_s`` seconds."""
        if not self.t_s:
            return np.empty(0), np.empty(0), np.empty(0, bool)
        t = np.fromiter(self.t_s, float, len(self.t_s))
        keep = t >= t[-1] - self.trace_s
        return (t[keep], np.fromiter(self.angle_deg, float, len(t))[keep],
                np.fromiter(self.heel, bool, len(t))[keep])

    def take_bell(self) -> bool:
        """True once per new alert (the app rings the terminal bell)."""
        ring = self.bell_pending > 0
        self.bell_pending = 0
        return ring


def side_rows(session) -> list[dict]:
    """Per-side figures from the session: best valid angle (held, heel down) and the mean of
    the best three when the session scores reps, else the running maximum; trials; the
    hand-width wall verdict when the athlete's lengths are known."""
    best = getattr(session, "best_valid_deg", None)
    kind = "best"
    if not isinstance(best, dict):
        best, kind = getattr(session, "max_deg", {}) or {}, "max"
    trials = getattr(session, "trials", {}) or {}
    mean3 = getattr(session, "mean_best3_deg", None)
    sides = getattr(session, "sides", None)
    wall = getattr(session, "wall", None)
    rows = []
    for s in SIDES:
        side = sides.get(s) if isinstance(sides, dict) else None
        # automatic trials: the attempts (held at end range or heel lifted), not every movement
        # (the calibration drives are not trials); manual trials: the trials started by hand
        n = (side.trials if side is not None and getattr(session, "auto_trials", False)
             else trials.get(s, 0))
        rows.append({
            "side": s,
            "best_deg": best.get(s),
            "max_deg": (getattr(session, "max_deg", {}) or {}).get(s),
            "kind": kind,
            "trials": len(n) if isinstance(n, list | tuple) else int(n or 0),
            "invalid": len(side.invalid) if side is not None else None,
            "mean3_deg": mean3.get(s) if isinstance(mean3, dict) else None,
            "wall": wall(s) if callable(wall) else None,
        })
    return rows


def default_target(target_deg: float | None, wall_deg: float | None = None,
                   wall_cm: float = 9.0) -> tuple[float, str]:
    """The target line: the user's option, else the angle at which the knee reaches a
    hand-width wall (from the athlete's lengths), else the low end of the normal range."""
    if target_deg is not None:
        return float(target_deg), "target"
    if wall_deg is not None:
        return float(wall_deg), f"wall {wall_cm:.0f} cm"
    return NORMAL_LOW_DEG, "normal ≥"


__all__ = ["LiveModel", "asymmetry", "calibration_progress", "side_rows", "default_target",
           "RepMarker", "Alert", "Asymmetry", "LinkFigures", "SIDES"]
