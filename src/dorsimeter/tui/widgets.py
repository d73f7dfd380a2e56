"""The monitor's widgets: big angle, gauge with target line, trace with rep markers, panels.

Each widget's drawing is a pure function of plain values (``render_*``), so layouts are tested
without a terminal and the widgets only hold the values and call them.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

from dorsimeter.exercises.runner import ProtocolState
from dorsimeter.session.asymmetry import Asymmetry
from dorsimeter.tui.model import RepMarker, band_colour

# A solid block font, 5 rows high: readable from across the room.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "0": ("████", "█  █", "█  █", "█  █", "████"),
    "1": ("  █ ", " ██ ", "  █ ", "  █ ", " ███"),
    "2": ("████", "   █", "████", "█   ", "████"),
    "3": ("████", "   █", " ███", "   █", "████"),
    "4": ("█  █", "█  █", "████", "   █", "   █"),
    "5": ("████", "█   ", "████", "   █", "████"),
    "6": ("████", "█   ", "████", "█  █", "████"),
    "7": ("████", "   █", "  █ ", " █  ", " █  "),
    "8": ("████", "█  █", "████", "█  █", "████"),
    "9": ("████", "█  █", "████", "   █", "████"),
    ".": (" ", " ", " ", " ", "█"),
    "-": ("    ", "    ", "████", "    ", "    "),
    "°": ("███", "█ █", "███", "   ", "   "),
    " ": ("  ", "  ", "  ", "  ", "  "),
}
GLYPH_ROWS = 5


def big_text_lines(value: str, scale: int = 1) -> list[str]:
    """``value`` in the block font, each glyph ``scale`` times wider and taller."""
    rows = []
    for r in range(GLYPH_ROWS):
        parts = []
        for ch in value:
            g = _GLYPHS.get(ch, _GLYPHS[" "])[r]
            parts.append("".join(c * scale for c in g))
        rows.append((" " * scale).join(parts))
    return [row for row in rows for _ in range(scale)]


class BigAngle(Widget):
    """The tibia angle in large block digits; grows with the space it gets."""

    DEFAULT_CSS = "BigAngle { height: 1fr; min-height: 5; width: 1fr; }"

    def __init__(self, value: str = "--.-", **kw) -> None:
        super().__init__(**kw)
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def update(self, value: str) -> None:
        if value != self._value:
            self._value = value
            self.refresh()

    def render(self) -> Text:
        w, h = self.size
        text = self._value + "°"
        scale = 1
        while (len(big_text_lines(text, scale + 1)) <= h
               and len(big_text_lines(text, scale + 1)[0]) <= w and scale < 4):
            scale += 1
        lines = big_text_lines(text, scale)
        pad_top = max(0, (h - len(lines)) // 2)
        width = len(lines[0])
        left = max(0, (w - width) // 2)
        out = ["" for _ in range(pad_top)] + [" " * left + ln for ln in lines]
        return Text("\n".join(out))


def render_gauge(angle_deg: float | None, target_deg: float, width: int,
                 max_deg: float = 60.0, target_label: str = "target") -> Text:
    """Two lines: a bar from 0 to ``max_deg`` filled to the angle, and a scale with the target.

    The bar is green once the target is reached; the target column is marked on both lines."""
    width = max(10, width)
    col = lambda deg: int(round(np.clip(deg, 0, max_deg) / max_deg * (width - 1)))  # noqa: E731
    tcol = col(target_deg)
    reached = angle_deg is not None and angle_deg >= target_deg
    fill = -1 if angle_deg is None or angle_deg <= 0 else col(angle_deg)
    bar = Text()
    for i in range(width):
        if i == tcol:
            bar.append("┃", style="bold yellow")
        elif i <= fill:
            bar.append("█", style="bold green" if reached else "bold cyan")
        else:
            bar.append("░", style="grey42")
    scale = [" "] * width
    for deg in range(0, int(max_deg) + 1, 10):
        s = f"{deg}"
        c = min(col(deg), width - len(s))
        scale[c:c + len(s)] = list(s)
    label = f"▲ {target_label} {target_deg:.0f}°"
    start = int(np.clip(tcol, 0, max(0, width - len(label))))
    end = start + len(label)
    while end < width and scale[end] != " ":  # no half-hidden tick numbers after the label
        scale[end] = " "
        end += 1
    k = start - 1
    while k >= 0 and scale[k] != " ":  # nor before it
        scale[k] = " "
        k -= 1
    line2 = Text("".join(scale[:start]), style="grey62")
    line2.append(label, style="bold yellow")
    line2.append("".join(scale[start + len(label):]), style="grey62")
    return Text("\n").join([bar, line2])


class Gauge(Widget):
    """The angle on a 0–60° bar with the target line."""

    DEFAULT_CSS = "Gauge { height: 2; width: 1fr; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.angle_deg: float | None = None
        self.target_deg = 35.0
        self.target_label = "target"

    def set(self, angle_deg: float | None, target_deg: float, label: str) -> None:
        self.angle_deg, self.target_deg, self.target_label = angle_deg, target_deg, label
        self.refresh()

    def render(self) -> Text:
        return render_gauge(self.angle_deg, self.target_deg, self.size.width,
                            target_label=self.target_label)


_EIGHTHS = " ▁▂▃▄▅▆▇█"


def render_trace(t_s: np.ndarray, angle_deg: np.ndarray, heel: np.ndarray,
                 reps: list[RepMarker], width: int, height: int, window_s: float,
                 target_deg: float | None = None, y_max_deg: float = 60.0) -> Text:
    """An area chart of the angle over the last ``window_s`` with the target and rep markers.

    Columns are time bins (latest at the right), each showing the bin's maximum in eighth
    blocks; red where the heel lifted. The target is a dashed yellow line; the bottom row marks
    each rep's start with its number (green valid, red invalid, white not yet decided)."""
    axis_w = 4
    plot_w = max(1, width - axis_w)
    plot_h = max(1, height - 1)
    y_min = min(0.0, float(np.min(angle_deg))) if len(angle_deg) else 0.0
    y_max = max(y_max_deg, float(np.max(angle_deg)) if len(angle_deg) else 0.0)
    span = y_max - y_min
    levels = np.full(plot_w, -1.0)
    lifted = np.zeros(plot_w, bool)
    t_end = float(t_s[-1]) if len(t_s) else 0.0
    t_start = t_end - window_s
    if len(t_s):
        col = np.clip(((t_s - t_start) / window_s * plot_w).astype(int), 0, plot_w - 1)
        np.maximum.at(levels, col, (angle_deg - y_min) / span * plot_h)
        np.logical_or.at(lifted, col, heel.astype(bool))
        present = np.zeros(plot_w, bool)
        present[col] = True
        levels[~present] = -1.0
    t_row = None if target_deg is None else (target_deg - y_min) / span * plot_h
    hit = (np.zeros(plot_w, bool) if target_deg is None
           else y_min + levels / plot_h * span >= target_deg)
    rows = []
    for r in range(plot_h - 1, -1, -1):  # top row first
        on_target_row = t_row is not None and int(min(t_row, plot_h - 1e-9)) == r
        label = ""
        if r == plot_h - 1:
            label = f"{y_max:.0f}°"
        elif on_target_row:
            label = f"{target_deg:.0f}°"
        elif r == 0:
            label = f"{round(y_min) + 0:.0f}°"
        line = Text(label[:axis_w].rjust(axis_w - 1) + " ",
                    style="yellow" if on_target_row else "grey50")
        fill = levels - r
        empty = (levels < 0) | (fill <= 0)
        idx = np.clip(np.round(fill * 8), 1, 8).astype(int)
        chars = np.where(empty, "╌" if on_target_row else " ", np.array(list(_EIGHTHS))[idx])
        style = np.where(empty, "yellow", np.where(lifted, "red", np.where(hit, "green", "cyan")))
        start = 0
        for c in range(1, plot_w + 1):  # one span per run of the same style
            if c == plot_w or style[c] != style[start]:
                line.append("".join(chars[start:c]), style=str(style[start]))
                start = c
        rows.append(line)
    marks = Text(" " * axis_w)
    slots = [" "] * plot_w
    styles = ["grey50"] * plot_w
    for m in reps:
        if t_start <= m.t_s <= t_end:
            c = int(np.clip((m.t_s - t_start) / window_s * plot_w, 0, plot_w - 1))
            label = (f"▲{'' if m.rep is None else m.rep}"
                     + ("" if m.valid is None else ("✓" if m.valid else "✗")))
            for k, ch in enumerate(label):
                if c + k < plot_w:
                    slots[c + k] = ch
                    styles[c + k] = ("bold white" if m.valid is None
                                     else "bold green" if m.valid else "bold red")
    for ch, st in zip(slots, styles, strict=True):
        marks.append(ch, style=st)
    rows.append(marks)
    return Text("\n").join(rows)


