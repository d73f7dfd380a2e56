"""A stored session as one self-contained HTML report: tables and inline SVG plots, no scripts,
no network. Every number shown carries its exact stored value in ``data-value`` so a reader (or a
test) can check the page against the database.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from html import escape
from pathlib import Path

import numpy as np

from dorsimeter.detect.heel_sources import SPOKEN
from dorsimeter.export.history import HistoryPoint, history, series
from dorsimeter.export.norms import Norms, load_norms
from dorsimeter.export.progress import progress_bar
from dorsimeter.paths import atomic_private_text
from dorsimeter.session.exercise import exercise_title
from dorsimeter.session.wall import HAND_WIDTH_M, AthleteGeometry
from dorsimeter.store.db import SessionInfo, Store, Trial
from dorsimeter.store.summary import (
    DEG_PER_CM_RULE,
    SCORED_EXERCISE,
    Asymmetry,
    SideSummary,
    asymmetry,
    geometry,
    summarize,
)
from dorsimeter.types import SIDES

PLOT_W, PLOT_H = 760, 240
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 12, 32
MAX_POINTS = 1500  # per side: min/max envelope per bucket keeps the peaks
SIDE_COLOUR = {"left": "#1f6fb4", "right": "#c0392b"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 820px; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.meta td { text-align: left; border: none; padding: 2px 10px 2px 0; }
.flag { font-weight: bold; color: #b03a00; } .ok { color: #2e7d32; }
.band-low { color: #2e7d32; } .band-mid { color: #b08400; } .band-high { color: #b03a00; }
svg text { font-size: 11px; fill: #444; } .note { color: #666; font-size: 0.9em; }
.norm-below { color: #b03a00; } .norm-within, .norm-above { color: #2e7d32; }
.sources { font-size: 0.85em; color: #444; padding-left: 1.2em; }
.summary { border: 1px solid #bbb; padding: 8px 16px; margin-bottom: 1.5em; }
.summary h1 { margin-top: 0.3em; } .summary .big { font-size: 1.25em; font-weight: bold; }
/* print: A4 or Letter, each section whole on its page, the summary alone on the first */
@page { margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  .summary { break-after: page; page-break-after: always; border: none; padding: 0; }
  section { break-inside: avoid; page-break-inside: avoid; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  svg { width: 100%; height: auto; }
  table { break-inside: avoid; }
}
"""


def _v(value: float | None, fmt: str = "{:.2f}", unit: str = "°", cls: str = "num") -> str:
    """A number as shown, with its exact value in ``data-value``."""
    if value is None:
        return "—"
    return (f'<span class="{cls}" data-value="{value!r}">{fmt.format(value)}'
            f"{escape(unit)}</span>")


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    span = max(hi - lo, 1e-9)
    step = 10 ** math.floor(math.log10(span / n))
    for m in (1, 2, 5, 10):
        if span / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


