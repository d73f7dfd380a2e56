"""Review the history (per-session best per side, and the trend) and export a session."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input, Label, ProgressBar, Static

from dorsimeter.text import markup_safe
from dorsimeter.tui.model import band_colour
from dorsimeter.types import SIDES

if TYPE_CHECKING:
    from dorsimeter.tui.app import MonitorApp

SIDE_STYLE = {"left": ("●", "bold cyan"), "right": ("◆", "bold magenta")}


def session_bests(store, athlete: str | None) -> list[dict]:
    """Per session of ``athlete`` (None: sessions without one): id, date, kind, the best scored
    angle per side and the asymmetry (the store's, as ``history`` and the report give it), from
    the history module's per-session summaries."""
    from dorsimeter.export.history import history

    out = []
    for p in history(store, athlete):
        s = p.session
        best = {side: p.sides[side].best_valid_deg for side in SIDES
                if p.sides[side].best_valid_deg is not None}
        counts = {side: (p.sides[side].n_scored, p.sides[side].n_trials) for side in SIDES}
        out.append({"id": s.id, "date": s.start_utc[:16].replace("T", " "), "kind": p.what,
                    "athlete": s.athlete or "—", "ended": s.ended, "best": best,
                    "counts": counts, "asymmetry": p.asymmetry})
    return out


def render_trend(rows: list[dict], width: int, height: int) -> Text:
    """Best angle per side over sessions (oldest left), one column group per session."""
    pts = [(i, side, r["best"][side]) for i, r in enumerate(rows) for side in SIDES
           if side in r["best"]]
    if not pts:
        return Text("no trials stored yet", style="grey50")
    lo = min(p[2] for p in pts) - 2
    hi = max(p[2] for p in pts) + 2
    axis_w = 5
    plot_w, plot_h = max(4, width - axis_w), max(2, height - 1)
    n = len(rows)
    grid = [[(" ", "")] * plot_w for _ in range(plot_h)]
    for i, side, v in pts:
        c = min(plot_w - 1, int((i + 0.5) / n * plot_w))
        r = int(round((v - lo) / (hi - lo) * (plot_h - 1)))
        grid[plot_h - 1 - r][c] = SIDE_STYLE[side]
    out = []
    for k, row in enumerate(grid):
        label = f"{hi:4.0f}°" if k == 0 else (f"{lo:4.0f}°" if k == plot_h - 1 else "")
        line = Text(label.rjust(axis_w), style="grey50")
        for ch, st in row:
            line.append(ch, style=st)
        out.append(line)
    legend = Text(" " * axis_w)
    legend.append("● left  ", style="bold cyan")
    legend.append("◆ right  ", style="bold magenta")
    legend.append(f"{n} session(s), oldest left", style="grey50")
    out.append(legend)
    return Text("\n").join(out)


class Trend(Widget):
    DEFAULT_CSS = "Trend { height: 1fr; min-height: 5; border: round $primary; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.rows: list[dict] = []

    def render(self) -> Text:
        return render_trend(self.rows, self.size.width, self.size.height)


class HistoryScreen(Screen):
    """The athlete's sessions (all sessions when no athlete is chosen) and their trend."""

    if TYPE_CHECKING:
        @property
        def app(self) -> MonitorApp: ...  # pushed only by MonitorApp

    DEFAULT_CSS = """
    HistoryScreen { layout: vertical; }
    #his-title { height: 1; background: $primary; padding: 0 1; text-style: bold; }
    #his-table { height: 1fr; }
    #his-status { height: 1; padding: 0 1; color: $warning; }
    """
    BINDINGS = [Binding("e", "export", "Export session"), Binding("escape", "back", "Back")]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Static(id="his-title")
        yield DataTable(id="his-table", cursor_type="row", zebra_stripes=True)
        yield Trend(id="his-trend")
        yield Label("", id="his-status")
        yield Footer()

    def on_mount(self) -> None:
        who = None if self.app.athlete is None else self.app.athlete.name
        self.query_one("#his-title", Static).update(
            f"History — {markup_safe(who or 'sessions without an athlete')} (↑↓ session, e "
            "export it)")
        table = self.query_one("#his-table", DataTable)
        table.add_columns("id", "date (UTC)", "kind", "left", "right", "L−R", "scored L R")
        self.run_worker(self.load(who), exclusive=True, group="history")

    async def load(self, who: str | None) -> None:
        status = self.query_one("#his-status", Label)
        if self.app.store is None:
            status.update("no history store in this run")
            return
        try:
            self.rows = await self.app.store.call(session_bests, who)
        except Exception as e:
            status.update(markup_safe(f"history store: {e}"))
            return
        table = self.query_one("#his-table", DataTable)
        for r in reversed(self.rows):  # newest first
            b = r["best"]
            cells: list[str | Text] = [f"{b[s]:.1f}°" if s in b else "—" for s in SIDES]
            a = r["asymmetry"]
            if a is not None:
                flag = " >MDC" if a.beyond_mdc else ""
                cells.append(Text(f"{a.diff_deg:+.1f}° {a.band}{flag}", style=band_colour(a)))
            else:
                cells.append("—")
            cells.append(" ".join(f"{k}/{n}" for k, n in r["counts"].values()))
            kind = r["kind"] if r["ended"] else f"{r['kind']} (open)"  # live, or crashed
            table.add_row(str(r["id"]), markup_safe(r["date"]), markup_safe(kind), *cells,
                          key=str(r["id"]))
        trend = self.query_one("#his-trend", Trend)
        trend.rows = self.rows
        trend.refresh()
        status.update(f"{len(self.rows)} session(s)")

    def selected_session(self) -> int | None:
        table = self.query_one("#his-table", DataTable)
        if not self.rows or table.cursor_row is None:
            return None
        session_id = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        assert session_id is not None  # load() keys every row by its session id
        return int(session_id)

    def action_export(self) -> None:
        self.app.push_screen(ExportScreen(self.selected_session()))

    def action_back(self) -> None:
        self.app.pop_screen()


def one_line(e: BaseException) -> str:
    """An error as one line: its message (the OS's reason and the file for OSError)."""
    if isinstance(e, OSError) and e.strerror:
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror}"
    text = " ".join(str(e).split())
    return text or type(e).__name__


