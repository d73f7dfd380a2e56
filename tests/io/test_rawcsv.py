"""The raw CSV contract: round trip, crash-cut files, unit mix-ups, large files."""

import numpy as np
import pytest

from dorsimeter.errors import InputError
from dorsimeter.io.rawcsv import CHUNK_ROWS, RAW_COLUMNS, RawCsvWriter, read_raw_csv
from tests.conftest import simulate


def _write(path, batch, side="left"):
    with RawCsvWriter(path) as w:
        for i in range(0, len(batch), 10):
            w.write(batch.slice(i, i + 10), side)


def test_round_trip_is_exact(tmp_path):
    b = simulate(5.0, seed=1)
    _write(tmp_path / "r.csv", b, "right")
    rec = read_raw_csv(tmp_path / "r.csv")
    np.testing.assert_array_equal(rec.t_s, b.t_s)
    np.testing.assert_array_equal(rec.acc_m_s2, b.acc_m_s2)
    np.testing.assert_array_equal(rec.gyr_rad_s, b.gyr_rad_s)
    assert set(rec.side) == {"right"} and rec.rate_hz == 100.0 and not rec.dropped_tail


def test_a_line_cut_by_a_crash_is_dropped_and_the_rest_kept(tmp_path):
    b = simulate(3.0, seed=1)
    path = tmp_path / "r.csv"
    _write(path, b)
    data = path.read_bytes()
    path.write_bytes(data[:-40])  # killed in the middle of the last row
    rec = read_raw_csv(path)
    assert rec.dropped_tail and len(rec.t_s) == len(b) - 1
    np.testing.assert_array_equal(rec.acc_m_s2, b.acc_m_s2[:-1])


def test_a_line_cut_inside_its_side_cell_is_dropped_too(tmp_path):
    """A full disk (or a kill) can cut the last line after its last comma: every field is
    there but ``side`` reads ``le``; it is dropped like any line cut short."""
    from dorsimeter.io.rawcsv import RawCsvWriter

    b = simulate(3.0, seed=1)
    path = tmp_path / "r.csv"
    with RawCsvWriter(path) as w:
        w.write(b, "left")
    data = path.read_bytes()
    assert data.endswith(b",left\n")
    path.write_bytes(data[:-3])  # "...,le"
    rec = read_raw_csv(path)
    assert rec.dropped_tail and len(rec.t_s) == len(b) - 1
    np.testing.assert_array_equal(rec.acc_m_s2, b.acc_m_s2[:-1])


def test_extra_columns_and_any_order_are_accepted(tmp_path):
    b = simulate(2.0)
    cols = ["note", *reversed(RAW_COLUMNS)]
    rows = [",".join(cols)] + [
        ",".join(["x", *(repr(float(v)) for v in reversed([t, *a, *g]))])
        for t, a, g in zip(b.t_s, b.acc_m_s2, b.gyr_rad_s, strict=True)]
    (tmp_path / "o.csv").write_text("\n".join(rows) + "\n")
    rec = read_raw_csv(tmp_path / "o.csv")
    np.testing.assert_array_equal(rec.gyr_rad_s, b.gyr_rad_s)


@pytest.mark.parametrize("transform, column, words", [
    (lambda t, a, g: (t, a / 9.81, g), "acc_x_m_s2", "looks like g"),
    (lambda t, a, g: (t, a, np.degrees(g)), "gyr_x_rad_s", "looks like °/s"),
    (lambda t, a, g: (t * 1000, a, g), "t_s", "milliseconds"),
])
def test_wrong_units_are_named(tmp_path, transform, column, words):
    b = simulate(20.0)
    t, a, g = transform(b.t_s, b.acc_m_s2, b.gyr_rad_s)
    body = np.column_stack([t, a, g])
    path = tmp_path / "u.csv"
    np.savetxt(path, body, delimiter=",", header=",".join(RAW_COLUMNS), comments="", fmt="%.9g")
    with pytest.raises(InputError, match=f"u.csv, column '{column}': .*{words}"):
        read_raw_csv(path)


