"""The report's trial labels laid out by headless Chromium: none overlap, however many trials
(issue 12 item 11: beyond about 10 they did)."""

from __future__ import annotations

import html
import json
import re
import subprocess

import numpy as np
import pytest

from dorsimeter.export.report import CSS, angle_plot
from dorsimeter.store.db import Trial
from tests.export.test_report import CHROMIUM

PROBE = """<script>
const boxes = [...document.querySelectorAll('.rep-mark text')].map(t => {
  const b = t.getBBox(); return [b.x, b.y, b.width, b.height, t.textContent]; });
const svg = document.querySelector('svg').getBBox();
const pre = document.createElement('pre'); pre.id = 'probe';
pre.textContent = JSON.stringify({boxes, marks: document.querySelectorAll('.rep-mark').length});
document.body.appendChild(pre);
</script>"""


def _laid_out(svg: str, tmp_path) -> dict:
    page = tmp_path / "plot.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><style>{CSS}</style>"
                    f"</head><body>{svg}{PROBE}</body></html>", encoding="utf-8")
    p = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="probe">(.*?)</pre>', p.stdout, re.S)
    assert m, p.stderr[-2000:]
    return json.loads(html.unescape(m.group(1)))


@pytest.mark.parametrize("n", [8, 24, 60])
def test_trial_labels_never_overlap(n, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium not installed (scripts/system-deps.sh installs it)")
    rng = np.random.default_rng(n)
    span_s = 6.5 * n
    t = np.arange(0.0, span_s, 0.05)
    a = 20 + 15 * np.sin(t)
    trials = [Trial("left", float(35 + rng.normal(0, 1.5)), bool(rng.random() > 0.25),
                    "shank_imu", 6.5 * i + 1.0, 6.5 * i + 5.0, rep=i + 1, scored=True)
              for i in range(n)]
    got = _laid_out(angle_plot("left", t, a, trials, trials[0]), tmp_path)
    assert got["marks"] == n  # every trial keeps its mark
    boxes = got["boxes"]
    assert len(boxes) >= min(n, 20)  # most carry a label, the crowded ones their number
    for i, (x0, y0, w0, h0, s0) in enumerate(boxes):
        for x1, y1, w1, h1, s1 in boxes[i + 1:]:
            apart = x0 + w0 <= x1 or x1 + w1 <= x0 or y0 + h0 <= y1 or y1 + h1 <= y0
            assert apart, (s0, s1, (x0, y0, w0, h0), (x1, y1, w1, h1))
