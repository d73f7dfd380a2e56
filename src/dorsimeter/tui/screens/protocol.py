"""Protocol mode: choose a guided exercise (band mobilisation, clamshell, reverse lunge …)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from dorsimeter.tui.services import optional


def available_protocols() -> list:
    """The guided protocols this version ships (``dorsimeter.protocols``), if any."""
    mod = optional("dorsimeter.protocols")
    lister = getattr(mod, "list_protocols", None) if mod else None
    return list(lister()) if lister else []


class ProtocolScreen(Screen):
    DEFAULT_CSS = """
    ProtocolScreen { layout: vertical; }
    #pro-title { height: 1; background: $primary; padding: 0 1; text-style: bold; }
    #pro-list { height: 1fr; border: round $primary; }
    #pro-status { height: 1; padding: 0 1; color: $warning; }
    """
    BINDINGS = [Binding("x", "stop", "Stop protocol"), Binding("escape", "back", "Back")]

    def compose(self) -> ComposeResult:
        yield Static("Guided exercise — ↑↓ enter to start, x to stop the running one",
                     id="pro-title")
        yield OptionList(id="pro-list")
        yield Label("", id="pro-status")
        yield Footer()

    def on_mount(self) -> None:
        self.protocols = available_protocols()
        ol = self.query_one("#pro-list", OptionList)
        ol.add_options([Option(str(getattr(p, "title", None) or getattr(p, "name", p)),
                               id=str(i)) for i, p in enumerate(self.protocols)])
        if not self.protocols:
            self.query_one("#pro-status", Label).update(
                "no guided protocols in this version yet")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        mod = optional("dorsimeter.protocols")
        runner = getattr(mod, "ProtocolRunner", None)
        p = self.protocols[int(event.option.id)]
        self.app.protocol = runner(p) if runner else None
        self.app.pop_screen()

    def action_stop(self) -> None:
        self.app.protocol = None
        self.query_one("#pro-status", Label).update("protocol stopped")

    def action_back(self) -> None:
        self.app.pop_screen()