class _Axes:
    """Data → pixel mapping of one plot."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float) -> None:
        self.x0, self.x1 = x0, x1 if x1 > x0 else x0 + 1
        self.y0, self.y1 = y0, y1 if y1 > y0 else y0 + 1

    def x(self, v) -> np.ndarray:
        return PAD_L + (np.asarray(v, float) - self.x0) / (self.x1 - self.x0) * (
            PLOT_W - PAD_L - PAD_R)

    def y(self, v) -> np.ndarray:
        return PLOT_H - PAD_B - (np.asarray(v, float) - self.y0) / (self.y1 - self.y0) * (
            PLOT_H - PAD_T - PAD_B)

    def frame(self, x_label: str, y_label: str, x_ticks: list | None = None) -> list[str]:
        out = [f'<rect x="{PAD_L}" y="{PAD_T}" width="{PLOT_W - PAD_L - PAD_R}" '
               f'height="{PLOT_H - PAD_T - PAD_B}" fill="none" stroke="#999"/>']
        for t in _nice_ticks(self.y0, self.y1, 5):
            yy = float(self.y(t))
            out.append(f'<line x1="{PAD_L}" x2="{PLOT_W - PAD_R}" y1="{yy:.1f}" y2="{yy:.1f}" '
                       'stroke="#eee"/>')
            out.append(f'<text x="{PAD_L - 4}" y="{yy + 4:.1f}" text-anchor="end">{t:g}</text>')
        ticks = x_ticks if x_ticks is not None else [(t, f"{t:g}") for t in
                                                     _nice_ticks(self.x0, self.x1, 8)]
        for t, label in ticks:
            xx = float(self.x(t))
            out.append(f'<text x="{xx:.1f}" y="{PLOT_H - PAD_B + 14}" text-anchor="middle">'
                       f"{escape(label)}</text>")
        out.append(f'<text x="{(PLOT_W + PAD_L) / 2:.0f}" y="{PLOT_H - 4}" '
                   f'text-anchor="middle">{escape(x_label)}</text>')
        out.append(f'<text x="12" y="{PLOT_H / 2:.0f}" text-anchor="middle" '
                   f'transform="rotate(-90 12 {PLOT_H / 2:.0f})">{escape(y_label)}</text>')
        return out


def envelope(t_s: np.ndarray, angle_deg: np.ndarray, max_points: int = MAX_POINTS
             ) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points keeping each bucket's min and max (peaks stay visible)."""
    n = len(t_s)
    if n <= max_points:
        return t_s, angle_deg
    buckets = np.array_split(np.arange(n), max_points // 2)
    idx = np.unique(np.concatenate([[b[np.argmin(angle_deg[b])], b[np.argmax(angle_deg[b])]]
                                    for b in buckets if len(b)]))
    return t_s[idx], angle_deg[idx]


def trial_label(t: Trial, i: int) -> str:
    """``#3`` for a wall-test trial; ``reverse lunge 2·3`` (set 2, rep 3) for an exercise rep."""
    n = t.rep if t.rep is not None else i
    if t.exercise in (SCORED_EXERCISE, "session_max"):
        return f"#{n}"
    return f"{exercise_title(t.exercise)} {t.set_no}·{n}" if t.set_no is not None else (
        f"{exercise_title(t.exercise)} #{n}")


def exercises_table(trials: list[Trial]) -> str:
    """What was done: per exercise, leg and set, its reps (1-based) with their end range."""
    groups: dict[tuple, list[Trial]] = {}
    for t in trials:
        if t.exercise != "session_max":
            groups.setdefault((t.exercise, t.side, t.set_no), []).append(t)
    if not groups:
        return '<p class="note" id="exercises">no reps counted</p>'
    rows = "".join(
        f'<tr data-exercise="{escape(ex)}" data-side="{side}"><td>{escape(exercise_title(ex))}'
        f"</td><td>{side}</td><td>{'' if set_no is None else set_no}</td><td>{len(ts)}</td>"
        f"<td>{sum(t.counts for t in ts)}</td><td>"
        + escape(", ".join(f"{t.rep}: {t.angle_deg:.1f}°" for t in ts)) + "</td></tr>"
        for (ex, side, set_no), ts in groups.items())
    return ('<table id="exercises"><tr><th>exercise</th><th>side</th><th>set (wall test: '
            "trial)</th><th>reps</th><th>held, heel down</th><th>rep: end range</th></tr>"
            + rows + "</table>")


#: label geometry for the plots' 11 px text: a generous width per character (system-ui digits
#: are about 6 px), the line height, and how many lines above a mark a label may climb
LABEL_CHAR_PX, LABEL_LINE_PX, LABEL_ROWS = 6.6, 13.0, 4


def place_labels(marks: list[tuple[float, float, str, str]]
                 ) -> list[tuple[float, float, str] | None]:
    """(x, y, text) of each mark's label so that no two overlap (beyond ten trials they did):
    the full label on the first free line above its mark, else its short form ("#12"), else
    none (the mark and its ``data-value`` stay). ``marks``: (x, y, long, short)."""
    taken: list[tuple[float, float, float]] = []  # (x0, x1, baseline y) of labels placed
    out: list[tuple[float, float, str] | None] = []

    def free(x0: float, x1: float, yb: float) -> bool:
        return all(x1 + 2 <= a or x0 >= b + 2 or abs(yb - c) >= LABEL_LINE_PX
                   for a, b, c in taken)

    for x, y, long, short in marks:
        spot = None
        for text in (long, short):
            w = LABEL_CHAR_PX * len(text)
            cx = min(max(x, PAD_L + w / 2), PLOT_W - PAD_R - w / 2)
            for k in range(LABEL_ROWS):
                yb = y - 8 - k * LABEL_LINE_PX
                if yb < PAD_T + 10:  # above the plot: below the mark instead
                    yb = y + 16 + (k - 1) * LABEL_LINE_PX
                if free(cx - w / 2, cx + w / 2, yb):
                    spot = (cx, yb, text)
                    taken.append((cx - w / 2, cx + w / 2, yb))
                    break
            if spot is not None:
                break
        out.append(spot)
    return out


def angle_plot(side: str, t_s: np.ndarray, angle_deg: np.ndarray, trials: list[Trial],
               best: Trial | None) -> str:
    """Tibia angle over time for one side, trials shaded, each scored angle marked."""
    if len(t_s) == 0:
        return f'<p class="note" id="plot-{side}-empty">no samples stored for the {side} side</p>'
    tt, aa = envelope(t_s, angle_deg)
    lo = min(0.0, float(aa.min()))
    hi = max(float(aa.max()), *(t.angle_deg for t in trials)) if trials else float(aa.max())
    ax = _Axes(float(t_s[0]), float(t_s[-1]), math.floor(lo / 5) * 5, math.ceil(hi / 5 + 0.2) * 5)
    parts = ax.frame("device time (s)", "tibia angle (°)")
    for t in trials:
        if t.t_start_s is None or t.t_end_s is None:
            continue
        x0, x1 = float(ax.x(t.t_start_s)), float(ax.x(t.t_end_s))
        fill = "#f6e3e0" if t.valid is False else ("#e8f0e8" if t.counts else "#f0f0f0")
        parts.append(f'<rect class="rep-span" x="{x0:.1f}" y="{PAD_T}" '
                     f'width="{max(x1 - x0, 1):.1f}" height="{PLOT_H - PAD_T - PAD_B}" '
                     f'fill="{fill}"/>')
        if t.hold_start_s is not None and t.hold_end_s is not None:
            h0, h1 = float(ax.x(t.hold_start_s)), float(ax.x(t.hold_end_s))
            parts.append(f'<rect class="hold-span" x="{h0:.1f}" y="{PAD_T}" '
                         f'width="{max(h1 - h0, 1):.1f}" height="{PLOT_H - PAD_T - PAD_B}" '
                         'fill="#000" fill-opacity="0.06"/>')
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(ax.x(tt), ax.y(aa), strict=True))
    parts.append(f'<polyline class="angle-trace" points="{pts}" fill="none" '
                 f'stroke="{SIDE_COLOUR[side]}" stroke-width="1.2"/>')
    marks = []
    for i, t in enumerate(trials, 1):
        x_t = t.t_end_s if t.t_start_s is None else (
            t.t_start_s if t.t_end_s is None else (t.t_start_s + t.t_end_s) / 2)
        if x_t is None:
            continue
        x, y = float(ax.x(x_t)), float(ax.y(t.angle_deg))
        name = trial_label(t, i)
        label = name + (" heel lift" if t.valid is False else ("" if t.counts else " no hold"))
        marks.append((t, x, y, f"{label} {t.angle_deg:.1f}°", name.split()[-1]))  # short: #3, 2·3
    placed = place_labels([(x, y, long, short) for _, x, y, long, short in marks])
    for (t, x, y, _, _), spot in zip(marks, placed, strict=True):
        star = t is best
        text = "" if spot is None else (
            f'<text x="{spot[0]:.1f}" y="{spot[1]:.1f}" text-anchor="middle">'
            f"{escape(spot[2])}</text>")
        parts.append(
            f'<g class="rep-mark" data-side="{side}" data-value="{t.angle_deg!r}">'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{5 if star else 3.5}" '
            f'fill="{"#111" if star else "#fff"}" stroke="#111"/>{text}</g>')
    return (f'<svg id="plot-{side}" xmlns="http://www.w3.org/2000/svg" width="{PLOT_W}" '
            f'height="{PLOT_H}" viewBox="0 0 {PLOT_W} {PLOT_H}" role="img" '
            f'aria-label="{side} tibia angle over time">' + "".join(parts) + "</svg>")


