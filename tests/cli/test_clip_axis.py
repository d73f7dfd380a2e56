"""``analyze --clip-axis`` end to end: typed as the README says, on the simulator, the reference
recording and the node emulator, against the clip's true inclination."""

import re
from pathlib import Path

import numpy as np

from dorsimeter.cli import join_dash_values, main
from dorsimeter.sim import Mount, ShankSim
from dorsimeter.sources.sim import rig_spec

ROOT = Path(__file__).resolve().parents[2]
WIRING_MOUNT = "0,-80,0"  # our node as in wiring.md: the IMU's x up the shin (here 10° forward)


def _lean_deg(rotation: tuple[float, float, float], axis: np.ndarray) -> float:
    c = Mount(clip_rotation_deg=rotation).sensor_to_tibia.apply(axis)
    return float(np.degrees(np.arctan2(c[0], c[2])))


def _clip_column(path) -> tuple[np.ndarray, np.ndarray]:
    r = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
    return r["t_s"], r["clip_angle_deg"]


def test_a_negative_axis_is_taken_as_typed():
    assert join_dash_values(["analyze", "f.csv", "--clip-axis", "-z", "--out", "o"]) == [
        "analyze", "f.csv", "--clip-axis=-z", "--out", "o"]
    assert join_dash_values(["analyze", "f.csv", "--clip-axis", "--out", "o"]) == [
        "analyze", "f.csv", "--clip-axis", "--out", "o"]  # no value: auto


def test_the_readme_axis_of_our_node_on_the_simulator(tmp_path, capsys):
    """`record` on the simulator with the clip as wiring.md mounts it, then `analyze
    --clip-axis +x` exactly as the README types it: the clip reading follows the simulator's
    tibia angle plus the clip's true lean; `-x` (typed with a space) says it points down the shin;
    `--clip-axis` alone finds +x."""
    raw, out = tmp_path / "raw.csv", tmp_path / "r.csv"
    home = ["--home", str(tmp_path / "home")]
    assert main(["record", "--sensor", "sim", "--speed", "0", "--duration", "40",
                 "--clip-rotation", WIRING_MOUNT, "--out", str(raw), *home]) == 0
    capsys.readouterr()
    assert main(["analyze", str(raw), "--clip-axis", "+x", "--out", str(out), *home]) == 0
    text = capsys.readouterr().out
    assert "clip axis +x on the left" in text
    rot = tuple(float(v) for v in WIRING_MOUNT.split(","))
    lean = _lean_deg(rot, np.array([1.0, 0.0, 0.0]))
    assert abs(lean - 10.0) < 1e-9
    shown = float(re.search(r"the clip leans ([+-][\d.]+)° on the left", text).group(1))
    assert abs(shown - lean) < 0.3
    t, clip = _clip_column(out)
    truth_b = ShankSim(rate_hz=100.0, seed=0, mount=Mount(clip_rotation_deg=rot),
                       script=rig_spec()).generate(len(t))
    after = t > 20.0
    err = clip[after] - (truth_b.truth["tibia_angle_deg"][after] + lean)
    assert np.sqrt(np.mean(err ** 2)) < 0.3
    assert main(["analyze", str(raw), "--clip-axis", "-x", *home]) == 2
    err_text = capsys.readouterr().err
    assert "-x points down the shin" in err_text and "the axis up the shin is +x" in err_text
    assert main(["analyze", str(raw), "--clip-axis", *home]) == 0
    assert "clip axis +x on the left" in capsys.readouterr().out


