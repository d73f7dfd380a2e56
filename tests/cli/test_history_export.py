"""record → history → export → report from the command line, against one real data directory."""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat

import numpy as np
import pandas as pd
import pytest

from dorsimeter.cli import main
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.session.asymmetry import asymmetry
from dorsimeter.store import Store
from dorsimeter.store.summary import summarize


def record(home, tmp_path, side: str, seed: int, athlete: str = "Ana") -> int:
    raw = tmp_path / f"raw-{side}-{seed}.csv"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["record", "--speed", "0", "--duration", "40", "--side", side, "--seed",
                     str(seed), "--out", str(raw), "--athlete", athlete,
                     "--tibia-length-cm", "41.5", "--home", str(home)]) == 0
    out = buf.getvalue()
    m = re.search(r"^stored session (\d+)$", out, re.M)
    assert m, out
    sid = int(m.group(1))
    # what record printed is what the history holds
    printed = re.search(rf"{side}: .*best valid ([\d.]+)°, mean of best 3 ([\d.]+)°", out)
    with Store.open(home) as store:
        s = summarize(store.trials(sid))[side]
    assert printed and printed.groups() == (f"{s.best_valid_deg:.1f}", f"{s.mean_best3_deg:.1f}")
    return sid


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """Three sessions recorded into one data directory (raw files beside it)."""
    tmp = tmp_path_factory.mktemp("cli")
    home = tmp / "home"
    ids = [record(home, tmp, side, seed) for side, seed in (("left", 1), ("right", 2),
                                                              ("left", 3))]
    return home, tmp, ids


@pytest.fixture
def home(rig):
    return rig[0]


@pytest.fixture
def sessions(rig):
    return rig[2]


def test_record_stores_the_session_it_prints(sessions, home, rig):
    assert len(set(sessions)) == 3 and sessions == sorted(sessions)
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home / "history.sqlite3").st_mode) == 0o600
    with Store.open(home) as store:
        info = store.session(sessions[-1])
        assert info.ended and info.kind == "record" and info.athlete == "Ana"
        assert info.raw_path == str((rig[1] / "raw-left-3.csv").resolve())
        assert store.find_athlete("Ana").tibia_length_m == 0.415
        assert store.count_samples(info.id) > 3000
        assert summarize(store.trials(info.id))["left"].n_scored >= 4
        assert [s for s, _, _ in store.calibrations(info.id)] == ["left"]