def trend_plot(points: list[HistoryPoint], current_id: int) -> str:
    """Best scored angle per side over the athlete's sessions; this session ringed."""
    per_side = {s: series(points, s) for s in SIDES}
    values = [v for ser in per_side.values() for _, v in ser]
    if not values:
        return '<p class="note" id="trend-empty">no scored sessions yet</p>'
    order = {p.session.id: i for i, p in enumerate(points)}
    ax = _Axes(-0.5, len(points) - 0.5, math.floor(min(values) / 5) * 5 - 5,
               math.ceil(max(values) / 5) * 5 + 5)
    ticks = [(order[p.session.id], f"#{p.session.id} {p.session.start_utc[5:10]}")
             for p in points]
    if len(ticks) > 12:
        ticks = ticks[:: math.ceil(len(ticks) / 12)]
    parts = ax.frame("session (id, month-day UTC)", "best tibia angle (°)", ticks)
    for side, ser in per_side.items():
        if not ser:
            continue
        xs = [order[p.session.id] for p, _ in ser]
        ys = [v for _, v in ser]
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(ax.x(xs), ax.y(ys), strict=True))
        parts.append(f'<polyline class="trend-{side}" points="{pts}" fill="none" '
                     f'stroke="{SIDE_COLOUR[side]}" stroke-width="1.5"/>')
        for (p, v), x, y in zip(ser, ax.x(xs), ax.y(ys), strict=True):
            cur = p.session.id == current_id
            parts.append(f'<circle class="trend-point" data-side="{side}" '
                         f'data-session="{p.session.id}" data-value="{v!r}" cx="{x:.1f}" '
                         f'cy="{y:.1f}" r="{5 if cur else 3}" fill="{SIDE_COLOUR[side]}"'
                         + (' stroke="#000" stroke-width="2"' if cur else "") + "/>")
    legend = "".join(
        f'<text x="{PLOT_W - PAD_R - 90 + 50 * i}" y="{PAD_T + 14}" '
        f'fill="{SIDE_COLOUR[s]}" style="fill:{SIDE_COLOUR[s]}">{s}</text>'
        for i, s in enumerate(SIDES))
    return (f'<svg id="trend" xmlns="http://www.w3.org/2000/svg" width="{PLOT_W}" '
            f'height="{PLOT_H}" viewBox="0 0 {PLOT_W} {PLOT_H}" role="img" '
            'aria-label="best angle per session">' + "".join(parts) + legend + "</svg>")


