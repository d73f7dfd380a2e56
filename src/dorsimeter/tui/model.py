"""What the monitor shows, kept apart from the widgets: pure Python and numpy, no textual.

``LiveModel`` ingests the pipeline's readings and events batch by batch and keeps the few things
the screen draws: the latest angle, a trace of the last seconds, rep markers, heel-lift and
knee-drift alerts (from the pipeline's detectors: events and per-sample columns), and
per-sensor link figures. The domain's rules (asymmetry, MDC, bands, scoring, the session's
numbering) are the session's own objects, imported, never copied here: the UI cannot disagree
with what is stored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from dorsimeter.detect.heel_sources import SOURCES, SPOKEN
from dorsimeter.export.norms import load_norms
from dorsimeter.pipeline.pipeline import Event
from dorsimeter.session.asymmetry import BANDS, Asymmetry
from dorsimeter.session.results import SessionResults
from dorsimeter.types import SIDES, ImuBatch, Readings

TRACE_S = 10.0
HEEL_SOURCE_NAMES = SPOKEN  # "shank_imu" → "shin sensor"
ALERT_TITLES = {"heel_lift": "HEEL LIFT", "knee_drift": "KNEE DRIFT"}
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


#: the traffic light of each of the session's asymmetry bands (< 10 %, 10–25 %, > 25 %)
BAND_COLOURS: dict[str, str] = dict(zip((name for _, name in BANDS), ("green", "yellow", "red"),
                                        strict=True))


def band_colour(a: Asymmetry) -> str:
    """The traffic-light colour of the session's asymmetry band."""
    return BAND_COLOURS[a.band]


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

    def add(self, r: Readings, events: list[Event] | None = None) -> None:
        """Take the readings and events of one pipeline push."""
        for e in events or []:
            self.events.append(e)
            t = float(e.t_s)
            if e.kind in ALERT_TITLES:
                msg = e.message
                for code in SOURCES:  # "shank_imu" → "shin sensor"
                    msg = msg.replace(code, HEEL_SOURCE_NAMES[code])
                self._raise(e.kind, f"{ALERT_TITLES[e.kind]} — {msg}" if msg
                            else ALERT_TITLES[e.kind], t, t)
            rec = e.rep
            if e.kind == "rep" and rec is not None:  # the rep that just ended
                self._mark_rep(rec.t_start_s, rec.index + 1, rec.side, rec.valid, rec.index)
        n = len(r)
        if n == 0:
            return
        t = np.asarray(r.t_s, dtype=float)
        a = np.asarray(r.tibia_angle_deg, dtype=float)
        lifted = np.asarray(r.heel_lift, dtype=bool)
        self.t_s.extend(t.tolist())
        self.angle_deg.extend(a.tolist())
        self.heel.extend(lifted.tolist())
        self.latest_t_s, self.latest_angle_deg = float(t[-1]), float(a[-1])
        self.latest_side = str(r.side[-1])
        self.latest_knee_track_deg = float(np.asarray(r.knee_track_deg)[-1])
        src = str(r.heel_source[-1])
        if src in HEEL_SOURCE_NAMES and src != "none":
            self.heel_source = HEEL_SOURCE_NAMES[src]
        if lifted.any():
            i = np.flatnonzero(lifted)
            self._raise("heel_lift", ALERT_TITLES["heel_lift"], float(t[i[0]]), float(t[i[-1]]))
        self._reps_from(r, t)
        self._expire(float(t[-1]))

    def _reps_from(self, r: Readings, t: np.ndarray) -> None:
        """Rep markers from the per-sample ``rep`` index (-1 between reps) and ``rep_valid``
        (False from a rep's first heel lift on; the rep's last sample carries the verdict)."""
        rep, valid = np.asarray(r.rep, dtype=int), np.asarray(r.rep_valid, dtype=bool)
        for i in range(len(rep)):
            k = int(rep[i]) if rep[i] >= 0 else None
            if self._rep is not None and k != self._rep and self.reps:
                self.reps[-1].valid = self._rep_valid  # the rep ended: its verdict is final
            if k is not None and k != self._rep:
                self._mark_rep(float(t[i]), k + 1, str(r.side[i]), None, k)
                self._rep_valid = True
            if k is not None:
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


def side_rows(session: SessionResults) -> list[dict]:
    """Per-side figures from the session: best valid angle (held, heel down) and the mean of
    the best ``best_of`` (the session's scoring); trials (automatic: the attempts, held at end
    range or heel lifted, never a calibration drive; manual: the trials started by hand); heel
    lifts; the hand-width wall verdict when the athlete's lengths are known."""
    best, mean = session.best_valid_deg, session.mean_best3_deg
    rows = []
    for s in SIDES:
        side = session.sides[s]
        rows.append({
            "side": s,
            "best_deg": best.get(s),
            "max_deg": session.max_deg.get(s),
            "kind": "best",
            "trials": len(side.trials) if session.auto_trials else session.trials[s],
            "invalid": len(side.invalid),
            "mean3_deg": mean.get(s),
            "best_of": session.settings.best_of,
            "wall": session.wall(s),
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
    return load_norms().tibia_low_deg, "normal ≥"


__all__ = ["BAND_COLOURS", "SIDES", "Alert", "LinkFigures", "LiveModel", "RepMarker",
           "band_colour", "default_target", "side_rows"]
