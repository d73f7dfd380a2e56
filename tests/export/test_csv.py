"""CSV export: every stored number comes back bit for bit through pandas' reader."""

from __future__ import annotations

import os
import re
import stat
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from dorsimeter.export import SAMPLE_COLUMNS, TRIAL_COLUMNS, export_session_csv
from dorsimeter.store import Store
from dorsimeter.store.db import parse_utc
from dorsimeter.store.summary import summarize
from tests.export.sessions import stored_session


@pytest.fixture
def exported(tmp_path):
    store = Store.open(tmp_path / "home")
    sid = stored_session(store)
    paths = export_session_csv(store, "latest", tmp_path / "out" / "csv")
    yield store, sid, paths
    store.close()


def test_samples_round_trip_through_pandas_exactly(exported):
    store, sid, (samples_path, _, n_samples, _) = exported
    df = pd.read_csv(samples_path)
    s = store.samples(sid)
    info = store.session(sid)
    assert tuple(df.columns) == SAMPLE_COLUMNS and len(df) == len(s) == n_samples
    assert np.array_equal(df["t_s"].to_numpy(), s.t_s)
    assert np.array_equal(df["tibia_angle_deg"].to_numpy(), s.tibia_angle_deg)
    assert np.array_equal(df["knee_track_deg"].to_numpy(), s.knee_track_deg)
    assert df["side"].tolist() == s.side
    assert set(df["sensor"]) == {"sim ☃"}
    assert df["heel_source"].where(df["heel_source"].notna(), None).tolist() == s.heel_source
    # a sample's rep number is the session's (the stored trial it lies in), never the
    # pipeline's own index; samples of movements the session did not count have none
    as_int = [None if pd.isna(v) else int(v) for v in df["rep_number"]]
    assert any(v is not None for v in as_int) and None in as_int
    trials = store.trials(sid)
    for side, t, rep, number, ex, set_no in zip(df["side"], df["t_s"], s.rep, as_int,
                                                df["exercise"], df["set_number"], strict=True):
        if rep is None:
            assert number is None
        elif number is not None:
            [trial] = [x for x in trials if (x.side, x.rep) == (side, number)
                       and x.t_start_s <= t < x.t_end_s]
            assert (ex, int(set_no)) == (trial.exercise, trial.set_no)
    counted = {(x.side, x.rep) for x in trials if x.t_start_s is not None}
    assert {(sd, v) for sd, v in zip(df["side"], as_int, strict=True) if v is not None} <= counted
    assert [None if pd.isna(v) else int(v) for v in df["heel_lift_bool"]] == s.heel_lift
    assert [None if pd.isna(v) else int(v) for v in df["rep_valid_bool"]] == s.rep_valid
    # UTC: the session's anchor plus device time, to the microsecond
    t0 = parse_utc(info.t0_utc)
    times = pd.to_datetime(df["time_utc_iso8601"], utc=True, format="ISO8601")
    expect = [t0 + timedelta(seconds=t - info.t0_s) for t in s.t_s[[0, 1234, -1]]]
    assert [t.to_pydatetime() for t in times.iloc[[0, 1234, -1]]] == expect
    assert times.is_monotonic_increasing


def test_trials_round_trip_with_the_side_summary(exported):
    store, sid, (_, trials_path, _, n_trials) = exported
    df = pd.read_csv(trials_path, keep_default_na=False, na_values=[""])
    trials = store.trials(sid)
    assert tuple(df.columns) == TRIAL_COLUMNS and len(df) == len(trials) == n_trials
    assert set(df["athlete"]) == {"Zoë Ødegård"} and set(df["session_id"]) == {sid}
    assert df["angle_deg"].tolist() == [t.angle_deg for t in trials]
    assert 1 / 3 in df["angle_deg"].tolist()
    for col, attr in (("t_start_s", "t_start_s"), ("t_end_s", "t_end_s"), ("hold_s", "hold_s"),
                      ("peak_deg", "peak_deg"), ("rep_number", "rep")):
        assert [None if pd.isna(v) else v for v in df[col]] == [getattr(t, attr) for t in trials]
    assert [None if pd.isna(v) else bool(v) for v in df["valid_bool"]] == [
        t.valid for t in trials]
    assert df["scored_bool"].astype(bool).tolist() == [t.counts for t in trials]
    lifted = df[df["rep_number"] == 99].iloc[0]
    assert (lifted["heel_source"], lifted["valid_bool"], lifted["scored_bool"]) == (
        "heel_switch", 0, 0)
    best = df[df["best_of_side_bool"] == 1]
    summary = summarize(trials)
    assert sorted(best["side"]) == ["left", "right"]
    for _, row in best.iterrows():
        assert row["angle_deg"] == summary[row["side"]].best_valid_deg


def test_export_files_are_owner_only_utf8_with_units_in_the_names(exported):
    _, _, (samples_path, trials_path, _, _) = exported
    assert stat.S_IMODE(os.stat(samples_path.parent).st_mode) == 0o700
    for p in (samples_path, trials_path):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
        raw = p.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets pick UTF-8
        raw.decode("utf-8")
    quantities = [c for c in SAMPLE_COLUMNS + TRIAL_COLUMNS
                  if c not in ("side", "sensor", "heel_source", "phase", "athlete", "exercise",
                               "session_id")]
    assert all(c.endswith(("_deg", "_s", "_m_s2", "_cm", "_bool", "_number", "_iso8601"))
               for c in quantities)