def _wall_cell(best_deg: float | None, geo: AthleteGeometry | None) -> str:
    """Would the knee reach a hand-width wall at the best angle (needs the athlete's lengths)."""
    if geo is None:
        return '<td class="wall">needs tibia and toe–ankle lengths</td>'
    if best_deg is None:
        return '<td class="wall">—</td>'
    reaches = geo.reaches(best_deg, HAND_WIDTH_M)
    return (f'<td class="wall">{"reaches" if reaches else "does not reach"}; toe to wall '
            f'{_v(100 * geo.toe_to_wall_m(best_deg), "{:.1f}", " cm")}</td>')


def _side_table(sides: dict[str, SideSummary], trials: list[Trial],
                geo: AthleteGeometry | None = None) -> str:
    rows = []
    for s in SIDES:
        x = sides[s]
        sources = sorted({t.heel_source for t in trials if t.side == s and t.heel_source})
        rows.append(
            f'<tr id="side-{s}"><td>{s}</td>'
            f'<td class="best">{_v(x.best_valid_deg)}</td>'
            f'<td class="mean3">{_v(x.mean_best3_deg)}</td>'
            f'<td class="scored">{x.n_scored}</td><td class="trials">{x.n_trials}</td>'
            f'<td class="invalid">{x.n_invalid}</td>'
            f'<td>{escape(", ".join(SPOKEN.get(x, x) for x in sources)) or "not checked"}</td>'
            + _wall_cell(x.best_valid_deg, geo) + "</tr>")
    return ("<table id=\"sides\"><tr><th>side</th><th>best valid angle</th>"
            "<th>mean of best three</th><th>scored</th><th>trials</th><th>heel lifted</th>"
            f"<th>heel-lift source</th><th>{HAND_WIDTH_M * 100:.0f} cm wall</th></tr>"
            + "".join(rows) + "</table>")


