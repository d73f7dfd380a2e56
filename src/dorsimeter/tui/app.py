"""The live monitor: tibia angle in large digits, gauge and target, trace, alerts, per-side table.

The source runs as a worker; the pipeline is pure and fast, so the worker pushes each batch
through it and the screen refreshes on a timer, never blocking the event loop. Slow I/O (the
history database, export, BLE scan) runs in the screens' own workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
from collections.abc import Callable

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer, Static

from dorsimeter.core import Pipeline
from dorsimeter.io.rawcsv import RawCsvWriter
from dorsimeter.session import SessionResults
from dorsimeter.sources import Source
from dorsimeter.tui.model import MDC_DEG, LiveModel, default_target, side_rows
from dorsimeter.tui.services import StoreClient, athlete_geometry, wall_target_deg
from dorsimeter.tui.widgets import (
    Banner,
    BigAngle,
    Gauge,
    Trace,
    render_protocol,
    render_sensors,
    render_sides,
)

TRACE_S = 10.0
STALL_S = 2.0  # no batch for this long (wall clock): the link is shown as stalled


class MonitorApp(App):
    """Live knee-to-wall monitor."""

    TITLE = "dorsimeter"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 1; background: $boost; padding: 0 1; }
    #sensors { height: auto; max-height: 3; padding: 0 1; background: $panel; }
    #main { height: 9; }
    #angle-box { width: 1fr; padding: 0 1; }
    #angle-label { width: 100%; height: 1; content-align: center middle; color: $text-muted; }
    #angle { color: $accent; text-style: bold; }
    #angle.reached { color: $success; }
    #sides { width: 36; border: round $primary; padding: 0 1; }
    #trace { border: round $primary; border-title-color: $text-muted; }
    #protocol { height: 2; padding: 0 1; background: $boost; display: none; }
    #protocol.on { display: block; }
    #message { height: 1; padding: 0 1; color: $warning; }
    """
    ENABLE_COMMAND_PALETTE = False  # every action has its key in the footer
    BINDINGS = [
        Binding("l", "side('left')", "Leg", key_display="l/r",
                tooltip="the sensor is on the left leg (r: the right)"),
        Binding("r", "side('right')", "Right leg", show=False,
                tooltip="the sensor is on the right leg"),
        Binding("t", "trial", "Trial", tooltip="start/stop a trial by hand (default: every "
                "drive is a trial)"),
        Binding("c", "calibrate", "Calib", tooltip="calibration wizard: stand still, then "
                "drive the knee forward three times"),
        Binding("a", "athlete", "Athlete", tooltip="choose or create the athlete (lengths give "
                "the hand-width wall target)"),
        Binding("s", "connect", "Sensor", tooltip="connect a sensor: scan BLE, serial ports, "
                "the simulated rig, a recording"),
        Binding("p", "protocol", "Protocol", tooltip="guided exercise: sets, reps, hold timer "
                "and cues"),
        Binding("h", "history", "History", tooltip="the athlete's sessions and trend; export a "
                "session as CSV or HTML"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="this help"),
        Binding("q", "quit", "Quit", tooltip="quit (the session is stored)"),
    ]

    def __init__(self, source: Source, pipeline: Pipeline, recorder: RawCsvWriter | None = None,
                 refresh_hz: float = 10.0, target_deg: float | None = None, athlete=None,
                 store: StoreClient | None = None, record_session: bool = True,
                 recording: dict | None = None,
                 mdc_deg: float = MDC_DEG,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.source = source
        self.pipeline = pipeline
        self.athlete = athlete
        self.session = self._new_session()
        self.recorder = recorder
        self.refresh_hz = refresh_hz
        self.target_option_deg = target_deg
        self.store = store
        self.home = getattr(store, "home", None)  # data directory (None: $DORSIMETER_HOME/default)
        self.record_session = record_session
        self.recording = dict(recording or {})  # sensor_kind, raw_path, notes for the store
        self.mdc_deg = mdc_deg
        self.clock = clock
        self.model = LiveModel(source.rate_hz, TRACE_S)
        self.protocol = None  # a running protocol (dorsimeter.protocols), when one is chosen
        self.shown_t_s: float | None = None
        self.shown_angle_deg: float | None = None
        self.last_t_s: float | None = None
        self.samples = 0
        self.readings_count = 0
        self.redraws = 0
        self.batches = 0
        self.bells = 0
        self.message = ""
        self.error: str | None = None
        self.source_ended = False
        self._last_rx_wall: float | None = None

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(id="sensors")
        yield Banner(id="banner")
        with Horizontal(id="main"):
            with Vertical(id="angle-box"):
                yield Static("tibia angle (°, knee forward +)", id="angle-label")
                yield BigAngle("--.-", id="angle")
                yield Gauge(id="gauge")
            yield Static(id="sides")
        yield Trace(TRACE_S, id="trace")
        yield Static(id="protocol")
        yield Static(id="message")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # terminal closed (SIGHUP) or asked to stop (SIGTERM): quit as `q` does, so the caller
        # closes the raw CSV and marks the session ended
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, functools.partial(self.exit,
                                                               return_code=128 + int(sig)))
        self.query_one("#trace").border_title = f"last {TRACE_S:.0f} s"
        self.query_one("#sides").border_title = "per side"
        if self.store is not None and self.record_session:
            self._start_recording()
        self.start_source()
        self.set_interval(1.0 / self.refresh_hz, self.refresh_view)
        self.refresh_view()

    def on_resize(self) -> None:
        tall = self.size.height >= 34
        self.query_one("#main").styles.height = 14 if tall else 9

    # -- the source worker ----------------------------------------------------------------------

    def start_source(self) -> None:
        self.source_ended = False
        self.run_worker(self._consume(self.source, self.pipeline), exclusive=True,
                        group="source", name="source")

    async def switch_source(self, source: Source, pipeline: Pipeline | None = None) -> None:
        """Stop the current sensor and stream from ``source`` (a new pipeline unless given)."""
        self.workers.cancel_group(self, "source")
        if self.store is not None and self.record_session:
            self.store.finish_recording(self.session)  # a new sensor starts a new session
        self.source = source
        self.pipeline = pipeline or Pipeline(source.rate_hz, side=self.pipeline.side)
        self.model = LiveModel(source.rate_hz, TRACE_S)
        self.session = self._new_session()
        self._latest = None
        self._last_rx_wall = None
        self.shown_t_s = self.shown_angle_deg = None
        if self.store is not None and self.record_session:
            self._start_recording()
        self.start_source()

    async def _consume(self, source: Source, pipeline: Pipeline) -> None:
        try:
            async for batch in source:
                self.ingest(batch, source, pipeline)
        except Exception as e:  # a source that fails ends the stream, not the app
            self.error = str(e)
            self.message = f"sensor stopped: {e}"
        finally:
            if source is self.source:
                self.source_ended = True
            await source.close()

    def ingest(self, batch, source: Source | None = None, pipeline: Pipeline | None = None
               ) -> None:
        """One batch through recorder, pipeline, session, model (and protocol, when running)."""
        pipeline = pipeline or self.pipeline
        if self.recorder is not None:
            self._write_raw(batch, batch.side or pipeline.side)
        self._last_rx_wall = self.clock()
        readings, events = pipeline.push(batch)
        self.samples += len(batch)
        self.readings_count += len(readings)
        self.batches += 1
        if len(batch):
            self.last_t_s = float(batch.t_s[-1])
        self.model.note_batch(batch, batch.side or pipeline.side)
        for e in events:
            if e.kind == "calibrated":
                self.message = "Calibrated " + e.message
                manual = not hasattr(self.session, "auto_trials")  # the skeleton's session
                if manual and self.session.trials.get(e.side, 0) == 0:
                    self.session.start_trial(e.side)
            elif e.kind == "calibration_failed":
                self.message = "Calibration refused: " + e.message
        self.session.add(readings)
        self.model.add(readings, events)
        if self.store is not None and self.record_session:
            self.store.record(readings, events)
            err = getattr(self.store, "error", None)
            if err and err != self._store_error:  # disk full, read-only: say it once, go on
                self._store_error = err
                self.error = self.message = f"history not saved: {err}"
        if self.protocol is not None and hasattr(self.protocol, "add"):
            self.protocol.add(readings, events)
        if len(readings):
            self._latest = (float(readings.t_s[-1]), float(readings.tibia_angle_deg[-1]))

    _store_error: str | None = None

    def _write_raw(self, batch, side: str) -> None:
        """Append to the raw CSV. A full disk or a read-only directory stops the recording with
        a message, never the live view; what was written stays readable."""
        try:
            self.recorder.write(batch, side)
        except OSError as e:
            rec, self.recorder = self.recorder, None
            try:
                rec.close()
            except OSError:
                pass
            where = f"{e.filename}: " if e.filename else ""
            self.error = self.message = f"recording stopped: {where}{e.strerror or e}"

    # -- drawing --------------------------------------------------------------------------------

    @property
    def target(self) -> tuple[float, str]:
        return default_target(self.target_option_deg, wall_target_deg(self.athlete))

    def set_athlete(self, athlete) -> None:
        """A new athlete starts a new session (stored as its own when there is a store)."""
        if athlete is self.athlete:
            return
        self.athlete = athlete
        if self.store is not None and self.record_session:
            self.store.finish_recording(self.session)
            self._start_recording()  # queued after the finish, on the same store thread
        self.session = self._new_session()
        self.message = f"athlete: {athlete.name}"

    def _new_session(self) -> SessionResults:
        """Session results for the athlete (their lengths give the wall verdicts)."""
        fields = getattr(SessionResults, "__dataclass_fields__", {})
        kw = {}
        if "rate_hz" in fields:
            kw["rate_hz"] = self.source.rate_hz
        geometry = athlete_geometry(self.athlete)
        if "athlete" in fields and geometry is not None:
            kw["athlete"] = geometry
        return SessionResults(**kw)

    def _start_recording(self) -> None:
        info = self.recording
        self.store.start_recording("monitor", getattr(self.athlete, "name", None),
                                   self.source.name, info.get("sensor_kind"),
                                   dict(self.pipeline.calibrations), info.get("raw_path"),
                                   info.get("notes"))

    def finish_session(self):
        """Store the session's trials and mark it ended; a Future of the session id (or None)."""
        if self.store is None or not self.record_session:
            return None
        return self.store.finish_recording(self.session)

    def sensor_rows(self) -> list[dict]:
        """Per-sensor link figures: the source's own ``stats()`` where it has them, else ours."""
        stats = self.source.stats() if hasattr(self.source, "stats") else {}
        entries = stats.get("sensors") or [stats]
        rows = []
        for s in entries:
            side = s.get("side") or self.pipeline.side
            link = self.model.links.get(side)
            state = s.get("state")
            if state is None:
                if self.source_ended:
                    state = "ended"
                elif self._last_rx_wall is None:
                    state = "connecting"
                elif self.clock() - self._last_rx_wall > STALL_S:
                    state = "stalled"
                else:
                    state = "streaming"
            if side in self.pipeline.calibrations:
                cal = "calibrated"
            elif side == self.pipeline.side:
                cal = self.pipeline.status
            else:
                cal = "not calibrated"
            def pick(key, ours, s=s):
                return s[key] if s.get(key) is not None else ours

            rows.append({
                "name": s.get("name") or self.source.name, "side": side, "state": state,
                "rate_hz": pick("rate_hz", link.rate_hz if link else None),
                "loss": pick("loss", link.loss if link else None),
                "battery": s.get("battery"), "calibration": cal,
                "reconnects": s.get("reconnects"),
            })
        return rows

    def refresh_view(self) -> None:
        """Redraw the monitor (its widgets live on the default screen, under any pushed one)."""
        if not self.screen_stack:
            return
        try:
            self._draw(self.screen_stack[0].query_one)
        except NoMatches:  # shutting down: the widgets are gone
            return
        self.redraws += 1

    def _draw(self, q) -> None:
        latest = getattr(self, "_latest", None)
        target_deg, target_label = self.target
        angle = q("#angle", BigAngle)
        if latest is not None:
            self.shown_t_s, self.shown_angle_deg = latest
            angle.update(f"{self.shown_angle_deg:.1f}")
        else:
            angle.update("--.-")
        reached = self.shown_angle_deg is not None and self.shown_angle_deg >= target_deg
        angle.set_class(reached and latest is not None, "reached")
        q("#gauge", Gauge).set(self.shown_angle_deg if latest else None,
                                            target_deg, target_label)
        side = self.pipeline.side
        who = getattr(self.athlete, "name", None) or "no athlete"
        trial = "trial running" if self.session.trial_active else "trial stopped"
        heel = f" · heel: {self.model.heel_source}" if self.model.heel_source else ""
        q("#status", Static).update(
            f"[b]{who}[/b] · [b]{side.upper()} leg[/b] · {trial}{heel}")
        q("#sensors", Static).update(render_sensors(self.sensor_rows()))
        q("#sides", Static).update(
            render_sides(side_rows(self.session), side, self.mdc_deg, self.session))
        q("#trace", Trace).set(self.model.trace(), self.model.reps, target_deg)
        banner = q("#banner", Banner)
        alerts = self.model.alerts
        if alerts:
            heel_alert = alerts.get("heel_lift")
            a = heel_alert or next(iter(alerts.values()))
            banner.update(f"⚠  {a.text}  ⚠")
            banner.set_class(heel_alert is None, "warn")
            banner.add_class("on")
        else:
            banner.remove_class("on")
        if self.model.take_bell():
            self.bells += 1
            self.bell()
        proto = q("#protocol", Static)
        state = getattr(self.protocol, "state", self.protocol)
        proto.update(render_protocol(state) if self.protocol is not None else "")
        proto.set_class(self.protocol is not None, "on")
        q("#message", Static).update(self.message)

    # -- actions --------------------------------------------------------------------------------

    MONITOR_ACTIONS = {"side", "trial", "calibrate", "athlete", "connect", "protocol", "history"}

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The monitor's keys work (and show in the footer) on the monitor only."""
        if action in self.MONITOR_ACTIONS and len(self.screen_stack) > 1:
            return False
        return True

    def action_side(self, side: str) -> None:
        if self.source.knows_side:
            self.message = "the recording says which side; l/r are for live sensors"
            return
        self.pipeline.set_side(side)
        self.source.set_side(side)
        self.model.clear_trace()
        self.message = f"{side} leg: " + self.pipeline.status

    def action_trial(self) -> None:
        if self.session.trial_active:
            self.session.stop_trial()
            self.message = "trial stopped"
        else:
            self.session.start_trial(self.pipeline.side)
            self.message = f"trial {self.session.trials[self.pipeline.side]} started"

    def action_recalibrate(self) -> None:
        self.pipeline.recalibrate()
        self.message = "recalibrating: " + self.pipeline.status

    def action_calibrate(self) -> None:
        from dorsimeter.tui.screens import CalibrateScreen

        self.push_screen(CalibrateScreen())

    def action_help(self) -> None:
        from dorsimeter.tui.screens import HelpScreen

        self.push_screen(HelpScreen())

    def action_athlete(self) -> None:
        from dorsimeter.tui.screens import AthleteScreen

        self.push_screen(AthleteScreen())

    def action_connect(self) -> None:
        from dorsimeter.tui.screens import ConnectScreen

        self.push_screen(ConnectScreen())

    def action_protocol(self) -> None:
        from dorsimeter.tui.screens import ProtocolScreen

        self.push_screen(ProtocolScreen())

    def action_history(self) -> None:
        from dorsimeter.tui.screens import HistoryScreen

        self.push_screen(HistoryScreen())
