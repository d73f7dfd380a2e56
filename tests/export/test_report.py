"""The HTML report rendered by headless Chromium: the numbers on screen are the stored ones."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import stat
import subprocess

import pytest

from dorsimeter.export.report import write_report
from dorsimeter.store import Store
from dorsimeter.store.summary import asymmetry, summarize
from tests.export.sessions import stored_session

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium"
                                         if os.path.exists("/usr/bin/chromium") else None)

# Appended to a copy of the report: what the browser laid out and shows, as JSON in the DOM.
PROBE = """<script>
const q = (s) => document.querySelector(s);
const num = (el) => el ? {text: el.innerText, value: el.querySelector('[data-value]')
  ? el.querySelector('[data-value]').dataset.value : null} : null;
const out = {text: document.body.innerText, sides: {}, plots: {}};
for (const s of ['left', 'right']) {
  out.sides[s] = {best: num(q(`#side-${s} .best`)), mean3: num(q(`#side-${s} .mean3`)),
                  scored: q(`#side-${s} .scored`).innerText,
                  trials: q(`#side-${s} .trials`).innerText};
  const svg = q(`#plot-${s}`);
  if (svg) {
    const r = svg.getBoundingClientRect(), trace = svg.querySelector('.angle-trace').getBBox();
    out.plots[s] = {width: r.width, height: r.height, trace_w: trace.width,
                    trace_h: trace.height,
                    marks: [...svg.querySelectorAll('.rep-mark')].map(g => g.dataset.value),
                    mark_labels: [...svg.querySelectorAll('.rep-mark text')].map(
                      t => t.textContent)};
  }
}
out.asym = {diff: num(q('#asymmetry .diff')), pct: num(q('#asymmetry .pct')),
            cm: num(q('#asymmetry .cm')), mdc: q('#mdc-flag').innerText};
out.trend = [...document.querySelectorAll('#trend .trend-point')].map(
  c => [c.dataset.side, +c.dataset.session, c.dataset.value, c.getBoundingClientRect().width]);