SQUAT = "single_leg_squat"


def _squat_block(trials: list[Trial]) -> str:
    """The single-leg squat screen: each rep's peak valgus (knee track toward the midline), per
    side, with the largest; empty when the session has no squat."""
    squats = [t for t in trials if t.exercise == SQUAT and t.peak_valgus_deg is not None]
    if not squats:
        return ""
    rows = []
    for s in SIDES:
        mine = [t for t in squats if t.side == s]
        if not mine:
            continue
        cells = ", ".join(f'rep {t.rep}: <span data-value="{t.peak_valgus_deg!r}">'
                          f"{t.peak_valgus_deg:.1f}°</span>" for t in mine)
        most = max(t.peak_valgus_deg for t in mine)
        rows.append(f'<tr id="squat-{s}"><td>{s}</td><td class="most">'
                    f'<span data-value="{most!r}">{most:.1f}°</span></td><td>{cells}</td></tr>')
    return ('<section id="sec-squat">'
            '<h2>Single-leg squat: peak valgus (knee track toward the midline)</h2>'
            '<table id="squat"><tr><th>side</th><th>largest</th><th>per rep</th></tr>'
            + "".join(rows) + "</table></section>")


def _asymmetry_block(a: Asymmetry | None, other: str = "") -> str:
    """The asymmetry table; ``other`` says where a side from an earlier session came from."""
    if a is None:
        return '<p id="asymmetry" class="note">asymmetry needs a scored trial on both sides</p>'
    band_cls = {"<10 %": "band-low", "10–25 %": "band-mid", ">25 %": "band-high"}.get(a.band, "")
    weaker = a.weaker_side
    mdc = (f'<span class="flag" id="mdc-flag">beyond the minimal detectable change '
           f"({a.mdc_deg:g}°)</span>" if a.beyond_mdc else
           f'<span class="ok" id="mdc-flag">within the minimal detectable change '
           f"({a.mdc_deg:g}°)</span>")
    how = (f"by the athlete's lengths (geometry; the ≈ {DEG_PER_CM_RULE}°/cm rule gives "
           f"{a.cm_rule:.1f} cm)" if a.cm_method == "geometry" else
           f"by the ≈ {DEG_PER_CM_RULE}°/cm rule (Bennell 1998)")
    return (
        '<table id="asymmetry"><tr><td>left − right</td>'
        f'<td class="diff">{_v(a.diff_deg, "{:+.2f}")}</td></tr>'
        f'<tr><td>of the better side</td><td class="pct {band_cls}">'
        f'{_v(a.percent, "{:.1f}", " %")} (band {escape(a.band)})</td></tr>'
        f'<tr><td>knee-to-wall difference</td>'
        f'<td class="cm">{_v(a.cm, "{:.1f}", " cm")}'
        + (f" shorter on the {weaker}" if weaker else "") + f" {escape(how)}</td></tr>"
        f"<tr><td>flag</td><td>{mdc}</td></tr></table>"
        + (f'<p class="note" id="asymmetry-source">{escape(other)}</p>' if other else ""))


def _borrowed_side(points: list[HistoryPoint], info: SessionInfo,
                   sides: dict[str, SideSummary]) -> tuple[dict[str, SideSummary], str]:
    """A one-sided session: the other side from the athlete's latest earlier session with it."""
    missing = [s for s in SIDES if sides[s].best_valid_deg is None]
    if len(missing) != 1:
        return sides, ""
    side = missing[0]
    earlier = [p for p in points if p.session.id < info.id and p.sides[side].best_valid_deg
               is not None]
    if not earlier:
        return sides, ""
    p = earlier[-1]
    note = (f"The {side} side is from session {p.session.id} "
            f"({p.session.start_utc[:16].replace('T', ' ')} UTC), the athlete's latest with a "
            f"scored {side} trial before this one.")
    return {**sides, side: p.sides[side]}, note


