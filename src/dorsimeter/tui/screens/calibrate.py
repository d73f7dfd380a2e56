"""The calibration wizard: strap the sensor on, stand still, drive the knee forward three times,
see the result.

It opens on where and how to strap the sensor (``hardware_docs/mounting.md``, at the placement
the sensor screen holds); enter restarts the mounting calibration of the current leg, and the
wizard follows ``Pipeline.progress`` live (phase, seconds of stance, degrees of drives); the
pipeline's ``calibrated`` / ``calibration_failed`` event gives the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from dorsimeter.core.mounting import STANCE_MOVED_DEG
from dorsimeter.text import markup_safe

if TYPE_CHECKING:
    from dorsimeter.tui.app import MonitorApp

#: the standard placement (hardware_docs/mounting.md): centre of the clip this far below the
#: tibial tuberosity, unless the sensor screen was given another
DEFAULT_PLACEMENT_CM = 15.0

#: the wizard's step for each calibration phase (``CalibrationProgress.phase``)
STEP_OF_PHASE = {"stance": "still", "drives": "drives", "calibrated": "done"}

STEPS = (
    ("strap", "Strap the sensor on"),
    ("still", "Stand tall and still, weight on both feet"),
    ("drives", "Now drive the knee forward slowly, three times, heel down"),
)


def strapping(side: str, placement_cm: float) -> str:
    """Where and how to strap the sensor, in the words of hardware_docs/mounting.md."""
    return (f"On the {side} shin: the flat inner face of the shin bone, just inside its front "
            f"edge, with the centre of the clip {placement_cm:g} cm below the tibial tuberosity "
            "(the bump below the kneecap). Long side along the shin, USB-C port down. Strap it "
            "snug round the calf (two fingers slide under it at the back), on bare skin or thin "
            "tights. Enter when it is on.")


def bar(frac: float, width: int = 24) -> str:
    n = int(round(max(0.0, min(1.0, frac)) * width))
    return "█" * n + "░" * (width - n)


def stance_moved(before, after) -> str:
    """A warning when the new stance's long axis is :data:`STANCE_MOVED_DEG` or more from the
    previous calibration's of this leg (empty otherwise, or with nothing to compare)."""
    if before is None or after is None:
        return ""
    import numpy as np

    off = float(np.degrees(np.arccos(np.clip(np.dot(before.z_axis, after.z_axis), -1.0, 1.0))))
    if off < STANCE_MOVED_DEG:
        return ""
    return (f"The stance leans {off:.0f}° from the last calibration's: unless the clip was "
            "moved, the athlete was not standing tall. Press c to start again.")