def test_exporting_again_replaces_the_files_and_keeps_them_private(exported, tmp_path):
    store, sid, (samples_path, _, _, _) = exported
    os.chmod(samples_path, 0o644)
    again = export_session_csv(store, sid, samples_path.parent)
    assert again[0] == samples_path and stat.S_IMODE(os.stat(samples_path).st_mode) == 0o600
    assert len(pd.read_csv(samples_path)) == again[2]


def test_a_long_export_shows_a_progress_bar_on_stderr(tmp_path, monkeypatch, capsys):
    from dorsimeter.export import progress

    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stderr counts as a terminal, as for a user
    monkeypatch.setattr(progress, "MIN_STEPS_FOR_BAR", 1000)
    with Store.open(tmp_path / "home") as store:
        sid = stored_session(store, 20.0)
        n = store.count_samples(sid)
        samples_path, _, written, _ = export_session_csv(store, sid, tmp_path / "out")
    captured = capsys.readouterr()
    assert written == n > 1000
    assert f"exporting session {sid}" in captured.err and f"{n}/{n}" in captured.err
    assert captured.out == ""
    assert len(pd.read_csv(samples_path)) == n  # the bar went to stderr, not into the file


def test_each_sample_carries_its_rep_phase(exported):
    store, sid, (samples_path, _, _, _) = exported
    df = pd.read_csv(samples_path)
    moving = np.array([r is not None for r in store.samples(sid).rep])
    assert set(df.loc[~moving, "phase"]) == {"rest"}
    # a movement the session did not count (no trial): no rep number, no phase
    assert df.loc[moving & df["rep_number"].isna().to_numpy(), "phase"].isna().all()
    trials = {(t.side, t.rep): t for t in store.trials(sid) if t.rep is not None}
    for (side, rep), g in df.dropna(subset=["rep_number"]).groupby(["side", "rep_number"]):
        t = trials.get((side, int(rep)))
        if t is None:  # the side's stream stopped mid-rep: no trial, no phase
            assert g["phase"].isna().all()
            continue
        phases = "".join(p[0] for p in g["phase"])  # d…h…r…: one drive, one hold, one return
        assert re.fullmatch(r"d+h*r+", phases), (side, rep, phases)
        hold = g[g["phase"] == "hold"]
        if t.hold_start_s is None:
            assert hold.empty
            continue
        assert hold["t_s"].min() >= t.hold_start_s and hold["t_s"].max() < t.hold_end_s
        # the scored angle is the median of the hold: the exported samples reproduce it
        assert float(np.median(hold["tibia_angle_deg"])) == t.angle_deg


def test_exporting_many_long_sessions_nests_the_bars(tmp_path, monkeypatch, capsys):
    from dorsimeter.cli import main
    from dorsimeter.export import progress

    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setattr(progress, "MIN_STEPS_FOR_BAR", 1000)
    with Store.open(tmp_path / "home") as store:
        ids = [stored_session(store, 15.0, athlete="N", seeds=(s, s + 1)) for s in (1, 3)]
    assert main(["export", "all", "--out", str(tmp_path / "out"), "--home",
                 str(tmp_path / "home")]) == 0
    err = capsys.readouterr().err
    assert "exporting sessions" in err and "2/2" in err
    assert all(f"exporting session {i}" in err for i in ids)


def test_a_sensor_restart_is_marked_on_its_exported_sample(tmp_path):
    """A power cycle mid-session (the raw CSV's ``restart`` column) shows in the export as
    ``sensor_restart_bool`` = 1 on the first sample after it, 0 on every other."""
    from dorsimeter.io.rawcsv import RawCsvWriter
    from dorsimeter.pipeline import Pipeline
    from dorsimeter.session.results import SessionResults
    from dorsimeter.sim import ShankSim
    from dorsimeter.store.recorder import SessionRecorder

    sim = ShankSim(seed=9)
    a = sim.generate(2500)
    sim.generate(200)  # the sensor is off
    b = sim.generate(1000)
    b.t_s = a.t_s[-1] + 0.01 * np.arange(1, len(b) + 1)
    b.restart = True
    raw = tmp_path / "raw.csv"
    with Store.open(tmp_path / "home") as store, RawCsvWriter(raw) as w:
        rec = SessionRecorder(store, "record", sensor="node", raw_path=raw)
        push = rec.tap(Pipeline(100.0).push)
        for batch in (a, b):
            for i in range(0, len(batch), 20):
                w.write(batch.slice(i, i + 20), "left")
                push(batch.slice(i, i + 20))
        sid = rec.finish(SessionResults())
        samples_path, _, n, _ = export_session_csv(store, sid, tmp_path / "out")
    df = pd.read_csv(samples_path)
    assert n == len(df) > 1000 and set(df["sensor_restart_bool"]) == {0, 1}
    assert df["t_s"][df["sensor_restart_bool"] == 1].tolist() == [b.t_s[0]]
