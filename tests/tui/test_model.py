"""The monitor's pure parts: what it computes from readings and how it draws, with numbers."""

from __future__ import annotations

import numpy as np

from dorsimeter.pipeline.pipeline import Event
from dorsimeter.session.asymmetry import BANDS
from dorsimeter.session.asymmetry import asymmetry as session_asymmetry
from dorsimeter.session.wall import DEG_PER_CM_RULE
from dorsimeter.tui.model import (
    BAND_COLOURS,
    LinkFigures,
    LiveModel,
    band_colour,
    default_target,
)
from dorsimeter.tui.widgets import _GLYPHS, big_text_lines, render_gauge, render_trace
from dorsimeter.types import ImuBatch, Readings
from tests.tui.test_tmux import decode_big


def readings(t_s, angle_deg, track_deg=None, heel=None, rep=None, valid=None, side="left"):
    n = len(t_s)
    return Readings(np.asarray(t_s, float), np.asarray(angle_deg, float),
                    np.zeros(n) if track_deg is None else np.asarray(track_deg, float),
                    np.full(n, side, dtype=object),
                    np.zeros(n, bool) if heel is None else np.asarray(heel, bool),
                    np.full(n, "heel_switch", dtype=object),
                    np.full(n, -1) if rep is None else np.asarray(rep),
                    np.ones(n, bool) if valid is None else np.asarray(valid, bool))


def test_the_band_colours_are_the_sessions_bands():
    """The UI colours the session's own asymmetry (no copy of its bands, MDC or 3.6°/cm)."""
    a = session_asymmetry(40.0, 35.0)
    assert a.diff_deg == 5.0 and abs(a.percent - 12.5) < 1e-12
    assert a.band == "10–25 %" and band_colour(a) == "yellow" and a.beyond_mdc
    assert a.cm_method == "rule" and abs(a.cm - 5.0 / DEG_PER_CM_RULE) < 1e-12
    small = session_asymmetry(40.0, 37.0)
    assert small.band == "<10 %" and band_colour(small) == "green" and not small.beyond_mdc
    big = session_asymmetry(20.0, 40.0)
    assert big.diff_deg == -20.0 and big.band == ">25 %" and band_colour(big) == "red"
    assert set(BAND_COLOURS) == {name for _, name in BANDS}


def test_target_precedence():
    assert default_target(40.0, 31.2) == (40.0, "target")
    assert default_target(None, 31.2) == (31.2, "wall 9 cm")
    assert default_target(None, None) == (35.0, "normal ≥")


def test_link_figures_rate_and_loss_from_sequence_numbers():
    link = LinkFigures()
    seq = 0
    for k in range(100):
        t = (np.arange(5) + 5 * k) / 100.0
        if k % 4 != 3:  # every 4th frame of 5 samples lost
            link.note(ImuBatch(t, np.zeros((5, 3)), np.zeros((5, 3)), seq=np.arange(seq, seq + 5)))
        seq += 5
    assert link.received == 375 and link.lost == 120  # the 100th frame's loss is not seen yet
    assert abs(link.loss - 120 / 495) < 1e-12
    assert abs(link.rate_hz - 75.0) < 3.0  # 75 % of 100 Hz arrives


def test_heel_lift_alert_rings_once_and_expires_after_two_seconds():
    m = LiveModel(100.0)
    t = np.arange(0, 1, 0.01)
    heel = (t > 0.5) & (t < 0.7)
    m.add(readings(t, 30 * t, heel=heel))
    assert "heel_lift" in m.alerts and m.take_bell() and not m.take_bell()
    assert abs(m.alerts["heel_lift"].t_s - 0.51) < 1e-9 and abs(
        m.alerts["heel_lift"].last_t_s - 0.69) < 1e-9
    m.add(readings(t + 1.0, 30 + 0 * t))  # heel down: still shown (< 2 s since)
    assert "heel_lift" in m.alerts and m.heel_lifts == 1
    m.add(readings(t + 2.0, 30 + 0 * t))  # 2.3 s after the last lifted sample
    assert "heel_lift" not in m.alerts
    assert m.heel_source == "heel switch"


