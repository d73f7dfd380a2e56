"""The live monitor: tibia angle in large digits, gauge and target, trace, alerts, per-side table.

The source runs as a worker; the pipeline is pure and fast, so the worker pushes each batch
through it and the screen refreshes on a timer, never blocking the event loop. Slow I/O (the
history database, export, BLE scan) runs in the screens' own workers.

With a second sensor (``right_source``) the monitor shows both legs at once: each sensor is a
:class:`Leg` bound to its shin with its own worker, pipeline (fusion, calibration, detectors),
model (trace, alerts, link figures) and raw CSV, all feeding one session (per-side trials and
the live asymmetry). ``l``/``r`` then choose the leg that ``c`` (calibration wizard) and ``t``
(manual trial) act on; one sensor failing leaves the other streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer, Static

from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.io.rawcsv import RawCsvWriter
from dorsimeter.pipeline import Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.sources import Source
from dorsimeter.text import markup_safe
from dorsimeter.tui.model import (
    MDC_DEG,
    LiveModel,
    calibration_progress,
    default_target,
    side_rows,
)
from dorsimeter.tui.services import StoreClient, athlete_geometry, wall_target_deg
from dorsimeter.tui.widgets import (
    SIDES_FULL_WIDTH,
    Banner,
    BigAngle,
    Gauge,
    Trace,
    render_leg_alert,
    render_protocol,
    render_sensors,
    render_sides,
    trial_phrase,
)
from dorsimeter.types import SIDES

TRACE_S = 10.0
STALL_S = 2.0  # no batch for this long (wall clock): the link is shown as stalled


def box_cal_id(pipeline: Pipeline) -> str | None:
    """The id of the box calibration (``dorsimeter sensor-cal``) the pipeline applies, if any."""
    cal = getattr(pipeline, "sensor_cal", None)
    return None if cal is None else cal.sensor_id


@dataclass
class Leg:
    """One sensor bound to one shin in the two-sensor monitor, and what the screen shows of it."""

    side: str
    source: Source
    pipeline: Pipeline
    model: LiveModel
    recorder: RawCsvWriter | None = None
    ended: bool = False  # the source stopped (finished, or failed: ``error``)
    error: str | None = None
    last_rx_wall: float | None = None
    latest: tuple[float, float] | None = None  # (t_s, tibia angle) of the last reading
    shown_t_s: float | None = None
    shown_angle_deg: float | None = None


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
    #sides.wide { width: 48; }
    #trace { border: round $primary; border-title-color: $text-muted; }
    #protocol { height: 2; padding: 0 1; background: $boost; display: none; }
    #protocol.on { display: block; }
    #message { height: 1; padding: 0 1; color: $warning; }
    #sensors.both { text-wrap: nowrap; text-overflow: ellipsis; }
    .leg { width: 1fr; margin: 0 1 0 0; }
    .leg-label { height: 1; padding: 0 0 0 1; background: $boost; }
    .leg-alert { height: 1; padding: 0 0 0 1; color: $text-muted; }
    .leg-alert.on { background: $error; color: $text; text-style: bold; }
    .leg-alert.warn { background: $warning; color: black; text-style: bold; }
    .leg-angle { color: $accent; text-style: bold; min-height: 5; }
    .leg-angle.reached { color: $success; }
    .leg-angle.lost { color: $text-disabled; }
    #traces { height: 1fr; }
    .leg-trace { width: 1fr; border: round $primary; border-title-color: $text-muted; }
    """
    ENABLE_COMMAND_PALETTE = False  # every action has its key in the footer
    BINDINGS = [
        Binding("l", "side('left')", "Leg", key_display="l/r",
                tooltip="the sensor is on the left leg (r: the right)"),
        Binding("r", "side('right')", "Right leg", show=False,
                tooltip="the sensor is on the right leg"),
        Binding("t", "trial", "Trial", tooltip="start/stop a trial by hand (default: every "
                "drive is a trial)"),
        Binding("c", "calibrate", "Calib", tooltip="calibration wizard: strap the sensor on, "
                "stand still, then drive the knee forward three times"),
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
                 clock: Callable[[], float] = time.monotonic,
                 right_source: Source | None = None, right_pipeline: Pipeline | None = None,
                 right_recorder: RawCsvWriter | None = None) -> None:
        """``right_source`` (with its ``right_pipeline`` and ``right_recorder``): a second
        sensor on the right shin; ``source`` is then the left one and both legs show live."""
        super().__init__()
        self.source = source
        self.pipeline = pipeline
        self.legs: dict[str, Leg] = {}
        if right_source is not None:
            pipeline.set_side("left")
            right_pipeline = right_pipeline or Pipeline(right_source.rate_hz, side="right")
            right_pipeline.set_side("right")
            self.legs = {
                "left": Leg("left", source, pipeline, LiveModel(source.rate_hz, TRACE_S),
                            recorder),
                "right": Leg("right", right_source, right_pipeline,
                             LiveModel(right_source.rate_hz, TRACE_S), right_recorder)}
        self.athlete = athlete
        self.session = self._new_session()
        self.recorder = None if self.legs else recorder  # two sensors: a raw CSV per leg
        self.refresh_hz = refresh_hz
        self.target_option_deg = target_deg
        self.store = store
        self.home = getattr(store, "home", None)  # data directory (None: $DORSIMETER_HOME/default)
        self.record_session = record_session
        self.recording = dict(recording or {})  # sensor_kind, raw_path, notes for the store
        # the clip's centre below the tibial tuberosity (sensor screen, --placement-cm)
        self.placement_cm: float | None = self.recording.get("placement_cm")
        self.mdc_deg = mdc_deg
        self.clock = clock
        self.model = (self.legs["left"].model if self.legs
                      else LiveModel(source.rate_hz, TRACE_S))
        self.protocol = None  # a running protocol (dorsimeter.exercises), when one is chosen
        # sessions finished while the monitor ran (athlete or sensor change): (stored id, the
        # session's results, the athlete's name), reported on quit beside the last one
        self.finished: list[tuple] = []
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
        # two sensors connect one after the other: two BLE scans or connects at once on one
        # adapter can miss the second sensor; each leg holds this until its first batch
        self._connecting = asyncio.Lock()

    @property
    def protocol(self):
        """The guided exercise running (a ``ProtocolRunner``), or None."""
        return self._protocol

    @protocol.setter
    def protocol(self, runner) -> None:
        """Starting a protocol makes its reps the session's (its exercise, sets and reps);
        stopping it goes back to wall tests."""
        self._protocol = runner
        self._protocol_counted = 0
        self._protocol_pending: list = []
        session = getattr(self, "session", None)
        if session is None:
            return
        p = getattr(runner, "protocol", None)
        session.set_exercise(None if p is None else p.name, guided=p is not None)

    _protocol = None

    @property
    def bilateral(self) -> bool:
        """Two sensors, one per shin, both live."""
        return bool(self.legs)

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        if self.bilateral:
            yield from self._compose_both()
            return
        yield Static(id="status")
        yield Static(id="sensors")
        yield Banner(id="banner")
        with Horizontal(id="main"):
            with Vertical(id="angle-box"):
                yield Static("tibia angle, knee forward +", id="angle-label")
                yield BigAngle("--.-", id="angle")
                yield Gauge(id="gauge")
            yield Static(id="sides", classes="wide")  # every heading in full (44 columns)
        yield Trace(TRACE_S, id="trace")
        yield Static(id="protocol")
        yield Static(id="message")
        yield Footer(compact=True)

    def _compose_both(self) -> ComposeResult:
        """Two sensors: a compact angle panel per leg (label with calibration, alert line, big
        angle, gauge) beside the per-side table, and a trace per leg below."""
        yield Static(id="status")
        yield Static(id="sensors", classes="both")  # a line per sensor, never wrapped
        with Horizontal(id="main"):
            for side in SIDES:
                with Vertical(id=f"leg-{side}", classes="leg"):
                    yield Static(id=f"label-{side}", classes="leg-label")
                    yield Static(id=f"alert-{side}", classes="leg-alert")
                    yield BigAngle("--.-", id=f"angle-{side}", classes="leg-angle")
                    yield Gauge(id=f"gauge-{side}")
            yield Static(id="sides")
        with Horizontal(id="traces"):
            for side in SIDES:
                yield Trace(TRACE_S, id=f"trace-{side}", classes="leg-trace")
        yield Static(id="protocol")
        yield Static(id="message")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # terminal closed (SIGHUP), asked to stop (SIGTERM) or interrupted (SIGINT, 130 as
        # `record`): quit as `q` does, so the caller closes the raw CSV and ends the session
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, functools.partial(self._stop_on_signal, sig))
        if self.bilateral:
            for side in SIDES:
                self.query_one(f"#trace-{side}").border_title = (
                    f"{side.upper()} · last {TRACE_S:.0f} s")
        else:
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
        if self.bilateral:
            for leg in self.legs.values():
                self._start_leg(leg)
            return
        self.run_worker(self._consume(self.source, self.pipeline), exclusive=True,
                        group="source", name="source")

    def _start_leg(self, leg: Leg) -> None:
        leg.ended, leg.error = False, None
        self.run_worker(self._consume_leg(leg), exclusive=True, group=f"source-{leg.side}",
                        name=f"source-{leg.side}")

    async def switch_source(self, source: Source, pipeline: Pipeline | None = None,
                            sensor_cal: SensorCalibration | None = None) -> None:
        """Stop the current sensor and stream from ``source`` (a new pipeline, with the
        sensor's box calibration ``sensor_cal`` when it has one, unless ``pipeline`` is given).

        With two sensors this replaces the chosen leg's sensor; the session goes on."""
        if self.bilateral:
            side = self.pipeline.side
            self.workers.cancel_group(self, f"source-{side}")
            await self.legs[side].source.close()
            leg = Leg(side, source, pipeline or Pipeline(source.rate_hz, side=side,
                                                         sensor_cal=sensor_cal),
                      LiveModel(source.rate_hz, TRACE_S), self.legs[side].recorder)
            leg.pipeline.set_side(side)
            self.legs[side] = leg
            self.source, self.pipeline, self.model = leg.source, leg.pipeline, leg.model
            self._start_leg(leg)
            return
        self.workers.cancel_group(self, "source")
        if self.store is not None and self.record_session:  # a new sensor: a new session
            self.finished.append((self.store.finish_recording(self.session), self.session,
                                  getattr(self.athlete, "name", None)))
        self.source = source
        self.pipeline = pipeline or Pipeline(source.rate_hz, side=self.pipeline.side,
                                             sensor_cal=sensor_cal)
        self.model = LiveModel(source.rate_hz, TRACE_S)
        self._next_session()
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

    async def _consume_leg(self, leg: Leg) -> None:
        """One leg's sensor; when it fails or ends, the other leg streams on."""
        other = "right" if leg.side == "left" else "left"
        await self._connecting.acquire()
        holding = True
        try:
            async for batch in leg.source:
                if holding:  # connected and streaming: the other sensor may connect now
                    self._connecting.release()
                    holding = False
                self.ingest_leg(leg, batch)
        except Exception as e:  # this sensor is gone for good: say so, keep the other
            leg.error = str(e)
            self.error = f"{leg.side} sensor: {e}"
            self.message = f"{leg.side} sensor stopped: {e} — the {other} leg goes on"
        finally:
            if holding:
                self._connecting.release()
            if self.legs.get(leg.side) is leg:
                leg.ended = True
                self.source_ended = all(lg.ended for lg in self.legs.values())
            await leg.source.close()

    def ingest(self, batch, source: Source | None = None, pipeline: Pipeline | None = None
               ) -> None:
        """One batch through recorder, pipeline, session, model (and protocol, when running)."""
        pipeline = pipeline or self.pipeline
        if self.recorder is not None:
            self._write_raw(batch, batch.side or pipeline.side)
        self._last_rx_wall = self.clock()
        readings = self._process(batch, pipeline, self.model)
        if len(readings):
            self._latest = (float(readings.t_s[-1]), float(readings.tibia_angle_deg[-1]))

    def ingest_leg(self, leg: Leg, batch) -> None:
        """One batch of the sensor on ``leg``: it stays bound to its shin whatever it says."""
        batch.side = leg.side
        if leg.recorder is not None:
            self._write_raw(batch, leg.side, leg)
        leg.last_rx_wall = self._last_rx_wall = self.clock()
        readings = self._process(batch, leg.pipeline, leg.model)
        if len(readings):
            leg.latest = (float(readings.t_s[-1]), float(readings.tibia_angle_deg[-1]))

    def _process(self, batch, pipeline: Pipeline, model: LiveModel):
        """Pipeline, session, model, store and protocol for one batch; returns the readings."""
        readings, events = pipeline.push(batch)
        self.samples += len(batch)
        self.readings_count += len(readings)
        self.batches += 1
        if len(batch):
            self.last_t_s = float(batch.t_s[-1])
        model.note_batch(batch, batch.side or pipeline.side)
        for e in events:
            if e.kind == "calibrated":
                self.message = "Calibrated " + e.message
            elif e.kind == "calibration_failed":
                self.message = "Calibration refused: " + e.message
            elif e.kind == "calibration_restarted":  # a link gap in the stance or drives
                self.message = e.message
            elif e.kind == "clip_slip":  # the strap moved: every later angle carries it
                self.message = f"⚠ {e.side} {e.message}"
        self.session.add(readings, events)  # numbers the reps it counts before they are stored
        model.add(readings, events)
        # a guided exercise follows one leg: with two sensors, the chosen one (l/r)
        if self.protocol is not None and hasattr(self.protocol, "add") and (
                not self.bilateral or model is self.model):
            self.protocol.add(readings, events)
            events = [*events, *self._protocol_reps()]
        if self.store is not None and self.record_session:
            self.store.record(readings, events)
            err = getattr(self.store, "error", None)
            if err and err != self._store_error:  # disk full, read-only: say it once, go on
                self._store_error = err
                self.error = self.message = f"history not saved: {err}"
        return readings

    def _protocol_reps(self) -> list:
        """The guided reps the runner counted since last time go to the session (numbered
        there, with the runner's set); each becomes a ``rep`` event for the store when its rep
        has ended (its end-range angle known)."""
        from dorsimeter.detect.reps import RepRecord
        from dorsimeter.pipeline.pipeline import Event

        counted = self.protocol.counted
        for c in counted[self._protocol_counted:]:
            rec = c.record
            if rec is None:  # a timer-only hold: the hold is the rep
                hold_s = self.protocol.protocol.hold_s
                rec = RepRecord(-1, c.side, c.t_s - hold_s, c.t_s, hold_s=hold_s,
                                hold_reached_s=c.t_s, holds=[(c.t_s - hold_s, c.t_s, 0.0)])
                rec.end_range_deg = rec.peak_deg = 0.0
            self.session.add_counted(c.side, c.set_no, rec)
            self._protocol_pending.append(rec)
        self._protocol_counted = len(counted)
        ended = [r for r in self._protocol_pending if r.t_end_s is not None]
        self._protocol_pending = [r for r in self._protocol_pending if r.t_end_s is None]
        return [Event("rep", r.t_end_s, r.side, f"{r.exercise} rep {r.rep_no}", rep=r)
                for r in ended]

    _store_error: str | None = None

    def _write_raw(self, batch, side: str, leg: Leg | None = None) -> None:
        """Append to the raw CSV. A full disk or a read-only directory stops the recording with
        a message, never the live view; what was written stays readable."""
        owner = self if leg is None else leg
        try:
            owner.recorder.write(batch, side)
        except OSError as e:
            rec, owner.recorder = owner.recorder, None
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

    def change_athlete(self, athlete, then: Callable[[], None] | None = None) -> None:
        """Choose ``athlete``; when that ends a session with something in it, ask first
        (y/n). ``then`` runs once the athlete is set."""
        def done(yes: bool | None = True) -> None:
            if yes:
                self.set_athlete(athlete)
                if then is not None:
                    then()

        current = getattr(self.athlete, "name", None)
        if athlete is self.athlete or getattr(athlete, "name", None) == current:
            done()
            return
        if not self.samples:
            done()
            return
        if self.athlete is None:  # the session so far is this athlete's: name it, go on
            self.athlete = athlete
            self.session.athlete = athlete_geometry(athlete)
            if self.store is not None and self.record_session:
                client = self.store

                def name_it(store, name=athlete.name) -> None:
                    if client.session_id is not None:
                        store.set_session_athlete(client.session_id, name)

                client.run(name_it)
            self.message = f"athlete: {athlete.name} (this session is theirs)"
            if then is not None:
                then()
            return
        from dorsimeter.tui.screens.connect import ConfirmScreen

        n = sum(len(v.counted) for v in self.session.sides.values())
        who = current or "no athlete"
        self.push_screen(ConfirmScreen(
            f"End this session ({who}, {n} rep{'s' if n != 1 else ''} counted) and store it, "
            f"then start a new one for {athlete.name}?"), done)

    def set_athlete(self, athlete) -> None:
        """A new athlete starts a new session (stored as its own when there is a store); its
        reps are numbered from 1 again."""
        if athlete is self.athlete:
            return
        old, old_name = self.session, getattr(self.athlete, "name", None)
        self.athlete = athlete
        if self.store is not None and self.record_session:
            self.finished.append((self.store.finish_recording(old), old, old_name))
            self._start_recording()  # queued after the finish, on the same store thread
        self._next_session()
        self.message = f"athlete: {athlete.name} (a new session)"

    def _next_session(self) -> None:
        """A fresh session: numbering, trials and rep markers start again; a guided exercise
        under way goes on in it."""
        self.session = self._new_session()
        for model in ([leg.model for leg in self.legs.values()] if self.legs else [self.model]):
            model.reps.clear()
        self.protocol = self.protocol

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
        if self.bilateral:  # one session, both legs; the store keeps one raw path (as record)
            name = " + ".join(leg.source.name for leg in self.legs.values())
            cals = {s: c for leg in self.legs.values()
                    for s, c in leg.pipeline.calibrations.items()}
            legs = {side: (leg.source.name, None if leg.recorder is None
                           else str(leg.recorder.path)) for side, leg in self.legs.items()}
            self.store.start_recording("monitor", getattr(self.athlete, "name", None), name,
                                       info.get("sensor_kind"), cals, None, info.get("notes"),
                                       legs=legs)
            return
        self.store.start_recording("monitor", getattr(self.athlete, "name", None),
                                   self.source.name, info.get("sensor_kind"),
                                   dict(self.pipeline.calibrations), info.get("raw_path"),
                                   info.get("notes"))
        self.store_placement()

    def store_placement(self) -> None:
        """The sensor's placement with the session being recorded (queued after its start)."""
        if self.store is None or not self.record_session or self.placement_cm is None:
            return
        client, cm = self.store, self.placement_cm
        client.run(lambda s: client.session_id is not None
                   and s.set_placement(client.session_id, cm))

    @property
    def calibrations(self) -> dict:
        """The mounting calibrations in use, per side (both sensors' with two)."""
        if self.bilateral:
            return {s: c for leg in self.legs.values()
                    for s, c in leg.pipeline.calibrations.items()}
        return dict(self.pipeline.calibrations)

    #: called (from a timer thread, with the exit code) when a stop by signal has not ended
    #: ``run`` within ``STUCK_S``: the caller stores what it must and exits the process
    on_stuck: Callable[[int], None] | None = None
    STUCK_S = 10.0

    def _stop_on_signal(self, sig: int) -> None:
        """Quit as `q` does, exit code 128 + the signal. After a hang-up the terminal is gone:
        textual's last writes go to /dev/null, since a write to the dead terminal can kill
        textual's writer thread and leave its shutdown waiting on it for good (seen about one
        hang-up in ten). ``on_stuck`` is the backstop if the shutdown still does not finish."""
        code = 128 + int(sig)
        if sig == signal.SIGHUP:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.__stdout__.fileno())
                os.close(devnull)
        if self.on_stuck is not None:
            timer = threading.Timer(self.STUCK_S, self.on_stuck, args=(code,))
            timer.daemon = True
            timer.start()
        self.exit(return_code=code)

    def finish_session(self):
        """Store the session's trials and mark it ended; a Future of the session id (or None)."""
        if self.store is None or not self.record_session:
            return None
        return self.store.finish_recording(self.session)

    def leg_sensor_row(self, leg: Leg) -> dict:
        """One leg's sensor line: its source's ``stats()`` where it has them, else ours."""
        s = leg.source.stats() if hasattr(leg.source, "stats") else {}
        s = (s.get("sensors") or [s])[0]
        link = leg.model.links.get(leg.side)
        state = s.get("state")
        if leg.error is not None:
            state = "lost"
        elif state is None:
            state = self._link_state(leg.ended, leg.last_rx_wall)
        rate = s.get("rate_hz") if s.get("rate_hz") is not None else (
            link.rate_hz if link else None)
        return {"name": s.get("name") or leg.source.name, "side": leg.side, "state": state,
                "rate_hz": 0.0 if leg.ended else rate,
                "loss": s["loss"] if s.get("loss") is not None else (link.loss if link else None),
                "battery": s.get("battery"),
                "calibration": ("calibrated" if leg.side in leg.pipeline.calibrations
                                else "calibrating"),
                "box_cal": box_cal_id(leg.pipeline),
                "reconnects": s.get("reconnects"), "gaps": s.get("gaps")}

    def _link_state(self, ended: bool, last_rx_wall: float | None) -> str:
        """A source's state from what we saw of it, when it does not say."""
        if ended:
            return "ended"
        if last_rx_wall is None:
            return "connecting"
        return "stalled" if self.clock() - last_rx_wall > STALL_S else "streaming"

    def sensor_rows(self) -> list[dict]:
        """Per-sensor link figures: the source's own ``stats()`` where it has them, else ours."""
        if self.bilateral:
            return [self.leg_sensor_row(leg) for leg in self.legs.values()]
        stats = self.source.stats() if hasattr(self.source, "stats") else {}
        entries = stats.get("sensors") or [stats]
        rows = []
        for s in entries:
            side = s.get("side") or self.pipeline.side
            link = self.model.links.get(side)
            state = s.get("state") or self._link_state(self.source_ended, self._last_rx_wall)
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
                "box_cal": box_cal_id(self.pipeline),
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
        if self.bilateral:
            self._draw_both(q)
            return
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
        trial = self._trial_words(side, side in self.pipeline.calibrations, self.samples > 0,
                                  self.source_ended and self.error is not None)
        heel = f" · heel: {self.model.heel_source}" if self.model.heel_source else ""
        q("#status", Static).update(
            f"[b]{markup_safe(who)}[/b] · [b]{side.upper()} leg[/b] · {trial}{heel}")
        q("#sensors", Static).update(render_sensors(self.sensor_rows()))
        q("#sides", Static).update(
            render_sides(side_rows(self.session), side, self.mdc_deg, self.session,
                         width=SIDES_FULL_WIDTH))
        q("#trace", Trace).set(self.model.trace(), self.rep_markers(self.model), target_deg)
        banner = q("#banner", Banner)
        alerts = self.model.alerts
        if alerts:
            heel_alert = alerts.get("heel_lift")
            a = heel_alert or next(iter(alerts.values()))
            banner.update(f"⚠  {markup_safe(a.text)}  ⚠")
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
        q("#message", Static).update(markup_safe(self.message))  # names, errors: outside text

    def _trial_words(self, side: str, calibrated: bool, has_data: bool, stopped: bool) -> str:
        """What counts now, for the top line: no trial while the sensor is missing or the leg
        calibrates (``trial_phrase``), else what the session counts."""
        state = trial_phrase(True, calibrated, has_data, stopped)
        if state != "trial running":
            return state
        s = self.session
        if s.guided:
            return "guided exercise"
        if s.auto_trials:
            return "trial running: every held drive counts"
        n = s.open_trial(side)
        return f"trial {n} running" if n is not None else "trial stopped (t starts one)"

    def rep_markers(self, model: LiveModel) -> list:
        """The trace's rep markers numbered as the session numbers its reps (per leg and
        exercise, from 1); a movement the session did not count has no marker once ended."""
        out = []
        last = model.reps[-1] if model.reps else None
        for m in model.reps:
            current = m is last and model.in_rep
            n = self.session.rep_label(m.side, m.index, current, m.t_s)
            if n is None and not current:
                continue
            m.rep = n
            out.append(m)
        return out

    def _draw_both(self, q) -> None:
        """Both legs: per leg its angle, gauge, calibration, alert and trace; then the table."""
        target_deg, target_label = self.target
        chosen = self.pipeline.side
        rows = {r["side"]: r for r in side_rows(self.session)}
        for side, leg in self.legs.items():
            live = leg.latest is not None and leg.error is None
            if live:
                leg.shown_t_s, leg.shown_angle_deg = leg.latest
            angle = q(f"#angle-{side}", BigAngle)
            angle.update(f"{leg.shown_angle_deg:.1f}" if live else "--.-")
            reached = live and leg.shown_angle_deg >= target_deg
            angle.set_class(reached, "reached")
            angle.set_class(leg.error is not None, "lost")
            q(f"#gauge-{side}", Gauge).set(leg.shown_angle_deg if live else None, target_deg,
                                           target_label)
            step, frac = calibration_progress(leg.pipeline.status)
            cal = {"done": "✓ calibrated", "still": f"still {100 * frac:.0f} %",
                   "drives": f"drives {100 * frac:.0f} %"}.get(step, leg.pipeline.status)
            mark = "▶ " if side == chosen else ""
            q(f"#label-{side}", Static).update(
                f"[b]{mark}{side.upper()}[/b] "
                + (f"[green]{cal}[/]" if step == "done" else f"[yellow]{markup_safe(cal)}[/]"))
            text, kind = render_leg_alert(leg.model.alerts, rows.get(side), leg.error)
            alert = q(f"#alert-{side}", Static)
            alert.update(text)
            alert.set_class(kind == "on", "on")
            alert.set_class(kind == "warn", "warn")
            q(f"#trace-{side}", Trace).set(leg.model.trace(), self.rep_markers(leg.model),
                                           target_deg)
            if leg.model.take_bell():
                self.bells += 1
                self.bell()
        left = self.legs["left"]
        self.shown_t_s, self.shown_angle_deg = left.shown_t_s, left.shown_angle_deg
        who = getattr(self.athlete, "name", None) or "no athlete"
        leg = self.legs[chosen]
        trial = self._trial_words(chosen, chosen in leg.pipeline.calibrations,
                                  leg.latest is not None, leg.error is not None)
        sources = dict.fromkeys(leg.model.heel_source for leg in self.legs.values()
                                if leg.model.heel_source)
        heel = f" · heel: {', '.join(sources)}" if sources else ""
        q("#status", Static).update(
            f"[b]{markup_safe(who)}[/b] · [b]both legs[/b] (keys act on {chosen.upper()}) · "
            f"{trial}{heel}")
        q("#sensors", Static).update(render_sensors(self.sensor_rows()))
        q("#sides", Static).update(
            render_sides(side_rows(self.session), chosen, self.mdc_deg, self.session, width=32))
        proto = q("#protocol", Static)
        state = getattr(self.protocol, "state", self.protocol)
        proto.update(render_protocol(state) if self.protocol is not None else "")
        proto.set_class(self.protocol is not None, "on")
        q("#message", Static).update(markup_safe(self.message))  # names, errors: outside text

    # -- actions --------------------------------------------------------------------------------

    MONITOR_ACTIONS = {"side", "trial", "calibrate", "athlete", "connect", "protocol", "history"}

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The monitor's keys work (and show in the footer) on the monitor only."""
        if action in self.MONITOR_ACTIONS and len(self.screen_stack) > 1:
            return False
        return True

    def action_side(self, side: str) -> None:
        if self.bilateral:  # each sensor stays on its shin: l/r choose the leg c and t act on
            leg = self.legs[side]
            self.source, self.pipeline, self.model = leg.source, leg.pipeline, leg.model
            self.message = (f"{side} leg chosen (c calibrates it, t starts its trial): "
                            + leg.pipeline.status)
            return
        if self.source.knows_side:
            self.message = "the recording says which side; l/r are for live sensors"
            return
        self.pipeline.set_side(side)
        self.source.set_side(side)
        self.model.clear_trace()
        self.message = f"{side} leg: " + self.pipeline.status

    def action_trial(self) -> None:
        """``t``: open a manual trial on the leg the keys act on (the reps ending inside it are
        its reps), or close the one open there."""
        side = self.pipeline.side
        if self.session.open_trial(side) is not None:
            n = self.session.stop_trial(side)
            k = sum(r.set_no == n for r in self.session.sides[side].trials)
            self.message = (f"{side} trial {n} stopped: {k} rep{'s' if k != 1 else ''} in it "
                            "(t starts the next)")
        else:
            n = self.session.start_trial(side)
            self.message = f"{side} trial {n} started: the reps now are its reps (t stops it)"

    def action_recalibrate(self) -> None:
        self.pipeline.recalibrate()
        self.message = "recalibrating: " + self.pipeline.status

    def _open(self, screen: str) -> None:
        """Push one of ``tui.screens`` (imported on first use: it keeps start-up short)."""
        from dorsimeter.tui import screens

        self.push_screen(getattr(screens, screen)())

    def action_calibrate(self) -> None:
        self._open("CalibrateScreen")

    def action_help(self) -> None:
        self._open("HelpScreen")

    def action_athlete(self) -> None:
        self._open("AthleteScreen")

    def action_connect(self) -> None:
        self._open("ConnectScreen")

    def action_protocol(self) -> None:
        self._open("ProtocolScreen")

    def action_history(self) -> None:
        self._open("HistoryScreen")
