"""The calibration wizard: stand still, drive the knee forward three times, see the result.

It restarts the mounting calibration of the current leg and follows ``Pipeline.status`` live;
the pipeline's ``calibrated`` / ``calibration_failed`` event gives the result.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from dorsimeter.tui.model import calibration_progress

STEPS = (
    ("still", "Stand tall and still, weight on both feet"),
    ("drives", "Now drive the knee forward slowly, three times, heel down"),
)


def bar(frac: float, width: int = 24) -> str:
    n = int(round(max(0.0, min(1.0, frac)) * width))
    return "█" * n + "░" * (width - n)


class CalibrateScreen(Screen):
    """Guided mounting calibration of the leg the sensor is on."""

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
        Binding("enter", "done", "Done"),
        Binding("c", "again", "Start again"),
        Binding("escape", "done", "Back"),
    ]

    def __init__(self, restart: bool = True) -> None:
        super().__init__()
        self.restart = restart
        self.result: str | None = None  # "ok" | "refused"
        self.step = "still"
        self.frac = 0.0
        self.seen: list[tuple[str, float]] = []  # (step, fraction) as shown, for the record

    def compose(self) -> ComposeResult:
        yield Static(id="cal-title")
        yield Static(id="cal-steps")
        yield Static(id="cal-result")
        yield Static(id="cal-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.action_again() if self.restart else self._mark()
        self.set_interval(0.1, self.follow)
        self.follow()

    def _mark(self) -> None:
        self._seen = len(self.app.model.events)

    def action_again(self) -> None:
        self.app.pipeline.recalibrate()
        # the athlete follows the wizard (the simulated one too: without this it went on with
        # its drives and the calibrator took an end-range hold for the stance, issue 12 item 3)
        self.app.source.calibration_started()
        self.result = None
        self._mark()
        self.follow()

    def action_done(self) -> None:
        self.app.pop_screen()

    def follow(self) -> None:
        app = self.app
        side = app.pipeline.side
        for e in app.model.events[self._seen:]:
            if e.side != side:
                continue
            if e.kind == "calibrated":
                self.result, self.detail = "ok", e.message
            elif e.kind == "calibration_failed":
                self.result, self.detail = "refused", e.message
        self._seen = len(app.model.events)
        if self.result is None:
            self.step, self.frac = calibration_progress(app.pipeline.status)
        self.seen.append((self.step if self.result is None else self.result, self.frac))
        self.query_one("#cal-title", Static).update(f"Calibrating the {side.upper()} leg")
        steps = Text()
        done_still = self.result == "ok" or self.step in ("drives", "done")
        for i, (key, text) in enumerate(STEPS, 1):
            if key == "still":
                frac, done = (1.0 if done_still else self.frac), done_still
            else:
                frac = 1.0 if self.result == "ok" else (self.frac if self.step == "drives" else 0)
                done = self.result == "ok"
            active = not done and (key == self.step)
            style = "bold green" if done else ("bold" if active else "grey50")
            steps.append(f"{i}  {'✓' if done else ('▶' if active else ' ')} {text}\n", style=style)
            steps.append(f"      {bar(frac)} {100 * frac:3.0f} %\n\n",
                         style="green" if done else ("cyan" if active else "grey50"))
        steps.append(f"live: {app.pipeline.status}", style="italic")
        self.query_one("#cal-steps", Static).update(steps)
        res = self.query_one("#cal-result", Static)
        res.set_class(self.result == "ok", "ok")
        res.set_class(self.result == "refused", "bad")
        detail = self.query_one("#cal-detail", Static)
        if self.result == "ok":
            res.update("✓  CALIBRATED — enter to measure")
            detail.update(self.detail)
        elif self.result == "refused":
            res.update("✗  NOT CALIBRATED — press c to start again")
            detail.update(self.detail)
        else:
            res.update("")
            detail.update("")
