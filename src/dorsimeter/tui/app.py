"""The live monitor: the tibia angle in large digits, a trace, and the per-side maxima.

The source runs as a worker; the pipeline is pure and fast, so the worker pushes each batch
through it and the screen refreshes on a timer, never blocking the event loop.
"""

from __future__ import annotations

from collections import deque

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Digits, Footer, Sparkline, Static

from dorsimeter.core import Pipeline
from dorsimeter.io.rawcsv import RawCsvWriter
from dorsimeter.session import SessionResults
from dorsimeter.sources import Source
from dorsimeter.types import SIDES

TRACE_S = 10.0
TRACE_POINTS = 200


class MonitorApp(App):
    """Live knee-to-wall monitor."""

    TITLE = "dorsimeter"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 1; background: $boost; padding: 0 1; }
    #main { height: 1fr; }
    #angle-box { width: 1fr; align: center middle; }
    #angle { width: auto; }
    #angle-label { width: 100%; content-align: center middle; color: $text-muted; }
    #sides { width: 34; border: round $primary; padding: 0 1; }
    #trace { height: 6; border: round $primary; }
    #message { height: 1; padding: 0 1; color: $warning; }
    """
    BINDINGS = [
        Binding("l", "side('left')", "Left leg"),
        Binding("r", "side('right')", "Right leg"),
        Binding("t", "trial", "Start/stop trial"),
        Binding("c", "recalibrate", "Recalibrate"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, source: Source, pipeline: Pipeline, recorder: RawCsvWriter | None = None,
                 refresh_hz: float = 10.0) -> None:
        super().__init__()
        self.source = source
        self.pipeline = pipeline
        self.session = SessionResults()
        self.recorder = recorder
        self.refresh_hz = refresh_hz
        n = max(1, int(source.rate_hz * TRACE_S / TRACE_POINTS))
        self._decimate = n
        self._trace: deque[float] = deque(maxlen=TRACE_POINTS)
        self._count = 0
        self.shown_t_s: float | None = None
        self.shown_angle_deg: float | None = None
        self.last_t_s: float | None = None
        self.samples = 0
        self.message = ""
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal(id="main"):
            with Vertical(id="angle-box"):
                yield Static("tibia angle (°, knee forward +)", id="angle-label")
                yield Digits("--.-", id="angle")
            yield Static(id="sides")
        yield Sparkline([0.0], id="trace", summary_function=max)
        yield Static(id="message")
        yield Footer()

    def on_mount(self) -> None:
        self.run_worker(self._consume(), exclusive=True, name="source")
        self.set_interval(1.0 / self.refresh_hz, self.refresh_view)
        self.refresh_view()

    async def _consume(self) -> None:
        try:
            async for batch in self.source:
                if self.recorder is not None:
                    self.recorder.write(batch, batch.side or self.pipeline.side)
                readings, events = self.pipeline.push(batch)
                self.samples += len(batch)
                self.last_t_s = float(batch.t_s[-1])
                for e in events:
                    self.message = ("Calibrated " if e.kind == "calibrated" else "Calibration "
                                    "refused: ") + e.message
                    if e.kind == "calibrated" and self.session.trials.get(e.side, 0) == 0:
                        self.session.start_trial(e.side)
                self.session.add(readings)
                for i in range(len(readings)):
                    self._count += 1
                    if self._count % self._decimate == 0:
                        self._trace.append(float(readings.tibia_angle_deg[i]))
                if len(readings):
                    self._latest = (float(readings.t_s[-1]), float(readings.tibia_angle_deg[-1]))
        except Exception as e:  # a source that fails ends the stream, not the app
            self.error = str(e)
            self.message = f"sensor stopped: {e}"
        finally:
            await self.source.close()

    def refresh_view(self) -> None:
        latest = getattr(self, "_latest", None)
        if latest is not None:
            self.shown_t_s, self.shown_angle_deg = latest
            self.query_one("#angle", Digits).update(f"{self.shown_angle_deg:.1f}")
        side = self.pipeline.side
        trial = "trial running" if self.session.trial_active else "trial stopped"
        self.query_one("#status", Static).update(
            f"{self.source.name} · {side.upper()} leg · {self.pipeline.status} · {trial}")
        lines = ["[b]Per side[/b]", ""]
        for s in SIDES:
            m = self.session.max_deg.get(s)
            mark = "▶ " if s == side else "  "
            lines.append(f"{mark}{s:<6} max " + ("  —  " if m is None else f"{m:5.1f}°"))
        if all(s in self.session.max_deg for s in SIDES):
            d = self.session.max_deg["left"] - self.session.max_deg["right"]
            lines += ["", f"  L − R  {d:+5.1f}°"]
        self.query_one("#sides", Static).update("\n".join(lines))
        if self._trace:
            self.query_one("#trace", Sparkline).data = list(self._trace)
        self.query_one("#message", Static).update(self.message)

    def action_side(self, side: str) -> None:
        if self.source.knows_side:
            self.message = "the recording says which side; l/r are for live sensors"
            return
        self.pipeline.set_side(side)
        self.source.set_side(side)
        self._trace.clear()
        self.message = f"{side} leg: " + self.pipeline.status

    def action_trial(self) -> None:
        if self.session.trial_active:
            self.session.stop_trial()
        else:
            self.session.start_trial(self.pipeline.side)

    def action_recalibrate(self) -> None:
        self.pipeline.recalibrate()
        self.message = "recalibrating: " + self.pipeline.status
