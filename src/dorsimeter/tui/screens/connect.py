"""Connect a sensor: the simulated rig, USB serial ports, and supported BLE sensors nearby."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from dorsimeter.text import markup_safe
from dorsimeter.tui.services import (
    FoundSensor,
    ble_sensors,
    box_calibration_for,
    load_allow_list,
    serial_ports,
)

if TYPE_CHECKING:
    from dorsimeter.tui.app import MonitorApp

SIMULATED = [FoundSensor("sim", "simulated rig", "the virtual shank, no hardware")]
NOT_IN_RANGE = "one of your sensors, not seen in this scan"


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; ``y`` answers yes, ``n`` or escape no."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    #confirm { width: 72; max-width: 100%; height: auto; border: thick $warning;
               background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(markup_safe(self.question), id="confirm-text")
            yield Static("[b]y[/b] yes · [b]n[/b] / esc no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def describe_allow_list(allowed) -> str:
    """The allow-list in one line: how many sensors, and which."""
    if allowed is None:
        return "your sensors: unknown (the allow-list could not be read)"
    if not allowed.sensors:
        return "your sensors: none (press + on a BLE sensor to add it)"
    names = ", ".join(s.address + (f" ({s.label})" if s.label else "") for s in allowed.sensors)
    return f"your sensors ({len(allowed.sensors)}): {names}"


class ConnectScreen(Screen):
    """Scan list of sensors; enter connects; a typed --sensor spec works too."""

    if TYPE_CHECKING:
        @property
        def app(self) -> MonitorApp: ...  # pushed only by MonitorApp

    DEFAULT_CSS = """
    ConnectScreen { layout: vertical; }
    #con-title { height: 1; background: $primary; padding: 0 1; text-style: bold; }
    #con-list { height: 1fr; border: round $primary; }
    #con-status { height: 1; padding: 0 1; color: $warning; }
    """
    BINDINGS = [Binding("enter", "hint", "Connect"), Binding("f5", "scan", "Scan again"),
                Binding("plus", "allow", "Add to my sensors", key_display="+"),
                Binding("minus,delete", "forget", "Remove from my sensors", key_display="-"),
                Binding("escape", "back", "Back")]

    def __init__(self, scan_s: float = 4.0, replay_speed: float = 1.0) -> None:
        super().__init__()
        self.scan_s = scan_s
        self.replay_speed = replay_speed  # pace of replay:FILE and sim (1 = real time)
        self.found: list[FoundSensor] = list(SIMULATED)
        self.scanned: list[FoundSensor] = list(SIMULATED)  # what the last scan found
        self.scanning = False
        self.allowed = None  # the user's BLE allow-list (dorsimeter.store.security), once loaded

    def compose(self) -> ComposeResult:
        yield Static("Connect a sensor — ↑↓ enter to connect, f5 to scan again", id="con-title")
        yield OptionList(id="con-list")
        yield Input(placeholder="or type: serial:/dev/ttyACM0 · ble:AA:BB:… · replay:FILE.csv",
                    id="con-spec")
        placed = self.app.placement_cm
        yield Input(value="" if placed is None else f"{placed:g}", id="con-placement",
                    placeholder="placement: the clip's centre, cm below the tibial tuberosity "
                                "(standard 15) — enter to keep")
        yield Label("", id="con-status")
        yield Footer()

    def on_mount(self) -> None:
        self.show()
        self.action_scan()

    def show(self) -> None:
        """The scanned sensors, then the user's own sensors this scan did not see (so that
        they can be connected or removed from the allow-list)."""
        seen = {f.address.upper().replace("-", ":") for f in self.scanned
                if f.address is not None}  # as the allow-list writes them
        yours = [] if self.allowed is None else [
            FoundSensor(f"ble:{s.address}", s.label or s.address, NOT_IN_RANGE, s.address)
            for s in self.allowed.sensors if s.address not in seen]
        self.found = self.scanned + yours
        ol = self.query_one("#con-list", OptionList)
        ol.clear_options()
        def mark(f: FoundSensor) -> str:
            if f.address is None or self.allowed is None:
                return ""
            return "  ✓ yours" if self.allowed.permits(f.address) else "  (+ to add)"

        # names and details come from the air or the allow-list: never markup
        ol.add_options([Option(markup_safe(f"{f.name:<20} {f.spec:<26} {f.detail}{mark(f)}"),
                               id=str(i)) for i, f in enumerate(self.found)])

    def action_scan(self) -> None:
        if not self.scanning:
            self.run_worker(self.scan(), exclusive=True, group="scan")

    async def scan(self) -> None:
        self.scanning = True
        status = self.query_one("#con-status", Label)
        status.update(f"scanning for {self.scan_s:.0f} s …")
        try:
            ports, found_ble, allowed = await asyncio.gather(
                asyncio.to_thread(serial_ports), ble_sensors(self.scan_s),  # neither raises
                asyncio.to_thread(load_allow_list, self.app.home), return_exceptions=True)
        finally:
            self.scanning = False
        if isinstance(ports, BaseException):
            raise ports
        if isinstance(found_ble, BaseException):
            raise found_ble
        ble, note = found_ble
        if isinstance(allowed, BaseException):  # a damaged allow-list: say so, connect nothing
            note = f"{note + ' — ' if note else ''}{allowed}"
            allowed = None
        self.allowed = allowed
        self.scanned = list(SIMULATED) + ports + ble
        self.show()
        status.update(markup_safe(f"{len(ports)} serial port(s), {len(ble)} BLE sensor(s)"
                                  + (f" — {note}" if note else "")))

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        assert event.option.id is not None  # show() gives every option its index as id
        found = self.found[int(event.option.id)]
        if found.address is not None and self.allowed is not None and not self.allowed.permits(
                found.address):
            self.query_one("#con-status", Label).update(markup_safe(
                f"{found.name} is not one of your sensors: press + to add it, then enter"))
            return
        await self.connect(found.spec, found.name)

    async def action_allow(self) -> None:
        """Add the highlighted BLE sensor to the user's allow-list (``dorsimeter sensors``)."""
        ol = self.query_one("#con-list", OptionList)
        if ol.highlighted is None or self.allowed is None:
            return
        found = self.found[ol.highlighted]
        if found.address is None:
            return
        await asyncio.to_thread(self.allowed.add, found.address, found.name)
        self.show()
        ol.highlighted = self.found.index(found)
        self.query_one("#con-status", Label).update(
            markup_safe(f"{found.name} added to your sensors"))

    def action_forget(self) -> None:
        """Remove the highlighted sensor from the user's allow-list (``dorsimeter sensors
        remove``), once the user confirms."""
        ol = self.query_one("#con-list", OptionList)
        status = self.query_one("#con-status", Label)
        if ol.highlighted is None or self.allowed is None:
            return
        found = self.found[ol.highlighted]
        if found.address is None or not self.allowed.permits(found.address):
            status.update(markup_safe(f"{found.name} is not one of your sensors: nothing to "
                                      "remove"))
            return
        # the modal confirm keeps scans (which replace self.allowed) away until answered
        allowed, address = self.allowed, found.address

        async def answered(yes: bool | None) -> None:
            if not yes:
                status.update(markup_safe(
                    f"{found.name} kept — {describe_allow_list(self.allowed)}"))
                return
            from dorsimeter.errors import DorsimeterError

            try:
                await asyncio.to_thread(allowed.remove, address)
            except (DorsimeterError, OSError) as e:  # read-only data directory, say so
                status.update(markup_safe(f"cannot remove {found.name}: {e}"))
                try:
                    self.allowed = await asyncio.to_thread(load_allow_list, self.app.home)
                except DorsimeterError:
                    self.allowed = None
                self.show()  # what the file still says
                return
            self.show()
            if found in self.found:
                ol.highlighted = self.found.index(found)
            status.update(markup_safe(
                f"{found.name} removed — {describe_allow_list(self.allowed)}"))

        self.app.push_screen(ConfirmScreen(
            f"Remove {found.name} ({found.address}) from your sensors?\n"
            "dorsimeter will no longer connect to it until you add it again."), answered)

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "con-placement":
            self.set_placement(event.value)
        elif event.value.strip():
            await self.connect(event.value.strip())

    def set_placement(self, text: str) -> None:
        """The placement (mounting.md's setting): kept by the monitor, stored with the session,
        shown in the export and the report; the wizard's strapping step uses it."""
        from dorsimeter.core.mounting import parse_placement_cm

        status = self.query_one("#con-status", Label)
        try:
            cm = parse_placement_cm(text) if text.strip() else None
        except ValueError as e:
            status.update(f"placement: {e}")
            return
        self.app.placement_cm = cm
        self.app.store_placement()
        status.update("placement: " + ("standard (15 cm below the tibial tuberosity)"
                                       if cm is None else
                                       f"{cm:g} cm below the tibial tuberosity, stored"))

    async def connect(self, spec: str, name: str | None = None) -> None:
        """Connect ``spec`` (with the BLE sensor's stored box calibration, when it has one)."""
        from dorsimeter.errors import DorsimeterError
        from dorsimeter.sources import SensorSpec, open_source

        status = self.query_one("#con-status", Label)
        try:
            sensor = SensorSpec.parse(spec, "sensor")
            allowed = None
            if sensor.kind == "ble":  # the radio: only the sensors the user has added
                allowed = self.allowed or await asyncio.to_thread(load_allow_list, self.app.home)
            source = open_source(sensor, side=self.app.pipeline.side, speed=self.replay_speed,
                                 allowed=allowed)
        except (DorsimeterError, OSError) as e:
            status.update(markup_safe(f"cannot connect: {e}"))
            return
        try:
            sensor_cal = await asyncio.to_thread(box_calibration_for, sensor, self.app.home,
                                                 (name,) if name else ())
        except (DorsimeterError, OSError) as e:  # a damaged calibration: measure nothing wrong
            await source.close()
            status.update(markup_safe(f"cannot connect: box calibration: {e}"))
            return
        await self.app.switch_source(source, sensor_cal=sensor_cal)
        box = ("" if sensor_cal is None
               else f" — box calibration {sensor_cal.sensor_id} in use")
        self.app.message = f"connected: {source.name}{box} — calibrate with c"
        if sensor_cal is not None:
            self.app.notify(markup_safe(f"{source.name}: box calibration "
                                        f"{sensor_cal.sensor_id} in use "
                                        f"({sensor_cal.n_poses} poses)"), title="Sensor")
        self.app.pop_screen()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_hint(self) -> None:
        """Enter is the list's or the field's own key; this binding shows it in the footer."""