class Trace(Widget):
    """The angle over the last seconds, with the target line and rep markers."""

    DEFAULT_CSS = "Trace { height: 1fr; min-height: 4; }"

    def __init__(self, window_s: float = 10.0, **kw) -> None:
        super().__init__(**kw)
        self.window_s = window_s
        self.data = (np.empty(0), np.empty(0), np.empty(0, bool))
        self.reps: list[RepMarker] = []
        self.target_deg: float | None = None

    def set(self, data, reps, target_deg) -> None:
        self.data, self.reps, self.target_deg = data, list(reps), target_deg
        self.refresh()

    def render(self) -> Text:
        t, a, h = self.data
        return render_trace(t, a, h, self.reps, self.size.width, self.size.height,
                            self.window_s, self.target_deg)


def trial_phrase(trial_active: bool, calibrated: bool, has_data: bool, stopped: bool) -> str:
    """The top line's state of the measurement: a trial runs only while a sensor streams into a
    calibrated leg, so a missing sensor or a calibration under way never reads "trial running"."""
    if stopped:
        return "sensor stopped"
    if not has_data:
        return "waiting for the sensor"
    if not calibrated:
        return "calibrating"
    return "trial running" if trial_active else "trial stopped"


def fmt_pct(x) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def render_sensors(sensors: list[dict]) -> Text:
    """One line per sensor: state dot, name, side, rate, loss, battery, calibration (and "box
    cal" when the sensor's box calibration is applied), state."""
    out = []
    for s in sensors:
        state = s.get("state") or "streaming"
        dot = {"streaming": "green", "connecting": "yellow", "reconnecting": "yellow",
               "stalled": "yellow"}.get(state, "red")
        line = Text()
        line.append("● ", style=f"bold {dot}")
        line.append(f"{s.get('name', 'sensor')}", style="bold")
        line.append(f"  {str(s.get('side') or '?').upper()}", style="bold magenta")
        rate = s.get("rate_hz")
        line.append(f"  {'—' if rate is None else f'{rate:.0f}'} Hz")
        loss = s.get("loss")
        line.append("  loss " + ("—" if loss is None else f"{100 * loss:.1f} %"),
                    style="red" if loss and loss > 0.02 else "")
        line.append("  batt " + fmt_pct(s.get("battery")),
                    style="red" if (s.get("battery") or 1) < 0.15 else "")
        cal = s.get("calibration") or ""
        line.append(f"  {cal}", style="green" if cal == "calibrated" else "yellow")
        if s.get("box_cal"):  # the sensor's own box calibration corrects its raw channels
            line.append("  box cal", style="green")
        if state != "streaming":
            line.append(f"  {state.upper()}", style=f"bold {dot}")
        if s.get("reconnects"):
            line.append(f"  reconnects {s['reconnects']}", style="yellow")
        if s.get("gaps"):
            line.append(f"  gaps {s['gaps']}", style="yellow")
        out.append(line)
    return Text("\n").join(out) if out else Text("no sensor", style="red")


