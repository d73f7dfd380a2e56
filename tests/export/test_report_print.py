"""The report printed by headless Chromium to PDF on A4 and on Letter: the summary alone on the
first page, no section cut across pages or off the page's edge, the norms with their sources."""

from __future__ import annotations

import re
import subprocess

import pytest

from dorsimeter.export.norms import load_norms
from dorsimeter.export.report import write_report
from dorsimeter.store import Store
from dorsimeter.store.summary import summarize
from tests.export.sessions import stored_session
from tests.export.test_report import CHROMIUM

pypdf = pytest.importorskip("pypdf")

PAPER_PT = {"A4": (595.3, 841.9), "Letter": (612.0, 792.0)}
# (first text, last text) of each section other than the plots, as extracted from the PDF
SECTIONS = (("Knee-to-wall report:", "calibration"), ("Per side", "but not scored."),
            ("Asymmetry", "minimal detectable change ("),
            ("Against published norms", "a systematic review"),
            ("History (", "session (id, month-day UTC)"))


def print_pdf(html_path, tmp_path, paper: str):
    """The report as Chromium prints it on ``paper`` (the printer's choice: a @page size)."""
    src = html_path.read_text(encoding="utf-8")
    page = tmp_path / f"report-{paper}.html"
    page.write_text(src.replace("</head>", f"<style>@page {{ size: {paper}; }}</style></head>"),
                    encoding="utf-8")
    pdf = tmp_path / f"report-{paper}.pdf"
    p = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", page.as_uri()], capture_output=True, text=True, timeout=180)
    assert pdf.exists(), p.stderr[-2000:]
    return pypdf.PdfReader(pdf)


def page_texts(reader) -> list[tuple[str, list[float], float, float]]:
    """Per page: its text, the x of every text run, and the page's width and height (pt)."""
    out = []
    for page in reader.pages:
        xs: list[float] = []

        def visit(text, cm, tm, font, size, xs=xs):
            if text.strip():
                xs.append(cm[0] * tm[4] + cm[2] * tm[5] + cm[4])

        text = " ".join(page.extract_text(visitor_text=visit).split())  # line breaks: spaces
        out.append((text, xs, float(page.mediabox.width), float(page.mediabox.height)))
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium not installed (scripts/system-deps.sh installs it)")
    tmp = tmp_path_factory.mktemp("print")
    store = Store.open(tmp / "home")
    for seeds in ((5, 6), (7, 8)):
        stored_session(store, 35.0, athlete="Ana", seeds=seeds)
    sid = stored_session(store, 35.0, athlete="Ana", seeds=(3, 4))
    path = write_report(store, sid, tmp / "report.html")
    yield store, sid, path, tmp
    store.close()


@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_each_section_prints_whole_on_its_page(report, paper):
    store, sid, path, tmp = report
    pages = page_texts(print_pdf(path, tmp, paper))
    width, height = PAPER_PT[paper]
    assert all(abs(w - width) < 1 and abs(h - height) < 1 for _, _, w, h in pages)
    # the summary, alone on page 1
    first = pages[0][0]
    assert first.startswith("Knee-to-wall summary: Ana") and "Details on the next pages." in first
    assert "Knee-to-wall report:" not in first and 2 <= len(pages) <= 6
    for start, end in SECTIONS:
        on = [i for i, (t, _, _, _) in enumerate(pages) if start in t]
        assert len(on) == 1, (start, on)
        text = pages[on[0]][0]
        assert end in text[text.index(start):], (paper, start, end)  # not split to a next page
    # each plot whole: its axis labels on the same page as its title, both plots drawn
    assert sum(t.count("device time (s)") for t, _, _, _ in pages) == 2
    for t, _, _, _ in pages:
        y_labels = t.count("tibia angle (°)") - t.count("best tibia angle (°)")
        assert t.count("device time (s)") == y_labels
    # nothing drawn off the page's edge: every text run starts inside the page
    for _, xs, w, _ in pages:
        assert xs and min(xs) >= 0 and max(xs) < w - 20, (paper, min(xs), max(xs), w)
    # the legend at the trend plot's right edge made it onto the page
    assert re.search(r"left\s*right", pages[-1][0])


def test_the_report_sets_each_result_against_the_norms_with_its_source(report):
    store, sid, path, tmp = report
    pages = page_texts(print_pdf(path, tmp, "A4"))
    text = " ".join(t for t, _, _, _ in pages)
    norms = load_norms()
    sides = summarize(store.trials(sid))
    for side in ("left", "right"):
        line = norms.angle_line(side, sides[side].best_valid_deg)
        assert line in text  # e.g. "left 33.1°: below the healthy range, 35–45°, Bennell 1998"
    assert f"{norms.tibia_range} ({norms.tibia_source.short})" in text
    for src in norms.sources:
        assert src.short in text and " ".join(src.citation.split()[:6]) in text
    html = path.read_text(encoding="utf-8")
    for side in ("left", "right"):
        best = sides[side].best_valid_deg
        m = re.search(rf'<li id="norm-{side}" class="norm-(\w+)" data-value="([^"]+)">', html)
        assert m and m.group(2) == repr(best) and m.group(1) == norms.angle_verdict(best)