def test_knee_drift_event_from_the_pipeline_raises_an_amber_alert():
    m = LiveModel(100.0)
    e = Event("knee_drift", 3.2, "left", "knee drifting toward the midline (6°)")
    m.add(readings([3.2], [25.0]), [e])
    a = m.alerts["knee_drift"]
    assert a.text == "KNEE DRIFT — knee drifting toward the midline (6°)" and m.knee_drifts == 1
    assert m.take_bell()


def test_rep_markers_from_the_rep_column_and_their_verdicts():
    m = LiveModel(100.0)
    t = np.arange(0, 6, 0.01)
    rep = np.where((t > 1) & (t < 2), 0, np.where((t > 3) & (t < 4), 1, -1))
    valid = ~((t > 3.5) & (t < 4))  # the second rep's heel lifted
    m.add(readings(t, 20 * (rep >= 0), rep=rep, valid=valid))
    assert [(r.rep, r.valid) for r in m.reps] == [(1, True), (2, False)]
    assert abs(m.reps[0].t_s - 1.01) < 1e-9 and abs(m.reps[1].t_s - 3.01) < 1e-9


def test_gauge_marks_the_target_and_turns_green():
    g = render_gauge(36.0, 30.0, width=61)  # 1 column per degree
    bar, scale = str(g).split("\n")
    assert bar.index("┃") == 30 and scale.index("▲") == 30
    assert bar[:30] == "█" * 30 and bar[31:37] == "█" * 6 and bar[37] == "░"
    green = [s for s in g.spans if "green" in str(s.style)]
    assert green and not [s for s in render_gauge(20.0, 30.0, 61).spans
                          if "green" in str(s.style)]


def test_trace_columns_follow_the_angle_and_mark_reps():
    t = np.arange(0, 10, 0.01)
    angle = np.where(t < 5, 0.0, 60.0)
    from dorsimeter.tui.model import RepMarker

    text = render_trace(t, angle, np.zeros(len(t), bool), [RepMarker(5.0, 3, "left", False)],
                        width=54, height=11, window_s=10.0, target_deg=30.0)
    rows = str(text).split("\n")
    plot = [r[4:] for r in rows[:-1]]
    assert all(r[:24].strip("╌ ") == "" for r in plot)  # first half: at 0°
    assert all(r[26:].strip() == "█" * len(r[26:].strip()) for r in plot)  # then full height
    assert rows[-1][4 + 25:4 + 28] == "▲3✗"
    target_row = [r for r in rows if "30°" in r]
    assert len(target_row) == 1 and "╌" in target_row[0]  # the target row, labelled
    assert rows.index(target_row[0]) == 4  # 30° of 0–60° over 10 rows, top row first


def test_block_digits_read_back():
    for value in ("38.2°", "-4.0°", "10.7°"):
        assert decode_big(big_text_lines(value), _GLYPHS) == value
    assert len(big_text_lines("1", scale=2)) == 10


def test_leg_alert_line_puts_the_legs_own_alert_first():
    from dorsimeter.tui.model import Alert
    from dorsimeter.tui.widgets import render_leg_alert

    row = {"best_deg": 31.24, "kind": "best", "trials": 4, "invalid": 1}
    text, cls = render_leg_alert({}, row)
    assert (str(text), cls) == ("best 31.2° · 4 trials · 1 heel lift", "")  # in words
    drift = Alert("knee_drift", "KNEE DRIFT — knee drifting in", 1.0, 1.2)
    lift = Alert("heel_lift", "HEEL LIFT — heel lifted (shin sensor)", 1.1, 1.3)
    assert render_leg_alert({"knee_drift": drift}, row)[1] == "warn"
    text, cls = render_leg_alert({"knee_drift": drift, "heel_lift": lift}, row)
    assert cls == "on" and str(text) == "⚠ HEEL LIFT — heel lifted (shin sensor)"
    text, cls = render_leg_alert({"heel_lift": lift}, row, error="lost")
    assert (str(text), cls) == ("✗ SENSOR LOST", "on")
    assert str(render_leg_alert({}, {**row, "best_deg": None, "invalid": 0})[0]) == \
        "best — · 4 trials"