def test_history_prints_the_stored_trend_per_side(sessions, home, capsys):
    assert main(["history", "Ana", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    with Store.open(home) as store:
        best = {s: summarize(store.trials(s)) for s in sessions}
    rows = {int(m[0]): m for m in re.findall(
        r"^\s+(\d+) \s+\S+ \S+\s+wall test\s+(\S+)\s+(\S+)\s+", out, re.M)}  # what was done
    assert set(sessions) <= set(rows)
    for s in sessions:
        for side, shown in zip(("left", "right"), rows[s][1:], strict=True):
            v = best[s][side].best_valid_deg
            assert shown == ("—" if v is None else f"{v:.2f}°")
    lefts = [best[s]["left"].best_valid_deg for s in sessions if best[s]["left"].best_valid_deg]
    first, last = lefts[0], lefts[-1]
    assert f"{first:.2f}° → {last:.2f}° ({last - first:+.2f}° over" in out
    # left and right were recorded in separate sessions: the latest of each are compared
    right = best[sessions[1]]["right"].best_valid_deg
    a = asymmetry(last, right)
    latest = (f"latest (left from session {sessions[2]}, right from session {sessions[1]}): "
              "left − right: ")
    assert f"{latest}{a.diff_deg:+.1f}°" in out
    # the percent as the report gives it (9.6 % read "10 %, band <10 %" before)
    assert f"({a.percent:.1f} % of the better side, band {a.band};" in out
    assert ("beyond the MDC" in out) == a.beyond_mdc


def test_history_of_an_unknown_athlete_is_one_line(home, capsys):
    assert main(["history", "Nobody", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no athlete 'Nobody'" in err and "Ana" in err


def test_export_latest_writes_both_files_matching_the_database(sessions, home, tmp_path,
                                                               capsys, monkeypatch):
    monkeypatch.setenv("DORSIMETER_HOME", str(home))  # the env var instead of --home
    out_dir = tmp_path / "export"
    assert main(["export", "latest", "--format", "csv", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    sid = sessions[-1]
    samples = out_dir / f"dorsimeter-session-{sid}-samples.csv"
    trials = out_dir / f"dorsimeter-session-{sid}-trials.csv"
    with Store.open(home) as store:
        s, t, info = store.samples(sid), store.trials(sid), store.session(sid)
    assert f"wrote {len(s)} samples to {samples}" in out
    assert f"wrote {len(t)} trials to {trials}" in out
    df = pd.read_csv(samples)
    assert df["tibia_angle_deg"].tolist() == s.tibia_angle_deg.tolist()
    assert pd.read_csv(trials)["angle_deg"].tolist() == [x.angle_deg for x in t]
    # raw + derived: the raw IMU values of every sample, from the session's raw recording
    raw = read_raw_csv(info.raw_path)
    assert np.array_equal(df["t_s"].to_numpy(), raw.t_s)
    assert np.array_equal(df[["acc_x_m_s2", "acc_y_m_s2", "acc_z_m_s2"]].to_numpy(),
                          raw.acc_m_s2)
    assert np.array_equal(df[["gyr_x_rad_s", "gyr_y_rad_s", "gyr_z_rad_s"]].to_numpy(),
                          raw.gyr_rad_s)


def test_a_moved_raw_recording_leaves_the_raw_columns_empty_with_a_note(tmp_path, capsys):
    home = tmp_path / "home"
    sid = record(home, tmp_path, "right", 5)
    raw_path = tmp_path / "raw-right-5.csv"
    raw_path.rename(tmp_path / "moved.csv")
    assert main(["export", str(sid), "--out", str(tmp_path / "x"), "--home", str(home)]) == 0
    err = capsys.readouterr().err
    assert "raw columns left empty" in err and "raw-right-5.csv" in err
    df = pd.read_csv(tmp_path / "x" / f"dorsimeter-session-{sid}-samples.csv")
    assert df["acc_x_m_s2"].isna().all() and df["tibia_angle_deg"].notna().all()


def test_report_of_a_session_by_id(sessions, home, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(sessions[0]), "--out", str(out), "--home", str(home)]) == 0
    assert f"wrote report to {out}" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    with Store.open(home) as store:
        best = summarize(store.trials(sessions[0]))["left"].best_valid_deg
    assert f'data-value="{best!r}">{best:.2f}°' in text
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600


@pytest.mark.parametrize("argv, expect", [
    (["export", "999", "--out", "x"], r"no session 999"),
    (["export", "yesterday", "--out", "x"], r"session 'yesterday': expected a session id or "
                                            r"'latest'"),
    (["report", "latest", "--out", "r.html"], r"no sessions stored yet"),
])
def test_bad_session_references_are_one_line(tmp_path, capsys, argv, expect):
    assert main([*argv, "--home", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and re.search(expect, err), err


def test_the_real_monitor_stores_its_session_like_record(rig, tmp_path):
    """`dorsimeter monitor` in a pseudo-terminal replays record's raw file; quitting stores it."""
    from tests.cli.pty_monitor import run_monitor_in_pty

    home, raw_dir, ids = rig
    mon_home = tmp_path / "mon"
    with Store.open(home) as store:
        want = store.samples(ids[0])
        want_trials = store.trials(ids[0])
    code, text, sent = run_monitor_in_pty(
        ["--sensor", f"replay:{raw_dir / 'raw-left-1.csv'}", "--speed", "0", "--athlete", "Mo"],
        mon_home, len(want))
    assert code == 0, text[-2000:]
    m = re.search(r"stored session (\d+)", text)
    assert sent and m, text[-2000:]
    with Store.open(mon_home) as store:
        info = store.session(int(m.group(1)))
        assert (info.kind, info.athlete, info.ended) == ("monitor", "Mo", True)
        got = store.samples(info.id)
        got_trials = store.trials(info.id)
    # the replay of record's raw file through the live pipeline gives record's numbers
    assert np.array_equal(got.t_s, want.t_s)
    assert np.array_equal(got.tibia_angle_deg, want.tibia_angle_deg)
    assert [(t.side, t.angle_deg, t.scored) for t in got_trials] == [
        (t.side, t.angle_deg, t.scored) for t in want_trials]


def test_export_all_of_an_athlete_writes_every_session(sessions, home, tmp_path, capsys):
    out_dir = tmp_path / "all"
    assert main(["export", "all", "--athlete", "Ana", "--out", str(out_dir),
                 "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        f"dorsimeter-session-{s}-{kind}.csv" for s in sessions for kind in ("samples", "trials"))
    assert out.count("wrote ") == 2 * len(sessions)
    assert main(["export", "all", "--athlete", "Nobody", "--out", str(out_dir),
                 "--home", str(home)]) == 2
    assert "no athlete 'Nobody'" in capsys.readouterr().err


def test_a_two_sensor_session_exports_each_legs_raw_values(tmp_path, capsys):
    """`record --right-sensor`: the session keeps both raw CSVs, so the export's raw columns
    are filled for both legs from their own files."""
    home = tmp_path / "home"
    out = tmp_path / "s.csv"
    assert main(["record", "--sensor", "sim", "--right-sensor", "sim", "--speed", "0",
                 "--duration", "16", "--out", str(out), "--home", str(home)]) == 0
    sid = int(re.search(r"stored session (\d+)", capsys.readouterr().out).group(1))
    with Store.open(home) as store:
        info = store.session(sid)
    assert [p.rsplit("-", 1)[-1] for p in info.raw_paths] == ["left.csv", "right.csv"]
    assert main(["export", str(sid), "--out", str(tmp_path / "x"), "--home", str(home)]) == 0
    df = pd.read_csv(tmp_path / "x" / f"dorsimeter-session-{sid}-samples.csv")
    for side in ("left", "right"):
        raw = read_raw_csv(tmp_path / f"s-{side}.csv")
        mine = df[df["side"] == side]
        assert len(mine) == len(raw.t_s) > 1000
        assert np.array_equal(mine[["acc_x_m_s2", "acc_y_m_s2", "acc_z_m_s2"]].to_numpy(),
                              raw.acc_m_s2)


def test_the_placement_is_stored_and_shown_in_the_export_and_report(tmp_path, capsys):
    """mounting.md's placement setting: given once, stored with the session, in the trials
    export and the report (the inclinometer-equivalent reading depends on it)."""
    import csv

    home = str(tmp_path / "home")
    assert main(["record", "--sensor", "sim", "--speed", "0", "--duration", "30", "--out",
                 str(tmp_path / "r.csv"), "--home", home, "--placement-cm", "12.5"]) == 0
    assert main(["export", "latest", "--out", str(tmp_path / "x"), "--home", home]) == 0
    (trials,) = (tmp_path / "x").glob("*-trials.csv")
    rows = list(csv.DictReader(trials.read_text(encoding="utf-8-sig").splitlines()))
    assert rows and {r["placement_cm"] for r in rows} == {"12.5"}
    assert main(["report", "latest", "--out", str(tmp_path / "r.html"), "--home", home]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'data-value="12.5">12.5 cm</span> below the tibial tuberosity' in page
    capsys.readouterr()
    # a usage error: one line, exit 2
    assert main(["record", "--sensor", "sim", "--duration", "1", "--out", str(tmp_path / "q.csv"),
                 "--home", home, "--placement-cm", "55"]) == 2
    err = capsys.readouterr().err
    assert "expected 0–40 cm below the tibial tuberosity" in err and err.count("\n") == 1
