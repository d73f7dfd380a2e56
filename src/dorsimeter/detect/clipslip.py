"""Clip slip: the standing rests between trials checked against the calibration's stance.

The mounting calibration defines the stance as 0° (tibia angle) and 0° (knee track): the
stance's "up" in the sensor frame is the tibia's long axis. A clip that slips on the strap
turns the sensor on the bone, and every later angle carries that turn. The gyro sees the slip
as a rotation, so the fused orientation follows it, and standing still afterwards no longer
reads 0: the rest's mean tilt (the vector of tibia angle and knee track, the fused "up" that the
gyro de-rotates for sway) is how far the clip moved, in the two directions that matter (a turn
about the tibia's own axis changes no inclination).

A person standing still sways 0.1–0.6° (sim.shin, issue 11), so a rest is judged on its mean
over at least ``min_rest_s`` and the clip is said to have moved only when two rests in a row
are more than ``limit_deg`` off (a lean lasts one rest, a slipped clip stays). A rest is a stretch
outside reps near the stance (under ``stance_deg``) whose angle changes slower than
``still_deg_s``.
"""

from __future__ import annotations

import numpy as np

#: What the user is told to care about (issue 11): a clip that moved more than 1°.
CLIP_SLIP_LIMIT_DEG = 1.0


class ClipSlipCheck:
    """Streaming: feed readings; per sample, how far the clip has moved (NaN until judged)."""

    def __init__(self, rate_hz: float, limit_deg: float = CLIP_SLIP_LIMIT_DEG,
                 stance_deg: float = 4.0, still_deg_s: float = 3.0, min_rest_s: float = 1.0,
                 rate_window_s: float = 0.2) -> None:
        self.rate_hz = rate_hz
        self.limit_deg, self.stance_deg, self.still_deg_s = limit_deg, stance_deg, still_deg_s
        self.min_rest_n = max(1, int(round(min_rest_s * rate_hz)))
        self.lag = max(1, int(round(rate_window_s * rate_hz)))
        self._hist = np.empty(0)
        self._sum = np.zeros(2)  # the rest under way: sums of (angle, track)
        self._n = 0
        self.moved_deg = np.nan  # the last judged rest's mean tilt from the stance
        self.over = 0  # consecutive rests over the limit
        self.alerted = False

    def update(self, t_s: np.ndarray, angle_deg: np.ndarray, track_deg: np.ndarray,
               rep: np.ndarray) -> tuple[np.ndarray, list[tuple[str, float, str]]]:
        """Per sample the clip's movement judged so far (deg, NaN before the first rest), and
        alerts ``("clip_slip", t_s, message)``: once when two rests in a row are over the
        limit, again only after a rest has come back under it."""
        n = len(t_s)
        out = np.empty(n)
        alerts: list[tuple[str, float, str]] = []
        full = np.concatenate([self._hist, angle_deg])
        prev = full[:n] if len(self._hist) >= self.lag else np.concatenate(
            [np.full(self.lag - len(self._hist), full[0]), full])[:n]
        self._hist = full[-self.lag:]
        still = np.abs(angle_deg - prev) * self.rate_hz / self.lag < self.still_deg_s
        rest = still & (np.asarray(rep) < 0) & (np.hypot(angle_deg, track_deg) < self.stance_deg)
        edges = np.flatnonzero(np.diff(rest.astype(int)) != 0) + 1
        bounds = np.concatenate([[0], edges, [n]])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if rest[a]:
                self._sum[0] += angle_deg[a:b].sum()
                self._sum[1] += track_deg[a:b].sum()
                self._n += b - a
            else:
                self._judge(float(t_s[a]), alerts)
            out[a:b] = self.moved_deg
        return out, alerts

    def _judge(self, t_s: float, alerts: list) -> None:
        """The rest under way has ended: judge it when it was long enough."""
        if self._n == 0:  # no rest under way (its sums are still zero)
            return
        if self._n >= self.min_rest_n:
            self.moved_deg = float(np.hypot(*(self._sum / self._n)))
            if self.moved_deg > self.limit_deg:
                self.over += 1
                if self.over >= 2 and not self.alerted:
                    self.alerted = True
                    alerts.append(("clip_slip", t_s,
                                   f"clip moved {self.moved_deg:.1f}° since calibration "
                                   "(standing no longer reads 0°): recalibrate"))
            else:
                self.over, self.alerted = 0, False
        self._sum, self._n = np.zeros(2), 0