def _meta(info: SessionInfo, cals: list[tuple[str, str, dict]], lengths) -> str:
    tibia_m, foot_m = lengths
    rows = [("athlete", escape(info.athlete or "(none)")),
            ("date (UTC)", escape(info.start_utc.replace("T", " ").replace("Z", "")[:19])),
            ("session", f'<span id="session-id">{info.id}</span> ({escape(info.kind)}, '
             + ("ended" if info.ended else '<span class="flag">not ended</span>') + ")"),
            ("sensor", escape(info.sensor or "—")),
            ("placement", '<span id="placement">' + (
                "not given (the standard: anteromedial tibia, 15 cm below the tibial "
                "tuberosity)" if info.placement_cm is None else
                f'<span data-value="{info.placement_cm!r}">{info.placement_cm:g} cm</span> '
                "below the tibial tuberosity, anteromedial tibia") + "</span>")]
    if tibia_m is not None or foot_m is not None:
        rows.append(("lengths", ", ".join(
            f"{label} {v * 100:.1f} cm" for label, v in (("tibia", tibia_m),
                                                         ("toe–ankle", foot_m))
            if v is not None)))
    if cals:
        rows.append(("calibration", escape("; ".join(f"{s} ({o})" for s, o, _ in cals))))
    if info.notes:
        rows.append(("notes", escape(info.notes)))
    return '<table class="meta" id="meta">' + "".join(
        f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _norms_block(sides: dict[str, SideSummary], a: Asymmetry | None, norms: Norms) -> str:
    """Each side's best set against healthy adults, the difference and the MDC, with sources."""
    lines = []
    for s in SIDES:
        best = sides[s].best_valid_deg
        if best is None:
            continue
        verdict = norms.angle_verdict(best)
        lines.append(f'<li id="norm-{s}" class="norm-{verdict}" data-value="{best!r}">'
                     f"{escape(norms.angle_line(s, best))}</li>")
    if a is not None:
        lines.append(f'<li id="norm-difference">{escape(norms.difference_line(a.cm))} '
                     f"({escape(a.cm_method)})</li>")
        lines.append(f'<li id="norm-mdc">left − right {escape(norms.mdc_line(a.diff_deg))}</li>')
    lines.append(f'<li id="norm-wall">{escape(norms.wall_line)}</li>')
    refs = "".join(f'<li class="source" data-key="{escape(src.key)}"><b>{escape(src.short)}</b>: '
                   f"{escape(src.citation)}</li>" for src in norms.sources)
    return (f'<ul id="norms">{"".join(lines)}</ul>'
            f'<p class="note">Sources</p><ol class="sources" id="sources">{refs}</ol>')


def _summary(info: SessionInfo, sides: dict[str, SideSummary], a: Asymmetry | None,
             norms: Norms) -> str:
    """The one-page summary for the athlete's file (printed alone on the first page)."""
    rows = []
    for s in SIDES:
        x = sides[s]
        best = x.best_valid_deg
        verdict = "" if best is None else norms.angle_short(best)
        rows.append(f'<tr id="summary-{s}"><td>{s}</td><td class="big">{_v(best)}</td>'
                    f"<td>{_v(x.mean_best3_deg)}</td><td>{x.n_scored} of {x.n_trials}</td>"
                    f'<td class="norm-{"" if best is None else norms.angle_verdict(best)}">'
                    f"{escape(verdict)}</td></tr>")
    asym = ('<p class="note">asymmetry needs a scored trial on both sides</p>' if a is None else
            f'<p id="summary-asymmetry">Left − right <span class="big">'
            f'{_v(a.diff_deg, "{:+.1f}")}</span> ({a.percent:.0f} % of the better side, band '
            f"{escape(a.band)}; ≈ {a.cm:.1f} cm). {escape(norms.difference_line(a.cm))}. "
            f"Left − right {escape(norms.mdc_line(a.diff_deg))}.</p>")
    date = escape(info.start_utc.replace("T", " ").replace("Z", "")[:16])
    return (
        f'<section class="summary" id="summary"><h1>Knee-to-wall summary: '
        f'{escape(info.athlete or "no athlete")}</h1>'
        f'<p>{date} UTC · session {info.id} · sensor {escape(info.sensor or "—")}</p>'
        "<table><tr><th>side</th><th>best valid angle</th><th>mean of best three</th>"
        "<th>scored</th><th>against healthy adults</th></tr>" + "".join(rows) + "</table>"
        + asym + f'<p class="note">Healthy adults: tibia angle {escape(norms.tibia_range)} '
        f"({escape(norms.tibia_source.short)}); {escape(norms.wall_line)}. Sources: "
        + "; ".join(escape(src.citation) for src in norms.sources) + "</p>"
        '<p class="note" id="summary-end">Details on the next pages.</p></section>')


def render_report(store: Store, ref: int | str,
                  progress: Callable[[int, int], None] | None = None) -> str:
    """The HTML text of the report of session ``ref``; ``progress(samples read, total)`` after
    each chunk (then instead of the terminal bar: the monitor shows it)."""
    info = store.session(ref)
    trials = store.trials(info.id)
    sides = summarize(trials)
    athlete = store.find_athlete(info.athlete) if info.athlete else None
    lengths = (athlete.tibia_length_m, athlete.foot_length_m) if athlete else (None, None)
    geo = geometry(*lengths)
    chunks = []
    total = store.count_samples(info.id)
    if progress is not None:
        progress(0, total)
    with progress_bar(f"reading session {info.id}", total,
                      None if progress is None else total + 1) as advance:
        for c in store.iter_samples(info.id):
            chunks.append(c)
            advance(len(c))
            if progress is not None:
                progress(sum(map(len, chunks)), total)
    t_s = np.concatenate([c.t_s for c in chunks]) if chunks else np.empty(0)
    angle = np.concatenate([c.tibia_angle_deg for c in chunks]) if chunks else np.empty(0)
    side_of = np.array([s for c in chunks for s in c.side], dtype=object)
    points = history(store, info.athlete)
    both, other = _borrowed_side(points, info, sides) if info.athlete else (sides, "")
    asym = asymmetry(both, athlete=geo)
    plots = []
    for s in SIDES:
        m = side_of == s
        mine = [t for t in trials if t.side == s]
        if not m.any() and not mine:
            continue
        plots.append(f"<h3>{s}</h3>" + angle_plot(s, t_s[m], angle[m], mine,
                                                 sides[s].best_trial))
    # in print each plot is kept whole, the section's heading with the first one
    head = ("<h2>Tibia angle over time</h2>"
            '<p class="note">Shaded: trials (green scored, grey not held long enough, red heel '
            "lifted), darker: the scored hold; dots: each trial's angle, the side's best filled."
            "</p>")
    plots = [f'<section class="plot">{head if i == 0 else ""}{p}</section>'
             for i, p in enumerate(plots)] or [
        f'<section class="plot">{head}<p class="note">no samples stored</p></section>']
    norms = load_norms()
    title = f"dorsimeter — {info.athlete or 'session'} — {info.start_utc[:10]}"
    body = (
        _summary(info, sides, asym, norms)
        + '<section id="sec-meta">'
        + f"<h1>Knee-to-wall report: {escape(info.athlete or 'no athlete')}</h1>"
        + _meta(info, store.calibrations(info.id), lengths) + "</section>"
        + '<section id="sec-sides"><h2>Per side</h2>' + _side_table(sides, trials, geo)
        + '<p class="note">Tibia angle: inclination of the shin from vertical, knee forward '
          "positive. A trial whose heel lifted is kept but not scored.</p></section>"
        + '<section id="sec-asymmetry"><h2>Asymmetry</h2>' + _asymmetry_block(asym, other)
        + "</section>"
        + '<section id="sec-norms"><h2>Against published norms</h2>'
        + _norms_block(both, asym, norms) + "</section>"
        + _squat_block(trials)
        + '<section id="sec-exercises"><h2>Exercises, sets and reps</h2>'
        + exercises_table(trials) + "</section>"
        + "".join(plots)
        + f'<section id="sec-history"><h2>History ({len(points)} session'
        + f"{'s' if len(points) != 1 else ''})</h2>"
        + trend_plot(points, info.id) + "</section>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>\n")


def write_report(store: Store, ref: int | str, out: str | os.PathLike,
                 progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the report of session ``ref`` to ``out`` (owner-only)."""
    html = render_report(store, ref, progress)
    with atomic_private_text(out) as f:  # owner-only, never half a report
        f.write(html)
    return Path(out)