def export_session(store, session_id: int | str, fmt: str, out: Path,
                   progress=None) -> tuple[list[Path], str]:
    """Write the session as CSV files into ``out`` (a folder) or as an HTML report (a file);
    the paths written and a line saying what they hold. ``progress(samples done, total)``
    is called from this (the store's) thread as the samples go by."""
    if fmt == "csv":
        from dorsimeter.export import export_session_csv

        samples, trials, n_samples, n_trials = export_session_csv(store, session_id, out,
                                                                  progress)
        return [Path(samples), Path(trials)], f"{n_samples:,} samples, {n_trials} trials"
    from dorsimeter.export.report import write_report

    path = Path(write_report(store, session_id, out, progress))
    return [path], "HTML report"


class ExportScreen(Screen):
    """Export a session (the chosen one, else the latest) as CSV files or an HTML report."""

    if TYPE_CHECKING:
        @property
        def app(self) -> MonitorApp: ...  # pushed only by MonitorApp

    DEFAULT_CSS = """
    ExportScreen { layout: vertical; }
    #exp-title { height: 1; background: $primary; padding: 0 1; text-style: bold; }
    #exp-help { height: auto; padding: 1 1; }
    #exp-bar { height: 1; padding: 0 1; }
    #exp-status { height: auto; padding: 0 1; }
    """
    BINDINGS = [Binding("enter", "hint", "Export"), Binding("f2", "format", "CSV/report"),
                Binding("escape", "back", "Back")]

    def __init__(self, session_id: int | None = None) -> None:
        super().__init__()
        self.session_ref: int | str = session_id if session_id is not None else "latest"
        self.fmt = "csv"
        self.written: list[Path] = []
        self.exporting = False
        self.shown: list[tuple[int, int]] = []  # (samples done, total) as the bar showed them

    def compose(self) -> ComposeResult:
        yield Static(id="exp-title")
        yield Static(id="exp-help")
        yield Input(value=str(Path.cwd() / "dorsimeter-export"), id="exp-out")
        yield ProgressBar(id="exp-bar", show_eta=False)
        yield Static("", id="exp-status")
        yield Footer()

    def on_mount(self) -> None:
        self.show()
        self.query_one("#exp-bar", ProgressBar).display = False  # until an export runs
        self.query_one("#exp-out", Input).focus()

    def show(self) -> None:
        self.query_one("#exp-title", Static).update(
            f"Export session {self.session_ref} — as {self.fmt.upper()}")
        self.query_one("#exp-help", Static).update(
            "CSV: samples and per-trial summary, units in every column name, into the folder "
            "below.\nReport: one self-contained HTML file.\nf2 switches format · enter exports")

    def action_format(self) -> None:
        self.fmt = "report" if self.fmt == "csv" else "csv"
        out = self.query_one("#exp-out", Input)
        p = Path(out.value)
        out.value = str(p.with_suffix(".html") if self.fmt == "report" else p.with_suffix(""))
        self.show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        status = self.query_one("#exp-status", Static)
        if self.app.store is None:
            status.update("no history store in this run: nothing to export")
            return
        if self.exporting:  # one export at a time: the first one goes on
            return
        status.update("exporting …")
        self.exporting = True
        self.shown = []
        self.run_worker(self.export(Path(os.path.expanduser(event.value))), exclusive=True,
                        group="export")

    def show_progress(self, done: int, total: int) -> None:
        """The bar and the line under it: samples done of the session's total."""
        if not self.is_mounted:  # the user left the screen; the export itself goes on
            return
        self.shown.append((done, total))
        bar = self.query_one("#exp-bar", ProgressBar)
        bar.display = True
        bar.update(total=max(total, 1), progress=done if total else 1)
        what = "written" if self.fmt == "csv" else "read"
        self.query_one("#exp-status", Static).update(
            f"exporting session {self.session_ref}: {done:,} / {total:,} samples {what}")

    async def export(self, out: Path) -> None:
        """Export on the store's thread; its progress comes back to the event loop (never
        blocking the export), and the result or the failure is one line here."""
        status = self.query_one("#exp-status", Static)
        loop = asyncio.get_running_loop()
        store = self.app.store
        assert store is not None  # on_input_submitted exports only with a history store

        def progress(done: int, total: int) -> None:  # on the store thread
            loop.call_soon_threadsafe(self.show_progress, done, total)

        try:
            written, what = await store.call(export_session, self.session_ref, self.fmt, out,
                                            progress)
        except Exception as e:  # full disk, read-only folder, bad session: say it, go on
            self.query_one("#exp-bar", ProgressBar).display = False
            status.update(Text(f"export failed: {one_line(e)}", style="bold red"))
            return
        finally:
            self.exporting = False
        self.written = written
        status.update(Text(f"written ({what}):\n" + "\n".join(str(p) for p in written),
                           style="bold green"))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_hint(self) -> None:
        """Enter is the field's own key; this binding shows it in the footer."""