#: the table's inner width with every heading in full (the one-sensor monitor gives it this)
SIDES_FULL_WIDTH = 44


def render_sides(rows: list[dict], current_side: str, asym: Asymmetry | None,
                 width: int = SIDES_FULL_WIDTH) -> Text:
    """The per-side table (``side_rows``): per leg the best valid angle, trials, heel lifts and
    the hand-width wall verdict; the mean of the best ``best_of``; the session's asymmetry
    ``asym`` (None: not both legs scored) in °, % (traffic-light band) and knee-to-wall cm with
    the MDC flag. Headings in full words from ``SIDES_FULL_WIDTH``
    columns; narrower (two legs side by side: 32), short headings and a legend line. No line
    is wider than ``width``, so none wraps."""
    kind = rows[0]["kind"] if rows else "best"
    walls = [w for r in rows if (w := r.get("wall"))]
    full = width >= SIDES_FULL_WIDTH
    trials_w, lifts_w = (7, 11) if full else (3, 5)
    t = Text(no_wrap=True, overflow="ellipsis")
    head = (f"  {'leg':<6}{kind:>6}{'trials' if full else 'n':>{trials_w}}"
            f"{'heel lifts' if full else 'lift':>{lifts_w}}")
    if walls:
        head += f"  {walls[0]['wall_cm']:.0f} cm wall" if full else " wall"
    t.append(head + "\n", style="bold")
    for r in rows:
        mark = "▶ " if r["side"] == current_side else "  "
        best = "—" if r["best_deg"] is None else f"{r['best_deg']:.1f}°"
        t.append(f"{mark}{r['side']:<6}{best:>6}{r['trials']:>{trials_w}}",
                 style="bold" if r["side"] == current_side else "")
        lifts = r.get("invalid")
        t.append(f"{'' if lifts is None else lifts:>{lifts_w}}",
                 style="bold red" if lifts else "")
        w, gap = r.get("wall"), "  " if full else " "
        if w:
            if w["reaches"]:
                t.append(f"{gap}✓ reaches", style="bold green")
            else:
                t.append(f"{gap}✗ {w['knee_to_wall_cm']:.1f} cm", style="bold red")
        elif r["best_deg"] is None and r.get("max_deg") is not None and kind == "best":
            t.append(f"{gap}(max {r['max_deg']:.0f}°)", style="grey62")
        t.append("\n")
    means = [r.get("mean3_deg") for r in rows]
    if any(m is not None for m in means):
        shown = [("—" if m is None else f"{m:.1f}°") for m in means]
        per_side = (", ".join(f"{r['side']} {v}" for r, v in zip(rows, shown, strict=True))
                    if full else " · ".join(shown))
        t.append(f"  mean of best {rows[0]['best_of']}: {per_side}\n", style="grey62")
    if kind == "best" and any(r["best_deg"] is not None for r in rows):
        from dorsimeter.export.norms import load_norms  # the published norm, with its source

        n = load_norms()
        t.append(f"  {n.tibia_range} {n.tibia_source.short}:", style="grey62")
        for r in rows:
            if r["best_deg"] is not None:
                v = n.angle_verdict(r["best_deg"])
                mark = {"below": "↓", "above": "↑"}.get(v, "✓")  # against the healthy range
                t.append(f" {r['side'][0].upper()}{mark}",
                         style="yellow" if v == "below" else "green")
        t.append("\n")
    if asym is not None:
        a = asym
        t.append(f"  left − right {a.diff_deg:+.1f}° {a.percent:.1f} %", style="bold")
        if full:
            t.append(" ")
            t.append(f"● {a.band}", style=f"bold {band_colour(a)}")
            t.append(f"\n  {a.cm:.1f} cm at the wall · ")
        else:  # the band opens the next line
            t.append("\n  ")
            t.append(f"● {a.band}", style=f"bold {band_colour(a)}")
            t.append(f"  {a.cm:.1f} cm  ")
        flag = "beyond MDC" if a.beyond_mdc else "within MDC"
        t.append(f"{flag} {a.mdc_deg:.1f}°" if full else flag,
                 style="bold red" if a.beyond_mdc else "grey62")
    else:
        t.append("  asymmetry: test both legs", style="grey62")
    if not full:
        t.append("\n  n trials · lift: heel lifted", style="grey62")
    return t


