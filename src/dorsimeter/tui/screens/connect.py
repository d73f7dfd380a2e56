"""Connect a sensor: the simulated rig, USB serial ports, and supported BLE sensors nearby."""

from __future__ import annotations

import asyncio

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from dorsimeter.tui.services import FoundSensor, ble_sensors, load_allow_list, serial_ports

SIMULATED = [FoundSensor("sim", "simulated rig", "the virtual shank, no hardware")]


class ConnectScreen(Screen):
    """Scan list of sensors; enter connects; a typed --sensor spec works too."""

    DEFAULT_CSS = """
    ConnectScreen { layout: vertical; }
    #con-title { height: 1; background: $primary; padding: 0 1; text-style: bold; }
    #con-list { height: 1fr; border: round $primary; }
    #con-status { height: 1; padding: 0 1; color: $warning; }
    """
    BINDINGS = [Binding("enter", "hint", "Connect"), Binding("f5", "scan", "Scan again"),
                Binding("plus", "allow", "Add to my sensors", key_display="+"),
                Binding("escape", "back", "Back")]

    def __init__(self, scan_s: float = 4.0, replay_speed: float = 1.0) -> None:
        super().__init__()
        self.scan_s = scan_s
        self.replay_speed = replay_speed  # pace of replay:FILE and sim (1 = real time)
        self.found: list[FoundSensor] = list(SIMULATED)
        self.scanning = False
        self.allowed = None  # the user's BLE allow-list (dorsimeter.security), once loaded

    def compose(self) -> ComposeResult:
        yield Static("Connect a sensor — ↑↓ enter to connect, f5 to scan again", id="con-title")
        yield OptionList(id="con-list")
        yield Input(placeholder="or type: serial:/dev/ttyACM0 · ble:AA:BB:… · replay:FILE.csv",
                    id="con-spec")
        yield Label("", id="con-status")
        yield Footer()

    def on_mount(self) -> None:
        self.show()
        self.action_scan()

    def show(self) -> None:
        ol = self.query_one("#con-list", OptionList)
        ol.clear_options()
        def mark(f: FoundSensor) -> str:
            if f.address is None or self.allowed is None:
                return ""
            return "  ✓ yours" if self.allowed.permits(f.address) else "  (+ to add)"

        ol.add_options([Option(f"{f.name:<20} {f.spec:<26} {f.detail}{mark(f)}", id=str(i))
                        for i, f in enumerate(self.found)])

    def action_scan(self) -> None:
        if not self.scanning:
            self.run_worker(self.scan(), exclusive=True, group="scan")

    async def scan(self) -> None:
        self.scanning = True
        status = self.query_one("#con-status", Label)
        status.update(f"scanning for {self.scan_s:.0f} s …")
        try:
            ports, (ble, note), allowed = await asyncio.gather(
                asyncio.to_thread(serial_ports), ble_sensors(self.scan_s),  # neither raises
                asyncio.to_thread(load_allow_list, self.app.home), return_exceptions=True)
        finally:
            self.scanning = False
        if isinstance(allowed, BaseException):  # a damaged allow-list: say so, connect nothing
            note = f"{note + ' — ' if note else ''}{allowed}"
            allowed = None
        self.allowed = allowed
        self.found = list(SIMULATED) + ports + ble
        self.show()
        status.update(f"{len(ports)} serial port(s), {len(ble)} BLE sensor(s)"
                      + (f" — {note}" if note else ""))

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        found = self.found[int(event.option.id)]
        if found.address is not None and self.allowed is not None and not self.allowed.permits(
                found.address):
            self.query_one("#con-status", Label).update(
                f"{found.name} is not one of your sensors: press + to add it, then enter")
            return
        await self.connect(found.spec)

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
        self.query_one("#con-status", Label).update(f"{found.name} added to your sensors")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            await self.connect(event.value.strip())

    async def connect(self, spec: str) -> None:
        from dorsimeter.errors import DorsimeterError
        from dorsimeter.sources import open_source

        try:
            allowed = None
            if spec.startswith("ble:"):  # the radio: only the sensors the user has added
                allowed = self.allowed or await asyncio.to_thread(load_allow_list, self.app.home)
            source = open_source(spec, side=self.app.pipeline.side, speed=self.replay_speed,
                                 allowed=allowed)
        except (DorsimeterError, OSError) as e:
            self.query_one("#con-status", Label).update(f"cannot connect: {e}")
            return
        await self.app.switch_source(source)
        self.app.message = f"connected: {source.name} — calibrate with c"
        self.app.pop_screen()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_hint(self) -> None:
        """Enter is the list's or the field's own key; this binding shows it in the footer."""