const pre = document.createElement('pre'); pre.id = 'probe';
pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
</script>"""


def render(report_path, tmp_path) -> dict:
    probe = tmp_path / "probe.html"
    text = report_path.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    p = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=900,1400",
         "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="probe">(.*?)</pre>', p.stdout, re.S)
    assert m, f"chromium gave no probe output: {p.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("chromium not installed (scripts/system-deps.sh installs it)")
    tmp = tmp_path_factory.mktemp("report")
    store = Store.open(tmp / "home")
    for seeds in ((5, 6), (7, 8)):
        stored_session(store, 35.0, athlete="Ana", seeds=seeds)
    stored_session(store, 35.0, athlete="Other", seeds=(9, 9))
    sid = stored_session(store, 35.0, athlete="Ana", seeds=(3, 4))
    out = write_report(store, sid, tmp / "report.html")
    yield store, sid, out, render(out, tmp)
    store.close()


def test_report_is_self_contained_and_owner_only(report):
    _, _, path, _ = report
    text = path.read_text(encoding="utf-8")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "<script" not in text and "<link" not in text and " src=" not in text
    assert re.findall(r"https?://[^\"' ]+", text) == ["http://www.w3.org/2000/svg"] * 3


def test_the_per_side_numbers_shown_are_the_stored_ones(report):
    store, sid, _, shown = report
    trials = store.trials(sid)
    sides = summarize(trials)
    for side in ("left", "right"):
        s, got = sides[side], shown["sides"][side]
        assert got["best"]["value"] == repr(s.best_valid_deg)  # exact, bit for bit
        assert got["best"]["text"] == f"{s.best_valid_deg:.2f}°"
        assert got["mean3"]["value"] == repr(s.mean_best3_deg)
        assert got["mean3"]["text"] == f"{s.mean_best3_deg:.2f}°"
        assert (int(got["scored"]), int(got["trials"])) == (s.n_scored, s.n_trials)
        assert s.n_scored >= 3
    a = asymmetry(sides)
    assert shown["asym"]["diff"]["value"] == repr(a.diff_deg)
    assert shown["asym"]["diff"]["text"] == f"{a.diff_deg:+.2f}°"
    assert shown["asym"]["pct"]["text"].startswith(f"{a.percent:.1f} %")
    assert shown["asym"]["cm"]["text"].startswith(f"{a.cm:.1f} cm")
    assert "3.6°/cm rule" in shown["asym"]["cm"]["text"]  # no lengths stored for Ana
    assert ("beyond" in shown["asym"]["mdc"]) == a.beyond_mdc
    info = store.session(sid)
    assert "Ana" in shown["text"] and info.start_utc[:10] in shown["text"]


def test_each_side_is_plotted_with_its_reps_marked(report):
    store, sid, _, shown = report
    trials = store.trials(sid)
    for side in ("left", "right"):
        plot = shown["plots"][side]
        assert plot["width"] > 600 and plot["height"] > 200
        assert plot["trace_w"] > 500 and plot["trace_h"] > 50  # the trace really spans the plot
        mine = [t for t in trials if t.side == side and t.t_start_s is not None]
        assert plot["marks"] == [repr(t.angle_deg) for t in mine]
        assert [lbl.split()[-1] for lbl in plot["mark_labels"]] == [
            f"{t.angle_deg:.1f}°" for t in mine]
    assert any("heel lift" in lbl for lbl in shown["plots"]["right"]["mark_labels"])


def test_the_history_trend_shows_this_athletes_sessions_only(report):
    store, sid, _, shown = report
    ana = [s.id for s in store.sessions("Ana")]
    assert len(ana) == 3
    expect = [[side, s, repr(summarize(store.trials(s))[side].best_valid_deg)]
              for side in ("left", "right") for s in ana]
    assert [p[:3] for p in shown["trend"]] == expect
    assert all(p[3] > 0 for p in shown["trend"])  # drawn
    assert "History (3 sessions)" in shown["text"]


def test_with_the_athletes_lengths_the_wall_and_centimetres_use_the_geometry(tmp_path):
    from dorsimeter.session.wall import HAND_WIDTH_M, AthleteGeometry

    with Store.open(tmp_path / "home") as store:
        sid = stored_session(store, 35.0, athlete="Lee", seeds=(3, 4))
        store.athlete("Lee", tibia_length_m=0.43, foot_length_m=0.135)
        text = write_report(store, sid, tmp_path / "r.html").read_text(encoding="utf-8")
        sides = summarize(store.trials(sid))
    geo = AthleteGeometry(0.43, 0.135)
    a = asymmetry(sides, athlete=geo)
    assert a.cm_method == "geometry"
    assert f'data-value="{a.cm!r}">{a.cm:.1f} cm</span>' in text
    for side in ("left", "right"):
        best = sides[side].best_valid_deg
        toe = 100 * geo.toe_to_wall_m(best)
        reach = "reaches" if geo.reaches(best, HAND_WIDTH_M) else "does not reach"
        row = re.search(rf'<tr id="side-{side}">(.*?)</tr>', text).group(1)
        assert f'{reach}; toe to wall <span class="num" data-value="{toe!r}">{toe:.1f} cm' in row


def test_a_one_sided_session_is_compared_with_the_other_sides_latest(tmp_path):
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.session.asymmetry import asymmetry as session_asymmetry
    from dorsimeter.session.results import SessionResults
    from dorsimeter.store.recorder import SessionRecorder
    from tests.conftest import simulate

    def one_side(store, side, seed):
        rec = SessionRecorder(store, "record", athlete="Uma")
        pipe, results = Pipeline(100.0, side=side), SessionResults()
        batch = simulate(30.0, side=side, seed=seed)
        for i in range(0, len(batch), 50):
            r, events = pipe.push(batch.slice(i, i + 50))
            rec.add(r, events)
            results.add(r, events)
        return rec.finish(results)

    with Store.open(tmp_path / "home") as store:
        right_id = one_side(store, "right", 11)
        left_id = one_side(store, "left", 12)
        text = write_report(store, left_id, tmp_path / "r.html").read_text(encoding="utf-8")
        left = summarize(store.trials(left_id))["left"].best_valid_deg
        right = summarize(store.trials(right_id))["right"].best_valid_deg
    expect = session_asymmetry(left, right)
    assert f'class="diff"><span class="num" data-value="{expect.diff_deg!r}">' in text
    assert f"The right side is from session {right_id}" in text
