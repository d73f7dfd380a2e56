"""Protocol mode: choose a guided exercise (band mobilisation, clamshell, reverse lunge …)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from dorsimeter.exercises import Protocol, ProtocolRunner, list_protocols
from dorsimeter.text import markup_safe

if TYPE_CHECKING:
    from dorsimeter.tui.app import MonitorApp


def describe(p: Protocol) -> str:
    span = lambda r: f"{r[0]}" if r[0] == r[1] else f"{r[0]}–{r[1]}"  # noqa: E731
    what = "counted from the sensor" if p.tracked else "timer only"
    return (f"{p.title:<26} {span(p.sets)} × {span(p.reps)} reps, {p.hold_s:g} s holds"
            f"{' per side' if p.per_side else ''} · {what}")


class ProtocolScreen(Screen):
    if TYPE_CHECKING:
        @property
        def app(self) -> MonitorApp: ...  # pushed only by MonitorApp

    DEFAULT_CSS = """
    ProtocolScreen { layout: vertical; }
    #pro-title { height: 1; background: $primary; padding: 0 1; text-style: bold; }
    #pro-list { height: 1fr; border: round $primary; }
    #pro-status { height: 1; padding: 0 1; color: $warning; }
    """
    BINDINGS = [Binding("enter", "hint", "Start"), Binding("x", "stop", "Stop protocol"),
                Binding("escape", "back", "Back")]

    def compose(self) -> ComposeResult:
        yield Static("Guided exercise — ↑↓ enter to start, x to stop the running one",
                     id="pro-title")
        yield OptionList(id="pro-list")
        yield Label("", id="pro-status")
        yield Footer()

    def on_mount(self) -> None:
        self.protocols = list_protocols()
        ol = self.query_one("#pro-list", OptionList)
        ol.add_options([Option(markup_safe(describe(p)), id=str(i))  # titles come from files
                        for i, p in enumerate(self.protocols)])
        if not self.protocols:
            self.query_one("#pro-status", Label).update(
                "no guided protocols in this version yet")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        assert event.option.id is not None  # on_mount gives every option its index as id
        p = self.protocols[int(event.option.id)]
        self.app.protocol = ProtocolRunner(p)
        self.app.message = f"protocol: {p.title} — {p.cue('start')}"
        self.app.pop_screen()

    def action_stop(self) -> None:
        self.app.protocol = None
        self.query_one("#pro-status", Label).update("protocol stopped")

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_hint(self) -> None:
        """Enter is the list's or the field's own key; this binding shows it in the footer."""
