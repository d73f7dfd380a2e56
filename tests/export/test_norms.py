"""Published norms: data with citations, shown with their source in the report, the monitor's
per-side table and ``history``."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from dorsimeter.errors import DorsimeterError
from dorsimeter.export.norms import load_norms, parse_norms
from dorsimeter.store import Store
from dorsimeter.store.summary import summarize
from tests.export.sessions import stored_session


def _data() -> dict:
    text = resources.files("dorsimeter.export").joinpath("data", "norms.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_the_packaged_norms_are_the_published_figures_with_their_sources():
    n = load_norms()
    assert (n.tibia_low_deg, n.tibia_high_deg, n.tibia_source.short) == (35.0, 45.0,
                                                                          "Bennell 1998")
    assert (n.wall_low_cm, n.wall_high_cm) == (10.0, 13.0)
    assert (n.side_within_cm, n.side_share, n.side_source.short) == (1.5, 0.68,
                                                                     "Hoch & McKeon 2011")
    assert (n.mdc_method, n.mdc_low_deg, n.mdc_high_deg, n.mdc_source.short) == (
        "inclinometer", 3.7, 4.7, "Powden 2015")
    assert {s.short for s in n.sources} >= {"Bennell 1998", "Konor 2012", "Powden 2015"}
    assert all(len(s.citation) > 60 and s.citation[-1] == "." for s in n.sources)


def test_a_result_is_set_against_the_norm_in_words():
    n = load_norms()
    assert n.angle_line("left", 33.1) == ("left 33.1°: below the healthy range, 35–45°, "
                                          "Bennell 1998")
    assert n.angle_line("right", 40.0).startswith("right 40.0°: within the healthy range")
    assert n.angle_verdict(45.01) == "above" and n.angle_verdict(35.0) == "within"
    assert n.difference_line(-2.0) == ("left/right 2.0 cm: more than the 1.5 cm that 68 % of "
                                       "healthy adults are within, Hoch & McKeon 2011")
    assert n.difference_line(1.5).startswith("left/right 1.5 cm: within")
    assert n.mdc_line(3.0) == ("3.0°: within the minimal detectable change by inclinometer, "
                               "3.7–4.7°, Powden 2015")
    assert n.mdc_line(-4.0).startswith("4.0°: inside the spread of the minimal detectable")
    assert n.mdc_line(5.0).startswith("5.0°: beyond the minimal detectable change")


@pytest.mark.parametrize("change,message", [
    (lambda d: d["tibia_angle"].pop("low_deg"), "[tibia_angle] low_deg: expected a number"),
    (lambda d: d["mdc"].update(source="nobody2020"), "'nobody2020' is not in [sources]"),
    (lambda d: d["sources"]["bennell1998"].update(short=3), "short: expected str"),
    (lambda d: d.pop("side_difference"), "[side_difference]: missing"),
])
def test_a_broken_norms_file_is_a_one_line_error(change, message):
    data = _data()
    change(data)
    with pytest.raises(DorsimeterError) as e:
        parse_norms(data)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("norms.toml: ")


def test_the_monitors_per_side_table_shows_the_norm_and_its_source():
    from dorsimeter.session.asymmetry import asymmetry
    from dorsimeter.tui.widgets import render_sides

    rows = [{"kind": "best", "side": "left", "best_deg": 33.1, "trials": 3},
            {"kind": "best", "side": "right", "best_deg": 40.2, "trials": 3}]
    from dorsimeter.tui.widgets import SIDES_FULL_WIDTH

    for width in (SIDES_FULL_WIDTH, 32):  # one leg's full table; two legs' 32-column panel
        text = render_sides(rows, "left", asymmetry(33.1, 40.2), width=width).plain
        line = next(ln for ln in text.splitlines() if "Bennell 1998" in ln)
        assert line.strip() == "35–45° Bennell 1998: L↓ R✓"
        assert max(len(ln) for ln in text.splitlines()) <= width  # no line wraps
    none = render_sides([{**r, "best_deg": None} for r in rows], "left", None).plain
    assert "Bennell" not in none  # no result, no verdict


def test_history_prints_the_latest_best_against_the_norm(tmp_path, capsys):
    from dorsimeter.cli import main

    with Store.open(tmp_path / "home") as store:
        sid = stored_session(store, 35.0, athlete="Ana", seeds=(3, 4))
        sides = summarize(store.trials(sid))
    assert main(["history", "Ana", "--home", str(tmp_path / "home")]) == 0
    out = capsys.readouterr().out
    n = load_norms()
    for side in ("left", "right"):
        line = f"  latest vs healthy adults: {n.angle_line(side, sides[side].best_valid_deg)}"
        assert line in out.splitlines()
