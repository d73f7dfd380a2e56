"""The live monitor: tibia angle in large digits, gauge and target, trace, alerts, per-side table.

The monitor is one live session (``dorsimeter.session.live``) of one or two legs. Each leg's
stream runs in a worker: source, raw CSV, pipeline (pure and fast), session results and store
all happen there, and each batch through it is posted to the app as one message,
:class:`LegUpdate`, which the app turns into what the leg shows (trace, alerts, link figures).
The screen redraws on a timer, never blocking the event loop. Slow I/O (the history database,
export, BLE scan) runs in the screens' own workers.

With a second sensor (``right_source``) the monitor shows both legs at once: each sensor is a
leg bound to its shin with its own worker, pipeline (fusion, calibration, detectors), model
(trace, alerts, link figures) and raw CSV, all feeding one session (per-side trials and the live
asymmetry). ``l``/``r`` then choose the leg that ``c`` (calibration wizard) and ``t`` (manual
trial) act on; one sensor failing leaves the other streaming.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Footer, Static

from dorsimeter.core.sensor_cal import SensorCalibration
from dorsimeter.exercises.runner import ProtocolRunner
from dorsimeter.io.rawcsv import RawCsvWriter
from dorsimeter.pipeline import Pipeline
from dorsimeter.session.asymmetry import MDC_DEG
from dorsimeter.session.live import Leg, LiveSession, SignalStop, Step, exit_code
from dorsimeter.session.results import SessionResults, SessionSettings
from dorsimeter.sources import LinkStats, Source
from dorsimeter.text import markup_safe
from dorsimeter.tui.model import (
    LiveModel,
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


def link_fields(link: LinkStats) -> dict:
    """A source's link figures as the sensor line reads them (absent: the source can't tell)."""
    return {"state": link.state, "rate_hz": link.rate_hz, "loss": link.loss,
            "battery": None if link.battery_pct is None else link.battery_pct / 100.0,
            "reconnects": link.reconnects or None, "gaps": link.gaps or None}


def box_cal_id(pipeline: Pipeline) -> str | None:
    """The id of the box calibration (``dorsimeter sensor-cal``) the pipeline applies, if any."""
    cal = pipeline.sensor_cal
    return None if cal is None else cal.sensor_id


@dataclass(eq=False, kw_only=True)
class ShownLeg(Leg):
    """A leg of the live session and what the monitor shows of it."""

    model: LiveModel  # trace, alerts, link figures
    last_rx_wall: float | None = None  # wall-clock time of its last batch
    shown_t_s: float | None = None  # the reading on screen
    shown_angle_deg: float | None = None


class LegUpdate(Message):
    """What a leg's worker did: a batch went through the live session (``step``), or the leg's
    stream ended (``step`` None; ``Leg.error`` says why when it failed)."""

    def __init__(self, leg: ShownLeg, step: Step | None) -> None:
        super().__init__()
        self.leg, self.step = leg, step


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
        Binding("T", "auto_trials", "Auto trials", show=False, tooltip="back to automatic "
                "trials after t: every held drive is a trial of its own again"),
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
        self.athlete = athlete
        self.mdc_deg = mdc_deg  # the session's asymmetry flag (its settings)
        self.store = store
        self.home = None if store is None else store.home  # None: $DORSIMETER_HOME/default
        self.record_session = record_session
        first = self._leg(source, pipeline, recorder, bound=right_source is not None)
        legs: list[Leg] = [first]
        if right_source is not None:  # a sensor per shin, each bound to its side
            pipeline.set_side("left")
            right_pipeline = right_pipeline or Pipeline(right_source.rate_hz, side="right")
            right_pipeline.set_side("right")
            legs.append(self._leg(right_source, right_pipeline, right_recorder, bound=True))
        self.chosen: ShownLeg = first  # the leg the keys act on (l/r)
        self.live = LiveSession(legs, self._new_session(), keep_going=True)
        self.live.guided = self.chosen
        self.refresh_hz = refresh_hz
        self.target_option_deg = target_deg
        self.recording = dict(recording or {})  # sensor_kind, raw_path, notes for the store
        # the clip's centre below the tibial tuberosity (sensor screen, --placement-cm)
        self.placement_cm: float | None = self.recording.get("placement_cm")
        self.clock = clock
        # sessions finished while the monitor ran (athlete or sensor change): (stored id, the
        # session's results, the athlete's name), reported on quit beside the last one
        self.finished: list[tuple] = []
        self.last_t_s: float | None = None
        self.samples = 0
        self.readings_count = 0
        self.redraws = 0
        self.batches = 0
        self.bells = 0
        self.message = ""
        self.error: str | None = None

    def _leg(self, source: Source, pipeline: Pipeline, raw: RawCsvWriter | None,
             bound: bool) -> ShownLeg:
        """A leg of the session: its batches go to the history (the store's thread) too."""
        sink = self.store.record if self.store is not None and self.record_session else None
        return ShownLeg(source, pipeline, raw=raw, sink=sink, bound=bound,
                        model=LiveModel(source.rate_hz, TRACE_S))

    # -- the legs ---------------------------------------------------------------------------

    @property
    def legs(self) -> dict[str, ShownLeg]:
        """The legs by side: one sensor, or one per shin."""
        return {leg.side: leg for leg in self._legs}

    @property
    def _legs(self) -> list[ShownLeg]:
        return [leg for leg in self.live.legs if isinstance(leg, ShownLeg)]

    @property
    def bilateral(self) -> bool:
        """Two sensors, one per shin, both live."""
        return len(self.live.legs) == 2

    @property
    def source(self) -> Source:
        """The chosen leg's sensor."""
        return self.chosen.source

    @property
    def pipeline(self) -> Pipeline:
        return self.chosen.pipeline

    @property
    def model(self) -> LiveModel:
        return self.chosen.model

    @property
    def session(self) -> SessionResults:
        """The session both legs feed (a new one per athlete, or per sensor with one)."""
        return self.live.results

    @property
    def source_ended(self) -> bool:
        """Every leg's stream has stopped."""
        return all(leg.ended for leg in self.live.legs)

    @property
    def shown_t_s(self) -> float | None:
        """The first leg's reading on screen (the only one, or the left)."""
        return self._legs[0].shown_t_s

    @property
    def shown_angle_deg(self) -> float | None:
        return self._legs[0].shown_angle_deg

    @property
    def protocol(self) -> ProtocolRunner | None:
        """The guided exercise running, or None."""
        return self.live.protocol

    @protocol.setter
    def protocol(self, runner: ProtocolRunner | None) -> None:
        """Starting a protocol makes its reps the session's (its exercise, sets and reps);
        stopping it goes back to wall tests. It follows the chosen leg."""
        self.live.guide(runner)

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
        SignalStop(lambda sig: self.exit(return_code=exit_code(sig)), self.on_stuck,
                   self.STUCK_S).install()
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

    # -- the legs' workers ----------------------------------------------------------------

    def start_source(self) -> None:
        for leg in self._legs:
            self._start_leg(leg)

    def _start_leg(self, leg: ShownLeg) -> None:
        i = self.live.legs.index(leg)
        self.run_worker(self._stream(leg), exclusive=True, group=f"source-{i}",
                        name=f"source-{i}")

    async def _stream(self, leg: ShownLeg) -> None:
        """The leg's stream through the live session, each batch posted to the app."""
        def posted(step: Step) -> None:
            self.post_message(LegUpdate(leg, step))

        await self.live.run_leg(leg, posted)
        self.post_message(LegUpdate(leg, None))

    async def switch_source(self, source: Source, pipeline: Pipeline | None = None,
                            sensor_cal: SensorCalibration | None = None) -> None:
        """Stop the chosen leg's sensor and stream from ``source`` (a new pipeline, with the
        sensor's box calibration ``sensor_cal`` when it has one, unless ``pipeline`` is given).

        With two sensors this replaces the chosen leg's sensor and the session goes on; with
        one, a new sensor starts a new session."""
        old = self.chosen
        i = self.live.legs.index(old)
        self.workers.cancel_group(self, f"source-{i}")
        await old.source.close()
        side = old.side
        if not self.bilateral and self.store is not None and self.record_session:
            self.finished.append((self.store.finish_recording(self.session), self.session,
                                  self.athlete_name))
        pipeline = pipeline or Pipeline(source.rate_hz, side=side, sensor_cal=sensor_cal)
        if old.bound:
            pipeline.set_side(side)
        leg = self._leg(source, pipeline, old.raw, bound=old.bound)
        self.live.legs[i] = self.chosen = self.live.guided = leg
        if not self.bilateral:
            self._next_session()
            if self.store is not None and self.record_session:
                self._start_recording()
        self._start_leg(leg)

    def on_leg_update(self, message: LegUpdate) -> None:
        """A leg's batch or end, shown; a replaced sensor's last words are not."""
        leg = message.leg
        if leg not in self.live.legs:
            return
        if message.step is None:
            self._ended(leg)
        else:
            self._show(message.step)

    def _show(self, step: Step) -> None:
        """One batch through the leg: what it shows (trace, alerts, link figures) and says."""
        leg, batch, readings = step.leg, step.batch, step.readings
        assert isinstance(leg, ShownLeg)
        leg.last_rx_wall = self.clock()
        self.samples += len(batch)
        self.readings_count += len(readings)
        self.batches += 1
        self.last_t_s = float(batch.t_s[-1])
        leg.model.note_batch(batch, batch.side or leg.side)
        if leg.samples == len(batch) and leg.source.rate_note:  # its first: the rate it streams
            self.message = f"{leg.side}: {leg.source.rate_note}"
        for e in step.events:
            if e.kind == "calibrated":
                self.message = "Calibrated " + e.message
            elif e.kind == "calibration_failed":
                self.message = "Calibration refused: " + e.message
            elif e.kind == "calibration_restarted":  # a link gap in the stance or drives
                self.message = e.message
            elif e.kind == "clip_slip":  # the strap moved: every later angle carries it
                self.message = f"⚠ {e.side} {e.message}"
        leg.model.add(readings, step.events)
        if step.raw_stopped is not None:  # disk full, read-only: the live view goes on
            self.error = self.message = step.raw_stopped
        if self.store is not None and self.record_session:
            err = self.store.error
            if err and err != self._store_error:  # disk full, read-only: say it once, go on
                self._store_error = err
                self.error = self.message = f"history not saved: {err}"

    _store_error: str | None = None

    def _ended(self, leg: ShownLeg) -> None:
        """The leg's stream stopped; when it failed, say so (the other leg goes on)."""
        if leg.error is None:
            return
        if self.bilateral:
            other = "right" if leg.side == "left" else "left"
            self.error = f"{leg.side} sensor: {leg.error}"
            self.message = f"{leg.side} sensor stopped: {leg.error} — the {other} leg goes on"
        else:
            self.error = leg.error
            self.message = f"sensor stopped: {leg.error}"

    # -- drawing --------------------------------------------------------------------------------

    @property
    def target(self) -> tuple[float, str]:
        return default_target(self.target_option_deg, wall_target_deg(self.athlete))

    def change_athlete(self, athlete, then: Callable[[], object] | None = None) -> None:
        """Choose ``athlete``; when that ends a session with something in it, ask first
        (y/n). ``then`` runs once the athlete is set."""
        def done(yes: bool | None = True) -> None:
            if yes:
                self.set_athlete(athlete)
                if then is not None:
                    then()

        current = self.athlete_name
        if athlete is self.athlete or athlete.name == current:
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
        old, old_name = self.session, self.athlete_name
        self.athlete = athlete
        if self.store is not None and self.record_session:
            self.finished.append((self.store.finish_recording(old), old, old_name))
            self._start_recording()  # queued after the finish, on the same store thread
        self._next_session()
        self.message = f"athlete: {athlete.name} (a new session)"

    def _next_session(self) -> None:
        """A fresh session: numbering, trials and rep markers start again; a guided exercise
        under way goes on in it."""
        self.live.new_results(self._new_session())
        for leg in self._legs:
            leg.model.reps.clear()

    def _new_session(self) -> SessionResults:
        """Session results for the athlete (their lengths give the wall verdicts)."""
        return SessionResults(rate_hz=self.source.rate_hz, athlete=athlete_geometry(self.athlete),
                              settings=SessionSettings(mdc_deg=self.mdc_deg))

    @property
    def athlete_name(self) -> str | None:
        """The athlete's name (None: no athlete chosen)."""
        return None if self.athlete is None else self.athlete.name

    def _start_recording(self) -> None:
        store = self.store
        assert store is not None  # every caller checks for a store first
        info = self.recording
        if self.bilateral:  # one session, both legs; the store keeps one raw path (as record)
            name = " + ".join(leg.source.name for leg in self.live.legs)
            legs = {leg.side: (leg.source.name, None if leg.raw is None else str(leg.raw.path))
                    for leg in self.live.legs}
            store.start_recording("monitor", self.athlete_name, name,
                                  info.get("sensor_kind"), self.calibrations, None,
                                  info.get("notes"), legs=legs)
            return
        store.start_recording("monitor", self.athlete_name,
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
        return self.live.calibrations

    #: called (from a timer thread, with the exit code) when a stop by signal has not ended
    #: ``run`` within ``STUCK_S``: the caller stores what it must and exits the process
    on_stuck: Callable[[int], None] | None = None
    STUCK_S = 10.0

    def finish_session(self):
        """Store the session's trials and mark it ended; a Future of the session id (or None)."""
        if self.store is None or not self.record_session:
            return None
        return self.store.finish_recording(self.session)

    def sensor_rows(self) -> list[dict]:
        """Per-sensor link figures, each leg's in turn: its source's own ``link`` where it has
        them, else ours."""
        return [row for leg in self._legs for row in self._leg_rows(leg)]

    def _leg_rows(self, leg: ShownLeg) -> list[dict]:
        rows = []
        for s in [link_fields(leg.source.link)]:
            side = leg.side if leg.bound else (s.get("side") or leg.side)
            link = leg.model.links.get(side)
            if leg.error is not None:
                state = "lost"
            else:
                state = s.get("state") or self._link_state(leg.ended, leg.last_rx_wall)
            if side in leg.pipeline.calibrations:
                cal = "calibrated"
            elif side != leg.side:
                cal = "not calibrated"
            else:  # the one-sensor line says where the calibration is; two have their labels
                cal = "calibrating" if self.bilateral else leg.pipeline.status

            def pick(key, ours, s=s):
                return s[key] if s.get(key) is not None else ours

            rows.append({
                "name": s.get("name") or leg.source.name, "side": side, "state": state,
                "rate_hz": 0.0 if leg.ended else pick("rate_hz", link.rate_hz if link else None),
                "loss": pick("loss", link.loss if link else None),
                "battery": s.get("battery"), "calibration": cal,
                "box_cal": box_cal_id(leg.pipeline),
                "reconnects": s.get("reconnects"), "gaps": s.get("gaps"),
            })
        return rows

    def _link_state(self, ended: bool, last_rx_wall: float | None) -> str:
        """A source's state from what we saw of it, when it does not say."""
        if ended:
            return "ended"
        if last_rx_wall is None:
            return "connecting"
        return "stalled" if self.clock() - last_rx_wall > STALL_S else "streaming"

    def refresh_view(self) -> None:
        """Redraw the monitor (its widgets live on the default screen, under any pushed one)."""
        if not self.screen_stack:
            return
        try:
            self._draw(self.screen_stack[0].query_one)
        except NoMatches:  # shutting down: the widgets are gone
            return
        self.redraws += 1


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


    def _draw(self, q) -> None:
        """Each leg's panel, then what the legs share: the top line, the sensor lines, the
        per-side table, the guided exercise and the message."""
        target = self.target
        rows = {r["side"]: r for r in side_rows(self.session)}
        for leg in self._legs:
            self._draw_leg(q, leg, target, rows.get(leg.side))
        chosen = self.chosen
        side = chosen.side
        who = self.athlete_name or "no athlete"
        trial = self._trial_words(side, side in chosen.pipeline.calibrations,
                                  chosen.samples > 0, chosen.error is not None)
        sources = dict.fromkeys(leg.model.heel_source for leg in self._legs
                                if leg.model.heel_source)
        heel = f" · heel: {', '.join(sources)}" if sources else ""
        legs = (f"both legs[/b] (keys act on {side.upper()})" if self.bilateral
                else f"{side.upper()} leg[/b]")
        q("#status", Static).update(f"[b]{markup_safe(who)}[/b] · [b]{legs} · {trial}{heel}")
        q("#sensors", Static).update(render_sensors(self.sensor_rows()))
        q("#sides", Static).update(
            render_sides(side_rows(self.session), side, self.session.asymmetry,
                         width=32 if self.bilateral else SIDES_FULL_WIDTH))
        proto = q("#protocol", Static)
        proto.update(render_protocol(None if self.protocol is None else self.protocol.state))
        proto.set_class(self.protocol is not None, "on")
        q("#message", Static).update(markup_safe(self.message))  # names, errors: outside text

    def _draw_leg(self, q, leg: ShownLeg, target: tuple[float, str], row: dict | None) -> None:
        """One leg: its angle, gauge and trace; with two, its label (calibration) and alert
        line, with one, the alert banner."""
        target_deg, target_label = target
        sfx = f"-{leg.side}" if self.bilateral else ""
        latest = leg.latest
        live = latest is not None and leg.error is None
        if latest is not None and live:
            leg.shown_t_s, leg.shown_angle_deg = latest
        shown = leg.shown_angle_deg  # not None when live: just taken from latest
        angle = q(f"#angle{sfx}", BigAngle)
        angle.update(f"{shown:.1f}" if live else "--.-")
        angle.set_class(live and shown is not None and shown >= target_deg, "reached")
        angle.set_class(leg.error is not None, "lost")
        q(f"#gauge{sfx}", Gauge).set(leg.shown_angle_deg if live else None, target_deg,
                                     target_label)
        q(f"#trace{sfx}", Trace).set(leg.model.trace(), self.rep_markers(leg.model), target_deg)
        if self.bilateral:
            step, frac = leg.pipeline.progress.phase, leg.pipeline.progress.fraction
            cal = {"calibrated": "✓ calibrated", "stance": f"still {100 * frac:.0f} %",
                   "drives": f"drives {100 * frac:.0f} %"}[step]
            mark = "▶ " if leg is self.chosen else ""
            q(f"#label{sfx}", Static).update(
                f"[b]{mark}{leg.side.upper()}[/b] "
                + (f"[green]{cal}[/]" if step == "calibrated"
                   else f"[yellow]{markup_safe(cal)}[/]"))
            text, kind = render_leg_alert(leg.model.alerts, row, leg.error)
            alert = q(f"#alert{sfx}", Static)
            alert.update(text)
            alert.set_class(kind == "on", "on")
            alert.set_class(kind == "warn", "warn")
        else:
            banner = q("#banner", Banner)
            alerts = leg.model.alerts
            if alerts:
                heel_alert = alerts.get("heel_lift")
                a = heel_alert or next(iter(alerts.values()))
                banner.update(f"⚠  {markup_safe(a.text)}  ⚠")
                banner.set_class(heel_alert is None, "warn")
                banner.add_class("on")
            else:
                banner.remove_class("on")
        if leg.model.take_bell():
            self.bells += 1
            self.bell()

    # -- actions --------------------------------------------------------------------------------

    MONITOR_ACTIONS = {"side", "trial", "calibrate", "athlete", "connect", "protocol", "history"}

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The monitor's keys work (and show in the footer) on the monitor only."""
        if action in self.MONITOR_ACTIONS and len(self.screen_stack) > 1:
            return False
        return True

    def action_side(self, side: str) -> None:
        if self.bilateral:  # each sensor stays on its shin: l/r choose the leg c and t act on
            leg = self.chosen = self.live.guided = self.legs[side]
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
                            "(t starts the next, T: automatic trials again)")
        else:
            n = self.session.start_trial(side)
            self.message = f"{side} trial {n} started: the reps now are its reps (t stops it)"

    def action_auto_trials(self) -> None:
        """``T``: back to automatic trials (every held drive its own), closing a manual one."""
        self.session.set_auto_trials(True)
        self.message = "automatic trials: every held drive is a trial"

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