def test_a_bad_cell_past_the_first_chunk_names_its_line(tmp_path):
    n = CHUNK_ROWS + 5000
    t = np.arange(n) / 100.0
    body = np.column_stack([t, np.zeros(n), np.zeros(n), np.full(n, 9.81), np.zeros((n, 3))])
    path = tmp_path / "big.csv"
    np.savetxt(path, body, delimiter=",", header=",".join(RAW_COLUMNS), comments="", fmt="%.6g")
    lines = path.read_text().splitlines()
    bad_line = CHUNK_ROWS + 1234  # 1-based file line
    parts = lines[bad_line - 1].split(",")
    parts[4] = "nan"
    lines[bad_line - 1] = ",".join(parts)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=f"line {bad_line}, column 'gyr_x_rad_s'"):
        read_raw_csv(path)


@pytest.mark.parametrize("content, expect", [
    (b"\xff\xfe\x00garbage", "binary data"),
    (b"t_s,\xe9\n", "not UTF-8"),
])
def test_garbage_is_refused_in_one_line(tmp_path, content, expect):
    p = tmp_path / "g.csv"
    p.write_bytes(content)
    with pytest.raises(InputError, match=expect):
        read_raw_csv(p)


def test_optional_channels_the_device_sends_are_kept(tmp_path):
    from dorsimeter.sim import ShankSim

    b = ShankSim(seed=2, heel_switch=True, foot_imu=True).generate(400)
    b.quat = b.truth["sensor_quat"]
    path = tmp_path / "all.csv"
    with RawCsvWriter(path) as w:
        for i in range(0, len(b), 10):
            w.write(b.slice(i, i + 10), "left")
    rec = read_raw_csv(path)
    np.testing.assert_array_equal(rec.quat, b.quat)
    np.testing.assert_array_equal(rec.heel_contact, b.heel_contact)
    np.testing.assert_array_equal(rec.foot_acc_m_s2, b.foot_acc_m_s2)
    np.testing.assert_array_equal(rec.foot_gyr_rad_s, b.foot_gyr_rad_s)
    back = rec.batches()[0]
    np.testing.assert_array_equal(back.heel_contact, b.heel_contact)
    np.testing.assert_array_equal(back.foot_gyr_rad_s, b.foot_gyr_rad_s)


def test_a_channel_missing_from_later_batches_leaves_empty_cells_and_is_left_out(tmp_path):
    b = simulate(4.0, seed=3)
    first = b.slice(0, 200)
    first.heel_contact = np.ones(200)
    path = tmp_path / "gappy.csv"
    with RawCsvWriter(path) as w:
        w.write(first, "left")
        w.write(b.slice(200, 400), "left")  # the heel switch went quiet
    assert path.read_text().splitlines()[-1].count(",,") == 1
    rec = read_raw_csv(path)
    assert rec.heel_contact is None and rec.incomplete_channels == ("heel_contact",)
    np.testing.assert_array_equal(rec.acc_m_s2, b.acc_m_s2)


def test_a_sensor_restart_round_trips_and_reanalysis_equals_live(tmp_path):
    """The ``restart`` column carries the marker: the file gives back the batch boundaries where
    the sensor restarted, and `dorsimeter analyze` gives bit-identical readings to live."""
    from dorsimeter.pipeline import Pipeline, analyze
    from dorsimeter.sim import ShankSim
    from dorsimeter.types import Readings

    sim = ShankSim(seed=9)
    a = sim.generate(3000)
    sim.generate(300)  # off for 3 s while the shin moves
    b = sim.generate(2000)
    b.t_s = a.t_s[-1] + 0.01 * np.arange(1, len(b) + 1)  # time joins on (the decoder's rule)
    b.restart = True
    path = tmp_path / "rebooted.csv"
    live, parts = Pipeline(100.0), []
    with RawCsvWriter(path) as w:
        for batch in (a, b):
            for i in range(0, len(batch), 12):  # as a live source delivers it
                piece = batch.slice(i, i + 12)
                w.write(piece, "left")
                parts.append(live.push(piece)[0])
    live_r = Readings.concat(parts)
    lines = path.read_text().splitlines()
    assert lines[0].split(",")[-2:] == ["restart", "side"]
    assert [i for i, x in enumerate(lines[1:]) if x.split(",")[-2] == "1"] == [len(a)]
    rec = read_raw_csv(path)
    assert rec.restarts == 1 and np.flatnonzero(rec.restart).tolist() == [len(a)]
    back = rec.batches()
    assert [len(x) for x in back] == [len(a), len(b)] and [x.restart for x in back] == [0, 1]
    again = analyze(rec)
    assert live.restarts == 1 and len(again) == len(live_r) > 4000
    for f in ("t_s", "tibia_angle_deg", "knee_track_deg", "heel_lift", "rep", "rep_valid"):
        np.testing.assert_array_equal(getattr(again, f), getattr(live_r, f))
    # a file without the column (an older recording) has no restarts
    old = tmp_path / "old.csv"
    old.write_text("\n".join(",".join(x.split(",")[:-2] + [x.split(",")[-1]]) for x in lines))
    rec = read_raw_csv(old)
    assert rec.restart is None and rec.restarts == 0 and not rec.batches()[0].restart
    np.testing.assert_array_equal(rec.t_s, np.concatenate([a.t_s, b.t_s]))