def render_leg_alert(alerts: dict, row: dict | None, error: str | None = None
                     ) -> tuple[Text, str]:
    """A leg's alert line in the two-sensor monitor and its class ("on" red, "warn" amber, ""):
    the sensor lost, else that leg's heel lift, else its knee drift, else its best and trials."""
    if error is not None:
        return Text("✗ SENSOR LOST", no_wrap=True, overflow="ellipsis"), "on"
    for kind, cls in (("heel_lift", "on"), ("knee_drift", "warn")):
        a = alerts.get(kind)
        if a is not None:
            return Text(f"⚠ {a.text}", no_wrap=True, overflow="ellipsis"), cls
    if row is None:
        return Text(""), ""
    best = "—" if row["best_deg"] is None else f"{row['best_deg']:.1f}°"
    n = row["trials"]
    t = Text(f"{row['kind']} {best} · {n} trial{'' if n == 1 else 's'}", no_wrap=True,
             overflow="ellipsis")
    if row.get("invalid"):
        k = row["invalid"]
        t.append(f" · {k} heel lift{'' if k == 1 else 's'}", style="bold red")
    return t, ""


def render_protocol(p: ProtocolState | None) -> Text:
    """Protocol mode, two lines: exercise, leg, set, rep and the hold countdown; then the cue.

    ``p`` is the runner's state."""
    if p is None:
        return Text("")
    t = Text()
    t.append(p.exercise or p.name, style="bold")
    if p.side:
        t.append(f"  {p.side.upper()}", style="bold magenta")
    t.append(f"  set {p.set}/{p.sets}", style="bold")
    t.append(f"  rep {p.rep}/{p.reps}", style="bold")
    hold = p.hold_remaining_s
    if hold is not None:
        t.append(f"  HOLD {hold:4.1f} s", style="bold black on yellow" if hold > 0
                 else "bold black on green")
    if p.missed:
        t.append(f"  missed {p.missed}", style="red")
    if p.done:
        t.append("  ✓ DONE", style="bold green")
    valgus = p.valgus
    if p.name == "single_leg_squat" and valgus:  # the squat screen: knee track per rep
        side, rep, deg = valgus[-1]
        worst = {s: max(v for s2, _, v in valgus if s2 == s) for s, _, _ in valgus}
        t.append(f"  peak valgus rep {rep} {deg:.1f}° (most: "
                 + ", ".join(f"{s} {v:.1f}°" for s, v in worst.items()) + ")", style="bold")
    t.append("\n" + (p.cue or ""), style="italic")
    return t


class Banner(Static):
    """The alert banner: big, red, impossible to miss; hidden when there is nothing to say."""

    DEFAULT_CSS = """
    Banner { height: 3; content-align: center middle; text-style: bold; display: none;
             background: $error; color: $text; }
    Banner.warn { background: $warning; color: black; }
    Banner.on { display: block; }
    """
