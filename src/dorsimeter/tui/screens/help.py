"""``?``: every key of every screen, and what the panels mean."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from dorsimeter.tui.screens.keys import SCREEN_KEYS

if TYPE_CHECKING:
    from dorsimeter.tui.app import MonitorApp

PANELS = """\
[b]Panels[/b]
  top line     athlete · leg the sensor is on · waiting for the sensor / calibrating /
               trial running / trial stopped / sensor stopped · what checks the heel
  sensor line  ● state, name, side, sample rate, packet loss, battery, calibration
  big number   tibia angle from vertical, degrees, knee forward positive; green at target
  gauge        0–60°, the yellow ┃ is the target (--target-deg, the athlete's goal, else 35°)
  trace        the last 10 s; ▲n marks rep n (green ✓ valid, red ✗ heel lifted); red = heel up
  per side     per leg the best valid angle, trials, heel lifts and the 9 cm wall; the mean
               of the best 3; left − right in °, % and cm at the wall (3.6° per cm, or the
               athlete's lengths), band green < 10 % · amber 10–25 % · red > 25 %; beyond or
               within the MDC (minimal detectable change); two legs: n trials, lift heel lifts
  banner       HEEL LIFT (red, with the bell) or KNEE DRIFTING IN (amber)
"""

BOTH = """\
[b]Two sensors[/b] (monitor --right-sensor, demo --both): one sensor on each shin, both live
  l / r        choose the leg that c (calibration wizard) and t (trial) act on (▶ marks it);
               each sensor stays on its shin and is calibrated on its own leg
  leg panel    the leg's calibration, its alert line (HEEL LIFT / KNEE DRIFT for that leg only,
               SENSOR LOST when its link is gone for good; else its best and trials), its angle,
               gauge and trace; the other leg streams on whatever happens to this one
"""


class HelpScreen(ModalScreen):
    """Keys and panel legend; any of escape, q or ? closes it."""

    if TYPE_CHECKING:
        @property
        def app(self) -> MonitorApp: ...  # pushed only by MonitorApp

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help { width: 96; max-width: 100%; height: auto; max-height: 100%;
            border: thick $primary; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", key_display="esc")]

    def compose(self) -> ComposeResult:
        lines = ["[b]Keys on the monitor[/b]"]
        for b in self.app.BINDINGS:
            assert isinstance(b, Binding)  # MonitorApp lists Binding objects, no tuples
            key = b.key_display or b.key
            lines.append(f"  [b]{key:<3}[/b] {b.description:<9} {b.tooltip}")
        for title, keys in SCREEN_KEYS.items():
            lines.append(f"[b]{title}[/b]  " + " · ".join(f"{k} {d}" for k, d in keys))
        with VerticalScroll(id="help"):
            both = "\n" + BOTH if self.app.bilateral else ""
            yield Static("\n".join(lines) + "\n\n" + PANELS + both, id="help-text")
        yield Footer()
