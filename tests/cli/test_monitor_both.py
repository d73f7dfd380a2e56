"""``dorsimeter monitor --right-sensor``: the real command in a pseudo-terminal with a sensor on
each shin stores one session with both legs' samples and trials, and a raw CSV per leg, exactly
as ``record --right-sensor`` does for the same data; ``--right-sensor`` also comes from
DORSIMETER_RIGHT_SENSOR and config.toml."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np

from dorsimeter.cli import _parse, main
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.store import Store
from tests.cli.pty_monitor import run_monitor_in_pty


def _record_both(tmp_path) -> tuple[int, dict]:
    """``record`` with a simulated sensor on each shin: the reference session and raw files."""
    home = tmp_path / "rec"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["record", "--sensor", "sim:wall+lifts", "--right-sensor", "sim:wall+lifts",
                     "--speed", "0", "--duration", "24", "--out", str(tmp_path / "src.csv"),
                     "--home", str(home)]) == 0
    sid = int(re.search(r"stored session (\d+)", buf.getvalue()).group(1))
    return sid, {s: tmp_path / f"src-{s}.csv" for s in ("left", "right")}


def test_monitor_with_two_sensors_stores_both_legs_like_record(tmp_path):
    ref_id, src = _record_both(tmp_path)
    with Store.open(tmp_path / "rec") as store:
        want, want_trials = store.samples(ref_id), store.trials(ref_id)
    assert {t.side for t in want_trials} == {"left", "right"}
    mon_home = tmp_path / "mon"
    code, text, sent = run_monitor_in_pty(  # the right sensor from the environment, as a user
        ["--sensor", f"replay:{src['left']}", "--speed", "0", "--record",
         str(tmp_path / "mon.csv")], mon_home, len(want), timeout_s=90,
        env={"DORSIMETER_RIGHT_SENSOR": f"replay:{src['right']}"})
    assert code == 0, text[-2000:]
    m = re.search(r"stored session (\d+)", text)
    assert sent and m, text[-2000:]
    assert "both legs" in text and "left − right" in text
    with Store.open(mon_home) as store:
        info = store.session(int(m.group(1)))
        assert info.kind == "monitor" and info.ended
        assert "replay of" in info.sensor and " + " in info.sensor  # both sensors named
        got, got_trials = store.samples(info.id), store.trials(info.id)
        legs = store.legs(info.id)  # each leg with its own sensor, raw CSV and clock
        assert set(legs) == {"left", "right"}
        for side, leg in legs.items():
            assert "replay of" in leg.sensor and " + " not in leg.sensor and leg.own_clock
            assert leg.raw_path == str((tmp_path / f"mon-{side}.csv").resolve())
    # each leg through its own live pipeline gives record's numbers, side by side
    for side in ("left", "right"):
        g, w = np.asarray(got.side) == side, np.asarray(want.side) == side
        assert g.sum() == w.sum() > 2000
        assert np.array_equal(got.t_s[g], want.t_s[w])
        assert np.array_equal(got.tibia_angle_deg[g], want.tibia_angle_deg[w])
    key = lambda t: (t.side, t.rep)  # noqa: E731
    assert [(t.side, t.angle_deg, t.scored, t.valid) for t in sorted(got_trials, key=key)] == [
        (t.side, t.angle_deg, t.scored, t.valid) for t in sorted(want_trials, key=key)]
    # a raw CSV per leg, as record writes them: the same bytes as the files replayed
    for side in ("left", "right"):
        mon = tmp_path / f"mon-{side}.csv"
        assert mon.read_bytes() == src[side].read_bytes(), side
        assert set(read_raw_csv(mon).side) == {side}


def test_right_sensor_from_environment_config_and_option(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("DORSIMETER_RIGHT_SENSOR", raising=False)
    monkeypatch.setenv("DORSIMETER_HOME", str(home))
    assert _parse(["monitor"]).right_sensor is None
    (home / "config.toml").write_text('[monitor]\nright_sensor = "sim:lunge"\n')
    assert str(_parse(["monitor"]).right_sensor) == "sim:lunge"
    monkeypatch.setenv("DORSIMETER_RIGHT_SENSOR", "ble:dorsi-7c01")  # the environment wins
    assert str(_parse(["monitor"]).right_sensor) == "ble:dorsi-7c01"
    args = _parse(["monitor", "--right-sensor", "serial:/dev/ttyACM1"])  # an option wins
    assert args.right_sensor.kind == "serial" and args.right_sensor.target == "/dev/ttyACM1"
    # demo --both is the monitor with a simulated sensor on each shin
    monkeypatch.delenv("DORSIMETER_RIGHT_SENSOR")
    (home / "config.toml").write_text("")
    both = _parse(["demo", "--both"])
    assert (both.command, str(both.sensor), str(both.right_sensor)) == (
        "monitor", "sim:wall+lifts", "sim:wall+lifts")
    assert not _parse(["demo"]).right_sensor  # no right sensor (an empty one beats settings)


def test_a_bad_right_sensor_is_one_line(tmp_path, capsys):
    code = main(["monitor", "--sensor", "sim", "--right-sensor", "sim:nope",
                 "--home", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "sim:nope" in err and "Traceback" not in err