def test_plus_and_minus_z_differ_on_the_reference_recording(capsys):
    rec = str(ROOT / "calibration" / "recordings" / "wall_bmi270_s11_left.csv")
    assert main(["analyze", rec, "--clip-axis", "+z"]) == 0
    assert "clip axis +z on the left" in capsys.readouterr().out
    assert main(["analyze", rec, "--clip-axis", "-z"]) == 2
    assert "-z points down the shin" in capsys.readouterr().err
    assert main(["analyze", rec, "--clip-axis", "+x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the axis up the shin is +z" in err


def test_the_readme_axis_on_the_node_emulator(tmp_path, capsys):
    """The node's firmware on a pty (its IMU mounted as in wiring.md), `record` over serial, then
    `analyze --clip-axis +x`: the clip reading follows the true clip inclination. An ideal unit:
    the reading is absolute, so a real one needs its box calibration (`--sensor-cal`)."""
    import time

    from dorsimeter.io.rawcsv import read_raw_csv
    from firmware_bridge.host import HostRunner

    rot = tuple(float(v) for v in WIRING_MOUNT.split(","))
    runner = HostRunner(rate_hz=100, speed=2.0, clip_rotation_deg=rot, ideal=True)
    runner.imu.keep_truth = True
    runner.start()
    try:
        time.sleep(0.05)
        raw, out = tmp_path / "raw.csv", tmp_path / "r.csv"
        assert main(["record", "--sensor", f"serial:{runner.path}", "--duration", "40",
                     "--out", str(raw), "--home", str(tmp_path / "h")]) == 0
    finally:
        runner.stop()
    capsys.readouterr()
    assert main(["analyze", str(raw), "--clip-axis", "+x", "--out", str(out)]) == 0
    assert "clip axis +x on the left" in capsys.readouterr().out
    t, clip = _clip_column(out)
    # the recording must hold the script's opening stance (0-3 s): the emulator runs at 2x so
    # that connecting takes well under it (a file starting mid-drive calibrates on a drive)
    assert t[0] < 3.0, f"the recording starts at {t[0]:.1f} s, after the stance"
    t_true = np.concatenate([t for t, _ in runner.imu.truth])
    a_true = np.concatenate([a for _, a in runner.imu.truth])
    assert np.allclose(read_raw_csv(raw).t_s, t)  # device time, the emulator's clock
    truth = np.interp(t, t_true, a_true) + _lean_deg(rot, np.array([1.0, 0.0, 0.0]))
    after = t > t[0] + 20.0
    assert np.ptp(clip[after]) > 25.0  # drives happened: a reading that moves
    assert np.sqrt(np.mean((clip[after] - truth[after]) ** 2)) < 0.5


def test_streamed_clip_scores_are_the_whole_file_scores():
    """``analyze --clip-axis`` streams (``ClipStream``: chunks in, each rep scored when its
    event arrives): the same clip angles, scores, maxima and leans as the whole-file
    ``clip_readings`` + ``clip_side_scores`` on the reference recording, to the last bit."""
    from dorsimeter.cli.analyze import ClipStream
    from dorsimeter.core.clip_axis import clip_readings, clip_side_scores
    from dorsimeter.io.rawcsv import RawStream, read_raw_csv
    from dorsimeter.pipeline import Pipeline, analyze, calibrate_recording
    from dorsimeter.session.results import SessionResults

    path = ROOT / "calibration" / "recordings" / "wall_bmi270_s11_left.csv"
    rec = read_raw_csv(path)
    cals = calibrate_recording(rec.batches(), rec.rate_hz)
    matrices = {s: c.matrix for s, c in cals.items()}
    events: list = []
    readings = analyze(rec, cals, events=events)
    whole = SessionResults(rate_hz=rec.rate_hz)
    whole.add(readings, events)
    clip = clip_readings(readings, matrices, "+z")
    expect = clip_side_scores(readings, clip, whole, 3)
    assert expect[0].scores_deg  # the recording has scored reps to compare

    stream = RawStream(str(path))
    pipe = Pipeline(stream.rate_hz, cals)
    streamed = SessionResults(rate_hz=stream.rate_hz)
    cs = ClipStream(matrices, "+z")
    angles = []
    for b in stream.batches():
        r, ev = pipe.push(b)
        angles.append(cs.add(r, ev))
        streamed.add(r, ev)
    assert np.array_equal(np.concatenate(angles), clip.angle_deg)
    assert cs.side_scores(streamed, 3) == expect
