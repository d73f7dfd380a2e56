"""BIDS-Motion export: the official BIDS validator finds no error, and the dataset read back gives
the stored numbers (exactly, LATENCY and onsets to the six decimals printed)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.export.bids import CHANNELS, read_motion_tsv
from dorsimeter.export.tables import tibia_angles_from_quaternion
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.store import Store
from dorsimeter.store.db import parse_utc
from tests.export.sessions import HOSTILE_NAME, HOSTILE_NOTE, two_leg_session

VALIDATOR = shutil.which("bids-validator-deno",
                         path=os.pathsep.join([str(Path(sys.executable).parent),
                                               os.environ.get("PATH", "")]))
HALF_LAST_DIGIT_S = 5e-7 + 1e-9  # "%.6f" rounding plus float noise


def tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bids")
    home = tmp / "home"
    with Store.open(home) as store:
        sid = two_leg_session(store, tmp / "raw")
        pid = two_leg_session(store, tmp / "raw2", athlete="P-007", seconds=30.0,
                              pseudonymous=True, seed=40)
    out = tmp / "dataset"
    assert main(["export", str(sid), str(pid), "--format", "bids", "--out", str(out),
                 "--home", str(home)]) == 0
    store = Store.open(home)
    yield store, sid, pid, out
    store.close()


def _motion_files(out: Path, sub: str, ses: int) -> dict[str, Path]:
    found = sorted((out / f"sub-{sub}" / f"ses-{ses}" / "motion").glob("*_motion.tsv"))
    return {("left" if "Left_" in p.name else "right"): p for p in found}


def test_the_official_validator_finds_no_error(dataset):
    if VALIDATOR is None:
        pytest.skip("bids-validator-deno not installed (pip install -e '.[test]')")
    _, _, _, out = dataset
    p = subprocess.run([VALIDATOR, str(out), "--format", "json", "--max-rows", "-1"],
                       capture_output=True, text=True, timeout=300)
    report = json.loads(p.stdout)
    issues = report["issues"]["issues"]
    errors = [i for i in issues if i["severity"] == "error"]
    assert errors == [], errors
    assert "motion" in report["summary"]["dataTypes"]
    assert sorted(report["summary"]["subjects"]) == ["P007", "athlete1"]
    assert p.returncode == 0


def test_layout_names_and_no_real_name_anywhere(dataset):
    store, sid, pid, out = dataset
    assert [r["participant_id"] for r in tsv(out / "participants.tsv")] == [
        "sub-P007", "sub-athlete1"]
    assert set(_motion_files(out, "athlete1", sid)) == {"left", "right"}
    assert set(_motion_files(out, "P007", pid)) == {"left", "right"}
    name = _motion_files(out, "athlete1", sid)["left"].name
    assert name == f"sub-athlete1_ses-{sid}_task-wbltest_tracksys-simLeft_motion.tsv"
    for p in out.rglob("*"):
        if p.is_file():
            text = p.read_text(encoding="utf-8")
            assert HOSTILE_NAME not in text and HOSTILE_NOTE not in text and "HYPERLINK" not in text
            assert stat.S_IMODE(p.stat().st_mode) == 0o600
        else:
            assert stat.S_IMODE(p.stat().st_mode) == 0o700


def test_motion_channels_read_back_as_stored(dataset):
    store, sid, _, out = dataset
    s = store.samples(sid)
    side_of = np.array(s.side)
    raws = {}
    for path in store.session(sid).raw_paths:
        rec = read_raw_csv(path)
        raws[str(rec.side[0])] = rec
    for side, path in _motion_files(out, "athlete1", sid).items():
        m = side_of == side
        data = read_motion_tsv(path)
        channels = tsv(path.with_name(path.name.replace("_motion.tsv", "_channels.tsv")))
        assert [c["name"] for c in channels] == [c[0] for c in CHANNELS]
        assert data.shape == (m.sum(), len(channels))  # one column per channels.tsv row
        col = {c["name"]: i for i, c in enumerate(channels)}
        t = s.t_s[m]
        assert np.max(np.abs(data[:, col["latency"]] + t[0] - t)) <= HALF_LAST_DIGIT_S
        assert np.array_equal(data[:, col["tibia_angle"]], s.tibia_angle_deg[m])  # bit for bit
        assert np.array_equal(data[:, col["knee_track"]], s.knee_track_deg[m])
        heel = np.array([np.nan if v is None else v for v in np.array(s.heel_lift, object)[m]],
                        float)
        assert np.array_equal(data[:, col["heel_lift"]], heel, equal_nan=True)
        assert np.nansum(heel) > 50  # the heel really lifted on this side
        rec = raws[side]
        assert np.array_equal(rec.t_s, t)
        acc = data[:, [col["acc_x"], col["acc_y"], col["acc_z"]]]
        gyr = data[:, [col["gyr_x"], col["gyr_y"], col["gyr_z"]]]
        assert np.array_equal(acc, rec.acc_m_s2) and np.array_equal(gyr, rec.gyr_rad_s)
        q = data[:, [col[f"tibia_quat_{k}"] for k in "wxyz"]]
        assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
        angle, track = tibia_angles_from_quaternion(q, side)
        assert np.max(np.abs(angle - s.tibia_angle_deg[m])) < 1e-9
        assert np.max(np.abs(track - s.knee_track_deg[m])) < 1e-9
        types = {c["type"] for c in channels if c["name"] == "tibia_angle"}
        assert types == {"MISC"} and {c["tracked_point"] for c in channels} == {
            f"{side.capitalize()}Shank"}
        side_json = json.loads(path.with_name(path.name.replace(".tsv", ".json")).read_text())
        assert side_json["SamplingFrequency"] == 100.0
        assert abs(side_json["SamplingFrequencyEffective"] - (len(t) - 1) / (t[-1] - t[0])) < 1e-9
        assert side_json["TaskName"] == "wbltest" and side_json["MissingValues"] == "n/a"
        assert side_json["MotionChannelCount"] == len(channels)
        assert (side_json["ACCELChannelCount"], side_json["GYROChannelCount"],
                side_json["ORNTChannelCount"], side_json["MiscChannelCount"]) == (3, 3, 4, 3)
        frames = json.loads(path.with_name(path.name.replace("_motion.tsv", "_channels.json"))
                            .read_text())["reference_frame"]["Levels"]
        assert frames["global"]["SpatialAxes"] == "ALS"


def test_events_carry_trials_holds_heel_lifts_and_results(dataset):
    store, sid, _, out = dataset
    s = store.samples(sid)
    trials = store.trials(sid)
    for side, path in _motion_files(out, "athlete1", sid).items():
        t = s.t_s[np.array(s.side) == side]
        events = tsv(path.with_name(path.name.replace("_motion.tsv", "_events.tsv")))
        onsets = [float(e["onset"]) for e in events]
        assert onsets == sorted(onsets)
        mine = [x for x in trials if x.side == side]
        got = [e for e in events if e["trial_type"] == "trial"]
        assert len(got) == len(mine) >= 5
        for e, x in zip(got, mine, strict=True):
            assert abs(float(e["onset"]) + t[0] - x.t_start_s) <= HALF_LAST_DIGIT_S
            assert abs(float(e["duration"]) - (x.t_end_s - x.t_start_s)) <= HALF_LAST_DIGIT_S
            assert float(e["angle_deg"]) == x.angle_deg  # exact
            assert e["heel_down"] == ("1" if x.valid else "0") and e["scored"] == (
                "1" if x.counts else "0")
        holds = [e for e in events if e["trial_type"] == "hold"]
        assert len(holds) == sum(x.hold_start_s is not None for x in mine)
        lifted = [x for x in mine if x.valid is False]
        lifts = [e for e in events if e["trial_type"] == "heel_lift"]
        assert len(lifted) >= 2 and len(lifts) >= len(lifted)
        for x in lifted:  # each lifted trial has a heel-lift event inside it
            assert any(x.t_start_s <= float(e["onset"]) + t[0] <= x.t_end_s for e in lifts)
    scans = tsv(out / "sub-athlete1" / f"ses-{sid}" / f"sub-athlete1_ses-{sid}_scans.tsv")
    info = store.session(sid)
    t0 = parse_utc(info.t0_utc)
    for row in scans:
        side = "left" if "Left_" in row["filename"] else "right"
        first = s.t_s[np.array(s.side) == side][0]
        dt = (parse_utc(row["acq_time"]) - t0).total_seconds()
        assert abs(dt - (first - info.t0_s)) < 1e-6  # to the microsecond printed


def test_exporting_another_session_later_keeps_the_dataset(dataset, tmp_path):
    store, sid, pid, out = dataset
    copy = tmp_path / "ds"
    shutil.copytree(out, copy)
    assert main(["export", str(sid), "--format", "bids", "--out", str(copy),
                 "--home", str(store.path.parent)]) == 0
    assert [r["participant_id"] for r in tsv(copy / "participants.tsv")] == [
        "sub-P007", "sub-athlete1"]
    assert _motion_files(copy, "P007", pid)


def test_a_session_without_samples_is_left_out_with_a_note(tmp_path, capsys):
    with Store.open(tmp_path / "home") as store:
        empty = store.start_session("record", athlete="Nobody")
        store.end_session(empty)
    assert main(["export", str(empty), "--format", "bids", "--out", str(tmp_path / "ds"),
                 "--home", str(tmp_path / "home")]) == 0
    err = capsys.readouterr().err
    assert f"session {empty} has no samples: left out of the dataset" in err
    assert not list((tmp_path / "ds").glob("sub-*"))
    assert (tmp_path / "ds" / "dataset_description.json").exists()


def test_a_guided_exercise_is_its_own_task_with_the_protocols_words():
    from dorsimeter.exercises.protocol import get_protocol
    from dorsimeter.export.bids import task_label, task_text
    from dorsimeter.store.db import Trial

    lunge = [Trial("left", 30.0, True, None, 1.0, 2.0, exercise="reverse_lunge")] * 3
    assert task_label(lunge + [Trial("left", 30.0, True, None, 1.0, 2.0)]) == "reverselunge"
    assert task_label([]) == "wbltest"
    description, instructions = task_text("reverse_lunge")
    p = get_protocol("reverse_lunge")
    assert description.startswith(p.title) and p.cue("drive") in instructions
