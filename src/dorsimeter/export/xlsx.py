"""Excel workbook (openpyxl) of a session, for coaches: a Results sheet to read, the Trials and
the Samples as numbers.

Numbers are stored at full precision (the display is rounded by the cell format only), so reading
the workbook gives the stored values bit for bit. Text from users (athlete, notes, sensor names)
is stored exactly but always as a text cell with Excel's quote prefix when ``inert_cell`` says it
would start a formula: never as a formula, whatever it looks like. The workbook is written in
openpyxl's streaming mode so a long session does not need all its cells in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dorsimeter.export.norms import load_norms
from dorsimeter.export.progress import progress_bar
from dorsimeter.export.tables import (
    UNITS,
    SessionTables,
    sample_columns,
    session_tables,
    trial_columns,
)
from dorsimeter.paths import atomic_private, private_dir
from dorsimeter.store.db import Store
from dorsimeter.store.summary import asymmetry, geometry, summarize
from dorsimeter.text import inert_cell
from dorsimeter.types import SIDES

MAX_ROWS = 1_048_576  # Excel's limit per sheet: longer sample tables continue on the next sheet
BAND_FILL = {"<10 %": "C8E6C9", "10–25 %": "FFE082", ">25 %": "FFAB91"}  # green, amber, red
VERDICT_FILL = {"below": "FFE082", "within": "C8E6C9", "above": "C8E6C9"}


class _Sheet:
    """Rows of write-only cells: numbers as numbers, text always as text (never a formula)."""

    def __init__(self, wb, title: str) -> None:
        self.ws = wb.create_sheet(title)

    def cell(self, value, bold: bool = False, fill: str | None = None, fmt: str | None = None):
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font, PatternFill

        if isinstance(value, str):
            c = WriteOnlyCell(self.ws, value=value)
            c.data_type = "s"  # openpyxl would take a leading "=" as a formula
            if inert_cell(value) != value:
                c.quotePrefix = True  # what Excel itself stores for text typed as '=…
        else:
            c = WriteOnlyCell(self.ws, value=value)
        if bold:
            c.font = Font(bold=True)
        if fill:
            c.fill = PatternFill("solid", fgColor=fill)
        if fmt:
            c.number_format = fmt
        return c

    def row(self, *values, bold: bool = False) -> None:
        self.ws.append([v if hasattr(v, "coordinate") else
                        (None if v is None else self.cell(v, bold=bold)) for v in values])


def _results(wb, t: SessionTables, store: Store) -> None:
    info = t.info
    norms = load_norms()
    sides = summarize(t.trials)
    athlete = store.find_athlete(info.athlete) if info.athlete else None
    geo = geometry(athlete.tibia_length_m, athlete.foot_length_m) if athlete else None
    sh = _Sheet(wb, "Results")
    sh.ws.column_dimensions["A"].width = 28
    for col in "BCDEFG":
        sh.ws.column_dimensions[col].width = 16
    sh.ws.column_dimensions["H"].width = 60
    sh.row(sh.cell("Knee-to-wall results", bold=True))
    for label, value in (("athlete", info.athlete or "(none)"), ("date (UTC)",
                         info.start_utc.replace("T", " ").replace("Z", "")[:19]),
                         ("session", info.id), ("sensor", info.sensor or "—"),
                         ("notes", info.notes or "")):
        sh.row(label, value)
    sh.row()
    sh.row("side", "best valid angle (°)", "mean of best three (°)", "scored", "trials",
           "heel lifted", "against healthy adults", "norm", bold=True)
    for s in SIDES:
        x = sides[s]
        best = x.best_valid_deg
        verdict = None if best is None else norms.angle_verdict(best)
        sh.row(s, None if best is None else sh.cell(best, fmt="0.00"),
               None if x.mean_best3_deg is None else sh.cell(x.mean_best3_deg, fmt="0.00"),
               x.n_scored, x.n_trials, x.n_invalid,
               None if verdict is None else sh.cell(verdict, fill=VERDICT_FILL[verdict]),
               None if best is None else norms.angle_line(s, best))
    sh.row()
    a = asymmetry(sides, athlete=geo)
    sh.row(sh.cell("Asymmetry", bold=True))
    if a is None:
        sh.row("asymmetry", "needs a scored trial on both sides")
    else:
        sh.row("left − right (°)", sh.cell(a.diff_deg, fmt="+0.00;-0.00;0.00"))
        sh.row("of the better side (%)", sh.cell(a.percent, fmt="0.0"),
               sh.cell(f"band {a.band}", fill=BAND_FILL.get(a.band)))
        sh.row("knee-to-wall difference (cm)", sh.cell(a.cm, fmt="0.0"), f"by {a.cm_method}",
               None, None, None, None, norms.difference_line(a.cm))
        sh.row("minimal detectable change", "beyond" if a.beyond_mdc else "within",
               f"{a.mdc_deg:g}°", None, None, None, None, norms.mdc_line(a.diff_deg))
    sh.row()
    sh.row(sh.cell("Norms", bold=True))
    sh.row("healthy tibia angle", f"{norms.tibia_range}", None, None, None, None, None,
           norms.tibia_source.short)
    sh.row("healthy knee-to-wall", f"{norms.wall_low_cm:g}–{norms.wall_high_cm:g} cm", None, None,
           None, None, None, norms.wall_source.short)
    sh.row(sh.cell("Sources", bold=True))
    for src in norms.sources:
        sh.row(src.short, None, None, None, None, None, None, src.citation)


def _table(wb, title: str, cols: dict[str, list]) -> None:
    names = list(cols)
    n = len(next(iter(cols.values()))) if cols else 0
    header = [f"{c} [{UNITS[c]}]" if c in UNITS and not c.endswith("_iso8601") else c
              for c in names]
    per_sheet = MAX_ROWS - 1
    columns = [cols[c] for c in names]
    part = 0
    with progress_bar(f"writing the {title.lower()} sheet", n) as advance:  # ~30k cells/s
        while True:
            sh = _Sheet(wb, title if part == 0 else f"{title} {part + 1}")
            sh.ws.freeze_panes = "A2"
            sh.row(*header, bold=True)
            lo = part * per_sheet
            for i in range(lo, min(n, lo + per_sheet)):
                sh.ws.append([sh.cell(v) if isinstance(v, str) and inert_cell(v) != v else v
                              for v in (col[i] for col in columns)])
                if i % 1000 == 999:
                    advance(1000)
            part += 1
            if part * per_sheet >= n:
                break


@contextmanager
def _exact_floats() -> Iterator[None]:
    """openpyxl writes numbers with ``%.16g``, which loses the 17th significant digit some
    doubles need: while saving, write floats with ``repr`` (the shortest text that reads back as
    the same double), as the CSV export does."""
    import openpyxl.cell._writer as writer

    # the module's own name for openpyxl.compat.safe_string (typeshed's stubs do not list it)
    original = getattr(writer, "safe_string")  # noqa: B009

    def safe_string(value):
        if type(value) is float and value == value and value not in (float("inf"), float("-inf")):
            return repr(value)
        return original(value)

    setattr(writer, "safe_string", safe_string)  # noqa: B010
    try:
        yield
    finally:
        setattr(writer, "safe_string", original)  # noqa: B010


def export_xlsx(store: Store, ref: int | str, out_dir: str | os.PathLike) -> Path:
    """Write ``dorsimeter-session-<id>.xlsx`` (0600): Results, Trials, Samples."""
    from openpyxl import Workbook

    t = session_tables(store, ref)
    out = private_dir(Path(out_dir))
    path = out / f"dorsimeter-session-{t.info.id}.xlsx"
    with _exact_floats():  # write-only sheets write their rows as they are appended
        wb = Workbook(write_only=True)
        _results(wb, t, store)
        _table(wb, "Trials", trial_columns(t))
        _table(wb, "Samples", sample_columns(t))
        with atomic_private(path, "wb") as f:
            wb.save(f)
    return path
