"""The history database: data directory, owner-only files, migrations, restarts, recorder."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys

import numpy as np
import pytest

from dorsimeter.errors import DorsimeterError
from dorsimeter.pipeline import Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.store import Store, data_dir, db_path, schema
from dorsimeter.store.recorder import SessionRecorder
from dorsimeter.store.summary import summarize
from dorsimeter.types import Readings
from tests.conftest import simulate


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0)  # the most permissive umask: our modes must not rely on it
    yield
    os.umask(old)


def test_data_dir_option_beats_env_beats_platform_default(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("DORSIMETER_HOME", raising=False)
    assert data_dir() == tmp_path / "xdg" / "dorsimeter"
    monkeypatch.setenv("DORSIMETER_HOME", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "opt") == tmp_path / "opt"
    assert db_path() == tmp_path / "env" / "history.sqlite3"
    for d in ("xdg/dorsimeter", "env", "opt"):
        assert mode(tmp_path / d) == 0o700


def test_database_directory_and_wal_files_are_owner_only(tmp_path, loose_umask):
    home = tmp_path / "a" / "home"
    with Store.open(home) as store:
        sid = store.start_session("record", athlete="A")
        store.add_samples(sid, Readings(np.arange(3.0), np.ones(3), np.zeros(3),
                                        np.array(["left"] * 3, dtype=object)))
        files = sorted(p.name for p in home.iterdir() if p.is_file())
        assert files == ["history.sqlite3", "history.sqlite3-shm", "history.sqlite3-wal"]
        assert {p.name: mode(p) for p in home.iterdir() if p.is_file()} == dict.fromkeys(
            files, 0o600)
        # the running session's liveness lock (dorsimeter.store.recovery): owner-only too
        assert [p.name for p in home.iterdir() if p.is_dir()] == ["running"]
        assert mode(home / "running") == 0o700
        assert mode(home / "running" / f"session-{sid}.lock") == 0o600
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert mode(home) == 0o700


def test_an_existing_world_readable_database_is_made_owner_only(tmp_path):
    home = tmp_path / "h"
    Store.open(home).close()
    os.chmod(home / "history.sqlite3", 0o644)
    Store.open(home).close()
    assert mode(home / "history.sqlite3") == 0o600


def _v1_database(path) -> None:
    """A database as the first schema version left it, with data in it."""
    db = sqlite3.connect(path, isolation_level=None)
    schema.migrate(db, target=1)
    db.execute("INSERT INTO athletes (name, tibia_length_m, created_utc) "
               "VALUES ('Ana', 0.41, '2026-01-02T03:04:05.000000Z')")
    db.execute("INSERT INTO sessions (athlete_id, kind, start_utc, ended, raw_path) "
               "VALUES (1, 'record', '2026-01-02T03:04:05.000000Z', 1, '/data/raw.csv')")
    db.execute("INSERT INTO trials (session_id, side, rep, angle_deg, valid, heel_source, "
               "t_start_s, t_end_s) VALUES (1, 'left', 1, 37.125, 1, 'shank_imu', 2.5, 6.25)")
    db.close()


def test_migration_from_version_1_keeps_the_data_and_adds_samples(tmp_path):
    path = tmp_path / "history.sqlite3"
    _v1_database(path)
    with Store(path) as store:
        assert schema.version(store.db) == schema.LATEST == 7
        [s] = store.sessions("Ana")
        assert (s.id, s.kind, s.raw_path, s.ended, s.t0_s) == (1, "record", "/data/raw.csv",
                                                               True, None)
        [t] = store.trials(1)
        assert (t.side, t.angle_deg, t.valid, t.heel_source, t.t_start_s, t.t_end_s) == (
            "left", 37.125, True, "shank_imu", 2.5, 6.25)
        assert store.find_athlete("Ana").tibia_length_m == 0.41
        store.add_samples(1, Readings(np.array([0.0, 0.01]), np.array([1.5, 2.5]),
                                      np.zeros(2), np.array(["left", "left"], dtype=object)))
        assert store.samples(1).tibia_angle_deg.tolist() == [1.5, 2.5]


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "history.sqlite3"
    _v1_database(path)

    def broken(db):
        schema._v2_samples(db)
        raise RuntimeError("disk full half way")

    monkeypatch.setattr(schema, "MIGRATIONS", [schema._v1_base, broken])
    with pytest.raises(RuntimeError):
        Store(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "samples" not in tables and "trials" in tables
    cols = [r[1] for r in db.execute("PRAGMA table_info(sessions)")]
    assert "t0_s" not in cols


def test_a_newer_schema_or_a_foreign_file_is_refused_with_one_line(tmp_path):
    path = tmp_path / "history.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    db.close()
    with pytest.raises(DorsimeterError, match="newer than this dorsimeter understands"):
        Store(path)
    other = tmp_path / "junk.sqlite3"
    other.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DorsimeterError, match="not a dorsimeter history database"):
        Store(other)


def test_history_survives_a_restart_in_a_new_process(tmp_path):
    home = tmp_path / "home"
    with Store.open(home) as store:
        sid = store.start_session("monitor", athlete="Bo", sensor="sim")
        store.add_trial(sid, "right", 33.3, False, "heel_switch", 1.0, 4.0, rep=2)
        store.end_session(sid)
    code = ("from dorsimeter.store import Store; s = Store.open(); i = s.session('latest'); "
            "t = s.trials(i.id)[0]; print(i.id, i.athlete, i.sensor, i.ended, t.angle_deg, "
            "t.valid, t.heel_source, t.rep)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "DORSIMETER_HOME": str(home)}, check=True).stdout
    assert out.split() == [str(sid), "Bo", "sim", "True", "33.3", "False", "heel_switch", "2"]


def test_trial_validation_and_session_lookup(tmp_path):
    with Store.open(tmp_path) as store:
        with pytest.raises(DorsimeterError, match="no sessions stored yet"):
            store.session("latest")
        sid = store.start_session("record")
        with pytest.raises(DorsimeterError, match="side 'middle'"):
            store.add_trial(sid, "middle", 30.0, True, None, 0.0, 1.0)
        with pytest.raises(DorsimeterError, match="not a finite number"):
            store.add_trial(sid, "left", float("nan"), True, None, 0.0, 1.0)
        with pytest.raises(DorsimeterError, match="no session 99"):
            store.session(99)
        with pytest.raises(DorsimeterError, match="expected a session id or 'latest'"):
            store.session("yesterday")
        assert store.session("LATEST").id == sid == store.session(str(sid)).id


def test_recorder_stores_every_reading_and_each_rep_as_the_pipeline_reports_it(tmp_path):
    batch = simulate(60.0, side="left", seed=4)
    pipe = Pipeline(100.0, side="left")
    with Store.open(tmp_path) as store:
        rec = SessionRecorder(store, "record", athlete="Cy", sensor="sim", sensor_kind="sim")
        info = store.session(rec.session_id)
        assert info.ended is False and info.athlete == "Cy"  # the row exists before any sample
        results = SessionResults()
        push = rec.tap(pipe.push, results)
        all_readings, reps = [], []
        for i in range(0, len(batch), 7):  # small batches, as a BLE source delivers them
            r, events = push(batch.slice(i, i + 7))
            all_readings.append(r)
            reps += [e.rep for e in events if e.kind == "rep" and e.rep.is_trial]
        readings = Readings.concat(all_readings)
        assert len(reps) >= 5
        assert len(store.trials(rec.session_id)) == len(reps)  # stored before finish
        assert store.session(rec.session_id).ended is False
        incremental = store.trials(rec.session_id)
        sid = rec.finish(results)
        info = store.session(sid)
        assert info.ended and info.end_utc >= info.start_utc and info.t0_s == readings.t_s[0]
        s = store.samples(sid)
        assert len(s) == len(readings) == store.count_samples(sid)
        assert np.array_equal(s.t_s, readings.t_s)
        assert np.array_equal(s.tibia_angle_deg, readings.tibia_angle_deg)
        assert np.array_equal(s.knee_track_deg, readings.knee_track_deg)
        in_rep = readings.rep >= 0
        assert [x is None for x in s.rep] == list(~in_rep)
        assert np.array_equal(np.array([x for x in s.rep if x is not None]),
                              readings.rep[in_rep] + 1)  # stored 1-based, as trials number them
        trials = store.trials(sid)
        assert [t.rep for t in trials] == [r.rep_no for r in reps] == list(
            range(1, len(reps) + 1))  # the session's numbers: 1-based, calibration excluded
        assert [t.angle_deg for t in trials] == [
            r.end_range_deg if r.end_range_deg is not None else r.peak_deg for r in reps]
        assert [t.scored for t in trials] == [r.scored for r in reps]
        held = [t for t in trials if t.scored]
        assert held and all(t.hold_end_s - t.hold_start_s == pytest.approx(t.hold_s)
                            and t.t_start_s < t.hold_start_s < t.hold_end_s <= t.t_end_s
                            for t in held)
        # the results' own reps replaced the incremental ones: the same numbers
        assert [(t.side, t.angle_deg, t.valid, t.t_start_s, t.t_end_s) for t in trials] == [
            (t.side, t.angle_deg, t.valid, t.t_start_s, t.t_end_s) for t in incremental]
        assert summarize(trials)["left"].best_valid_deg == results.best_valid_deg["left"]
        assert summarize(trials)["left"].mean_best3_deg == results.mean_best3_deg["left"]
        assert [side for side, origin, _ in store.calibrations(sid)] == ["left"]
        cal = store.calibrations(sid)[0][2]
        assert cal["z_axis"] == list(pipe.calibrations["left"].z_axis)


def test_results_without_reps_keep_the_per_side_maximum_unscored(tmp_path):
    results = SessionResults()
    r = Readings(np.array([1.0, 2.0, 3.0]), np.array([10.0, 31.25, 20.0]), np.zeros(3),
                 np.array(["right"] * 3, dtype=object))
    results.add(r)
    with Store.open(tmp_path) as store:
        rec = SessionRecorder(store, "record")
        rec.add(r)
        sid = rec.finish(results)
        [t] = store.trials(sid)
        assert (t.side, t.angle_deg, t.valid, t.scored, t.t_start_s, t.t_end_s, t.exercise) == (
            "right", 31.25, None, False, 1.0, 3.0, "session_max")
        assert summarize([t])["right"].best_valid_deg is None  # a maximum is not a score


def test_migration_from_version_2_adds_the_hold_interval(tmp_path):
    path = tmp_path / "history.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    schema.migrate(db, target=2)
    db.execute("INSERT INTO sessions (kind, start_utc, t0_s) VALUES ('monitor', 'x', 1.5)")
    db.execute("INSERT INTO trials (session_id, side, rep, angle_deg, scored, peak_deg) "
               "VALUES (1, 'right', 3, 33.5, 1, 34.0)")
    db.close()
    with Store(path) as store:
        [t] = store.trials(1)
        assert (t.rep, t.angle_deg, t.scored, t.peak_deg, t.hold_start_s) == (3, 33.5, True,
                                                                              34.0, None)
        assert store.session(1).t0_s == 1.5
        store.add_trial(1, "left", 30.0, True, None, 0.0, 5.0, hold_start_s=2.0, hold_end_s=3.5)
        assert store.trials(1)[1].hold_end_s == 3.5


def test_a_full_disk_is_a_one_line_store_error_and_loses_nothing_committed(tmp_path):
    from dorsimeter.store.db import StoreError

    with Store.open(tmp_path) as store:
        sid = store.start_session("record")
        r = Readings(np.arange(100.0), np.ones(100), np.zeros(100),
                     np.array(["left"] * 100, dtype=object))
        store.add_samples(sid, r)
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + 1}")  # the disk is now full
        big = Readings(np.arange(50_000.0), np.ones(50_000), np.zeros(50_000),
                       np.array(["left"] * 50_000, dtype=object))
        with pytest.raises(StoreError, match=r"history\.sqlite3: cannot write the history "
                                             r"\(database or disk is full\)") as e:
            store.add_samples(sid, big)
        assert e.value.exit_code == 1 and "\n" not in str(e.value)
        assert store.count_samples(sid) == 100  # the failed batch rolled back, the rest is kept
        assert not store.db.in_transaction


def test_version_3_gains_the_session_legs_each_with_its_sensor_and_clock(tmp_path):
    """Migration 4: what each leg of a session was measured with. A version-3 file keeps its
    sessions (no legs known); new samples give each leg its own clock anchor."""
    path = tmp_path / "history.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    schema.migrate(db, target=3)
    db.execute("INSERT INTO sessions (kind, start_utc, ended) "
               "VALUES ('record', '2026-01-02T03:04:05.000000Z', 1)")
    db.close()
    with Store(path) as store:
        assert schema.version(store.db) >= 4
        assert store.legs(1) == {}
        store.add_leg(1, "left", "ble:AA:BB:CC:DD:EE:01", "ble")
        store.add_samples(1, Readings(np.array([5.0, 5.01]), np.ones(2), np.zeros(2),
                                      np.array(["left", "left"], dtype=object)),
                          arrived_utc="2026-01-02T03:10:00.010000Z")
        store.add_samples(1, Readings(np.array([0.5, 0.51]), np.ones(2), np.zeros(2),
                                      np.array(["right", "right"], dtype=object)),
                          arrived_utc="2026-01-02T03:20:00.010000Z")
        legs = store.legs(1)
        assert legs["left"].sensor == "ble:AA:BB:CC:DD:EE:01" and legs["right"].sensor is None
        assert (legs["left"].t0_s, legs["left"].t0_utc) == (5.0, "2026-01-02T03:10:00.000000Z")
        assert (legs["right"].t0_s, legs["right"].t0_utc) == (0.5,
                                                              "2026-01-02T03:20:00.000000Z")


def test_a_session_continued_for_the_other_leg_keeps_the_first_legs_trials(tmp_path):
    from dorsimeter.detect.reps import RepRecord
    from dorsimeter.session.results import SessionResults
    from dorsimeter.store.recorder import SessionRecorder, trials_from_results

    home = tmp_path / "h"
    with Store.open(home) as store:
        first = SessionRecorder(store, "record", athlete="Ana", sensor="sim",
                                legs={"left": ("sim", None)})
        store.add_trial(first.session_id, "left", 38.0, True, "shank_imu", 1.0, 4.0, rep=1,
                        scored=True)
        first.kept = store.trials(first.session_id)  # as if recorded
        sid = first.finish(SessionResults())  # nothing counted in this recording
        assert [t.side for t in store.trials(sid)] == ["left"]
        again = SessionRecorder(store, "record", athlete="Ana", sensor="sim:2",
                                session_id=sid, raw_path=str(tmp_path / "right.csv"),
                                legs={"right": ("sim:2", str(tmp_path / "right.csv"))})
        assert not store.session(sid).ended
        results = SessionResults()
        results.add_counted("right", 1, RepRecord(0, "right", 1.0, 4.0, peak_deg=33.0,
                                                  end_range_deg=33.0, hold_s=1.0,
                                                  hold_reached_s=2.0, heel_source="shank_imu"))
        assert len(trials_from_results(results, {})) == 1
        assert again.finish(results) == sid
        info = store.session(sid)
        assert info.ended and info.raw_paths == [str((tmp_path / "right.csv").resolve())]
        assert sorted((t.side, t.angle_deg) for t in store.trials(sid)) == [
            ("left", 38.0), ("right", 33.0)]
        legs = store.legs(sid)
        assert {s: (leg.sensor, leg.own_clock) for s, leg in legs.items()} == {
            "left": ("sim", False), "right": ("sim:2", True)}
        assert len(store.sessions("Ana")) == 1
