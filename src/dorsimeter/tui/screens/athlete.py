"""Choose or create the athlete; lengths give the hand-width wall target."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from dorsimeter.text import markup_safe
from dorsimeter.tui.services import wall_target_deg

if TYPE_CHECKING:
    from dorsimeter.tui.app import MonitorApp


def describe(a) -> str:
    parts = [a.name]
    if a.tibia_length_m:
        parts.append(f"tibia {100 * a.tibia_length_m:.0f} cm")
    if a.foot_length_m:
        parts.append(f"toe–ankle {100 * a.foot_length_m:.0f} cm")
    wall = wall_target_deg(a)
    if wall is not None:
        parts.append(f"wall 9 cm ⇒ {wall:.1f}°")
    return "  ·  ".join(parts)


def parse_cm(text: str, field: str) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{field}: expected centimetres, e.g. 42") from None
    if not 5 <= v <= 80:
        raise ValueError(f"{field}: {v:g} cm is not a plausible length (5–80 cm)")
    return v / 100.0


class FormInput(Input):
    """A form field that keeps up with a fast typist: a terminal delivers ``Zed`` Tab ``40`` as one
    burst, all queued for the field that had the focus, so Tab moves the focus at once here and
    keys that reach this field after it lost the focus go on to the field that has it (the name
    read ``Zed40`` before)."""

    async def _on_key(self, event: events.Key) -> None:
        if event.key in ("tab", "shift+tab"):
            event.stop()
            event.prevent_default()
            self.screen.focus_next() if event.key == "tab" else self.screen.focus_previous()
            return
        focused = self.screen.focused
        if (focused is not self and isinstance(focused, FormInput) and event.is_printable
                and event.character is not None):  # printable: it has a character
            event.stop()
            event.prevent_default()
            focused.insert_text_at_cursor(event.character)  # now: in the order typed
            return
        await super()._on_key(event)


class AthleteScreen(Screen):
    """The athletes in the history; pick one with enter, or type a new one and press enter."""

    if TYPE_CHECKING:
        @property
        def app(self) -> MonitorApp: ...  # pushed only by MonitorApp

    DEFAULT_CSS = """
    AthleteScreen { layout: vertical; }
    #ath-title { height: 1; background: $primary; padding: 0 1; text-style: bold; }
    #ath-list { height: 1fr; border: round $primary; }
    #ath-form { height: 3; }
    #ath-form Input { width: 1fr; }
    #ath-name { width: 2fr; }
    #ath-status { height: 1; padding: 0 1; color: $warning; }
    """
    BINDINGS = [Binding("enter", "hint", "Choose / create"), Binding("escape", "back", "Back")]

    def __init__(self) -> None:
        super().__init__()
        self.athletes: list = []

    def compose(self) -> ComposeResult:
        yield Static("Athlete — choose with ↑↓ enter, or type a new one below", id="ath-title")
        yield OptionList(id="ath-list")
        with Horizontal(id="ath-form"):
            yield FormInput(placeholder="new athlete: name or id", id="ath-name")
            yield FormInput(placeholder="tibia cm", id="ath-tibia")
            yield FormInput(placeholder="toe–ankle cm", id="ath-foot")
        yield Label("", id="ath-status")
        yield Footer()

    def on_mount(self) -> None:
        self.run_worker(self.load(), exclusive=True, group="athletes")

    async def load(self) -> None:
        store = self.app.store
        status = self.query_one("#ath-status", Label)
        if store is None:
            status.update("no history store: the athlete is kept for this session only")
            self.athletes = [self.app.athlete] if self.app.athlete else []
        else:
            try:
                self.athletes = await store.call(lambda s: s.athletes())
            except Exception as e:
                status.update(markup_safe(f"history store: {e}"))
                self.athletes = []
        ol = self.query_one("#ath-list", OptionList)
        ol.clear_options()
        ol.add_options([Option(markup_safe(describe(a)), id=str(i))  # names are user text
                        for i, a in enumerate(self.athletes)])
        if not self.athletes:
            self.query_one("#ath-name", Input).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        assert event.option.id is not None  # show() gives every option its index as id
        self.choose(self.athletes[int(event.option.id)])

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        name = self.query_one("#ath-name", Input).value.strip()
        status = self.query_one("#ath-status", Label)
        if not name:
            status.update("type the athlete's name (or a pseudonymous id) first")
            self.query_one("#ath-name", Input).focus()
            return
        try:
            tibia = parse_cm(self.query_one("#ath-tibia", Input).value, "tibia")
            foot = parse_cm(self.query_one("#ath-foot", Input).value, "toe–ankle")
        except ValueError as e:
            status.update(markup_safe(e))
            return
        if self.app.store is not None:
            try:
                athlete = await self.app.store.call(lambda s: s.athlete(name, tibia, foot))
            except Exception as e:
                status.update(markup_safe(f"history store: {e}"))
                return
        else:
            from dorsimeter.store.db import Athlete

            athlete = Athlete(0, name, False, tibia, foot)
        self.choose(athlete)

    def choose(self, athlete) -> None:
        """Take the athlete; when that ends a session with data, the app asks first."""
        self.app.change_athlete(athlete, then=self.app.pop_screen)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_hint(self) -> None:
        """Enter is the list's or the field's own key; this binding shows it in the footer."""
