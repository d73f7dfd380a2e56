"""Settings: options > DORSIMETER_* environment > config.toml in the data directory > defaults."""

import re

from dorsimeter.cli import main
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.store import Store


def _record(tmp_path, capsys, *extra):
    out = tmp_path / f"r{len(list(tmp_path.glob('r*.csv')))}.csv"  # each session its own file
    code = main(["record", "--speed", "0", "--duration", "20", "--out", str(out), *extra])
    return code, capsys.readouterr(), out


def test_config_file_then_environment_then_options(tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DORSIMETER_HOME", str(home))
    home.mkdir()
    (home / "config.toml").write_text('side = "right"\n[record]\nsensor = "sim:lunge"\n')
    code, got, out = _record(tmp_path, capsys)
    assert code == 0, got.err
    assert set(read_raw_csv(out).side) == {"right"}  # from the top-level key
    with Store.open(home) as store:  # the [record] table chose the simulated lunges
        assert "lunge" in store.session(int(re.search(r"stored session (\d+)",
                                                       got.out).group(1))).sensor
    monkeypatch.setenv("DORSIMETER_SIDE", "left")  # the environment beats the file
    code, got, out = _record(tmp_path, capsys)
    assert code == 0 and set(read_raw_csv(out).side) == {"left"}
    code, got, out = _record(tmp_path, capsys, "--side", "right")  # an option beats both
    assert code == 0 and set(read_raw_csv(out).side) == {"right"}


def test_bad_settings_are_one_line_naming_the_file_or_variable(tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("DORSIMETER_HOME", str(home))
    home.mkdir()
    cfg = home / "config.toml"
    for text, expect in [
        ('sidee = "left"\n',
         r"config\.toml, line 1, key 'sidee': no command has an option --sidee"),
        # the file, the key and what is expected, in our words (not Python's "could not
        # convert string to float", nor a "column")
        ('[record]\nspeed = "fast"\n',
         r"config\.toml, line 2, key 'record\.speed' = 'fast': expected a number"),
        ('[monitor]\nbogus = 1\n',
         r"config\.toml, line 2, key 'monitor\.bogus': the monitor command has no option"),
        ('side = "middle"\n', r"key 'side' = 'middle': expected one of left, right"),
        ("side = \n", r"config\.toml, line 1: not valid TOML"),
        ('[recordd]\nside = "left"\n', r"no command called 'recordd'"),
    ]:
        cfg.write_text(text)
        code, got, _ = _record(tmp_path, capsys)
        assert code == 2 and got.err.count("\n") == 1 and "Traceback" not in got.err
        assert re.search(expect, got.err), got.err
    cfg.unlink()
    monkeypatch.setenv("DORSIMETER_SPEED", "quick")
    code, got, _ = _record(tmp_path, capsys)
    assert code == 2 and "variable DORSIMETER_SPEED='quick': expected a number" in got.err
    assert "could not convert" not in got.err


def test_demo_is_one_leg_unless_both_whatever_the_right_sensor_setting(monkeypatch):
    """`demo` runs `monitor` on the simulator: a right sensor from the environment must not
    turn it into a two-sensor session (with a real BLE sensor on the right); `--both` does."""
    from dorsimeter.cli import _parse

    monkeypatch.setenv("DORSIMETER_RIGHT_SENSOR", "ble:dorsi-7c01")
    one = _parse(["demo"])  # parsed as the monitor command it runs
    assert one.command == "monitor" and one.sensor.kind == "sim" and not one.right_sensor
    assert _parse(["demo", "--both"]).right_sensor.kind == "sim"
    assert str(_parse(["monitor", "--sensor", "sim"]).right_sensor) == "ble:dorsi-7c01"