def test_a_bad_restart_cell_names_file_line_and_column(tmp_path):
    b = simulate(2.0, seed=4)
    path = tmp_path / "r.csv"
    _write(path, b)
    lines = path.read_text().splitlines()
    parts = lines[57].split(",")
    parts[-2] = "yes"
    lines[57] = ",".join(parts)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"r\.csv.*line 58.*restart.*'yes' is not 0 or 1") as e:
        read_raw_csv(path)
    assert "\n" not in str(e.value)


def test_offline_reanalysis_fuses_each_stretch_between_restarts_on_its_own(tmp_path):
    """`analyze --offline` of a recording with a reboot while the shin moved: the stretch after
    the restart is fused on its own, so it matches the truth from its first seconds (fused
    across the join, the smoother drags the old orientation over it)."""
    from dorsimeter.pipeline import analyze, calibrate_recording
    from dorsimeter.sim import ShankSim

    sim = ShankSim(seed=9)
    a = sim.generate(3000)
    sim.generate(300)  # off for 3 s while the shin moves
    b = sim.generate(2000)
    truth = np.concatenate([a.truth["tibia_angle_deg"], b.truth["tibia_angle_deg"]])
    b.t_s = a.t_s[-1] + 0.01 * np.arange(1, len(b) + 1)
    b.restart = True
    path = tmp_path / "rebooted.csv"
    with RawCsvWriter(path) as w:
        w.write(a, "left")
        w.write(b, "left")
    rec = read_raw_csv(path)
    cals = calibrate_recording(rec.batches(), rec.rate_hz)
    r = analyze(rec, cals, offline=True)
    after = (r.t_s > b.t_s[0]) & (r.t_s < b.t_s[0] + 3.0)
    idx = np.searchsorted(rec.t_s, r.t_s)
    assert np.sqrt(np.mean((r.tibia_angle_deg[after] - truth[idx][after]) ** 2)) < 0.5
    rec.restart = None  # the same file without the marker: fused across the reboot
    r0 = analyze(rec, cals, offline=True)
    assert np.sqrt(np.mean((r0.tibia_angle_deg[after] - truth[idx][after]) ** 2)) > 2.0


def test_a_long_file_is_held_in_compact_columns(tmp_path):
    """read_raw_csv holds ~65 bytes a sample (issue 18: it held ~280 at its peak): float64
    columns of their own (no view keeping a wider block alive), and every cell of a side is
    the one shared string, not a string object a row; slices and joins of a recording give
    back the same samples."""
    from dorsimeter.io.rawcsv import RawRecording

    b = simulate(30.0, seed=2)
    path = tmp_path / "r.csv"
    with RawCsvWriter(path) as w:
        w.write(b.slice(0, 1000), "left")
        w.write(b.slice(1000, len(b)), "right")
    rec = read_raw_csv(path)
    assert {id(s) for s in rec.side[:1000]} == {id("left")}
    assert {id(s) for s in rec.side[1000:]} == {id("right")}
    for a in (rec.t_s, rec.acc_m_s2, rec.gyr_rad_s):
        assert a.dtype == np.float64 and (a.base is None or a.base.nbytes <= a.nbytes)
    again = RawRecording.concat([rec.slice(0, 7), rec.slice(7, 1500), rec.slice(1500, len(rec))])
    np.testing.assert_array_equal(again.acc_m_s2, rec.acc_m_s2)
    assert list(again.side) == list(rec.side) and len(again) == len(b)