class CalibrateScreen(Screen):
    """Guided mounting calibration of the leg the sensor is on."""

    if TYPE_CHECKING:
        @property
        def app(self) -> MonitorApp: ...  # pushed only by MonitorApp

    DEFAULT_CSS = """
    CalibrateScreen { layout: vertical; }
    #cal-title { height: 3; content-align: center middle; text-style: bold;
                 background: $primary; color: $text; }
    #cal-steps { height: auto; padding: 1 2; }
    #cal-result { height: 3; content-align: center middle; text-style: bold; }
    #cal-result.ok { background: $success; color: black; }
    #cal-result.bad { background: $error; color: $text; }
    #cal-detail { height: auto; padding: 0 2; color: $text-muted; }
    """
    BINDINGS = [
        Binding("enter", "enter", "Strapped / done"),
        Binding("c", "again", "Start again"),
        Binding("escape", "done", "Back"),
    ]

    def __init__(self, restart: bool = True) -> None:
        super().__init__()
        self.restart = restart
        self.result: str | None = None  # "ok" | "refused"
        self.step = "strap" if restart else "still"
        self.frac = 0.0
        self.seen: list[tuple[str, float]] = []  # (step, fraction) as shown, for the record
        self.before = None  # the leg's calibration before this one (to check the new stance)
        self.warning = ""

    def compose(self) -> ComposeResult:
        yield Static(id="cal-title")
        yield Static(id="cal-steps")
        yield Static(id="cal-result")
        yield Static(id="cal-detail")
        yield Footer()

    def on_mount(self) -> None:
        self._mark()  # the strapping step first: enter starts the calibration
        self.set_interval(0.1, self.follow)
        self.follow()

    def action_enter(self) -> None:
        if self.step == "strap":
            self.action_again()
        else:
            self.action_done()

    def _mark(self) -> None:
        self._seen = len(self.app.model.events)

    def action_again(self) -> None:
        self.before = self.app.pipeline.calibrations.get(self.app.pipeline.side)
        self.warning = ""
        self.app.pipeline.recalibrate()
        # the athlete follows the wizard (the simulated one too: without this it went on with
        # its drives and the calibrator took an end-range hold for the stance, issue 12 item 3)
        self.app.source.calibration_started()
        self.result = None
        self.step, self.frac = "still", 0.0
        self._mark()
        self.follow()

    def action_done(self) -> None:
        self.app.pop_screen()

    def follow(self) -> None:
        app = self.app
        side = app.pipeline.side
        for e in app.model.events[self._seen:]:
            if e.side != side or self.step == "strap":  # not started yet: not its result
                continue
            if e.kind == "calibrated":
                self.result, self.detail = "ok", e.message
                self.warning = stance_moved(self.before, getattr(e, "calibration", None))
            elif e.kind == "calibration_failed":
                self.result, self.detail = "refused", e.message
        self._seen = len(app.model.events)
        progress = app.pipeline.progress
        if self.result is None and self.step != "strap":
            self.step, self.frac = STEP_OF_PHASE[progress.phase], progress.fraction
        self.seen.append((self.step if self.result is None else self.result, self.frac))
        self.query_one("#cal-title", Static).update(f"Calibrating the {side.upper()} leg")
        steps = Text()
        placement = getattr(app, "placement_cm", None) or DEFAULT_PLACEMENT_CM
        strapped = self.step != "strap"
        done_still = self.result == "ok" or self.step in ("drives", "done")
        need = progress.still_need_s if progress.phase == "stance" else None
        for i, (key, text) in enumerate(STEPS, 1):
            if key == "strap":
                mark = "✓" if strapped else "▶"
                steps.append(f"{i}  {mark} {text}" + (f" ({placement:g} cm below the tibial "
                             "tuberosity)\n\n" if strapped else "\n"),
                             style="bold green" if strapped else "bold")
                if not strapped:
                    steps.append(f"      {strapping(side, placement)}\n\n", style="bold cyan")
                continue
            if key == "still":
                frac, done = (1.0 if done_still else self.frac), done_still
                if need is not None:
                    text += f", {need:g} s"
            else:
                frac = 1.0 if self.result == "ok" else (self.frac if self.step == "drives" else 0)
                done = self.result == "ok"
            active = not done and (key == self.step)
            style = "bold green" if done else ("bold" if active else "grey50")
            steps.append(f"{i}  {'✓' if done else ('▶' if active else ' ')} {text}\n", style=style)
            steps.append(f"      {bar(frac)} {100 * frac:3.0f} %\n\n",
                         style="green" if done else ("cyan" if active else "grey50"))
        if strapped:
            steps.append(f"live: {progress.text}", style="italic")
        self.query_one("#cal-steps", Static).update(steps)
        res = self.query_one("#cal-result", Static)
        res.set_class(self.result == "ok", "ok")
        res.set_class(self.result == "refused", "bad")
        detail = self.query_one("#cal-detail", Static)
        if self.result == "ok":
            res.update("✓  CALIBRATED — enter to measure")
            detail.update(Text(self.detail) + (Text("\n" + self.warning, style="bold yellow")
                                               if self.warning else Text("")))
        elif self.result == "refused":
            res.update("✗  NOT CALIBRATED — press c to start again")
            detail.update(markup_safe(self.detail))
        else:
            res.update("")
            detail.update("")
