"""``--sensor`` parsed once: every form, and a one-line error naming the option for each bad one."""

from __future__ import annotations

import pytest

from dorsimeter.errors import DorsimeterError
from dorsimeter.wire.sensorspec import SensorSpec


@pytest.mark.parametrize(("text", "kind", "target", "rate_hz"), [
    ("sim", "sim", "wall", None),
    ("sim:lunge+lifts", "sim", "lunge+lifts", None),
    ("replay:a:b.csv", "replay", "a:b.csv", None),
    ("serial:/dev/ttyACM0", "serial", "/dev/ttyACM0", None),
    ("serial:/dev/ttyACM0@200", "serial", "/dev/ttyACM0", 200.0),
    ("serial:COM3@50", "serial", "COM3", 50.0),
    ("ble:dorsi-3f2a", "ble", "dorsi-3f2a", None),
    ("ble:C0:D0:57:00:00:01@400", "ble", "C0:D0:57:00:00:01", 400.0),
])
def test_every_form(text, kind, target, rate_hz):
    spec = SensorSpec.parse(text)
    assert (spec.kind, spec.target, spec.rate_hz, str(spec)) == (kind, target, rate_hz, text)


@pytest.mark.parametrize(("text", "expected"), [
    ("", "'': expected sim, replay:FILE, serial:PORT or ble:ADDRESS_OR_NAME"),
    ("usb:/dev/x", "'usb:/dev/x': expected sim, replay:FILE"),
    ("replay:", "replay:FILE needs a file name"),
    ("serial:", "serial:PORT[@RATE_HZ] needs a port"),
    ("serial:@100", "serial:PORT[@RATE_HZ] needs a port"),
    ("ble:", "ble:ADDRESS_OR_NAME[@RATE_HZ] needs an address or a name"),
    ("ble:dorsi-1@fast", "ble:dorsi-1@fast: 'fast' is not a rate in Hz"),
    ("ble:dorsi-1@5", "ble:dorsi-1@5: sample rate 5 Hz is outside the supported 10–1000 Hz"),
    ("serial:/dev/x@nan", "serial:/dev/x@nan: sample rate nan Hz is outside"),
])
def test_bad_specs_are_one_line_naming_the_option(text, expected):
    with pytest.raises(DorsimeterError) as e:
        SensorSpec.parse(text, "--right-sensor")
    msg = str(e.value)
    assert msg.startswith("--right-sensor ") and expected in msg and "\n" not in msg


def test_a_ble_sensor_is_stored_under_what_was_typed_and_its_one_address_spelling():
    assert SensorSpec.parse("ble:c0-d0-57-00-00-01@50").ble_keys == (
        "c0-d0-57-00-00-01", "C0:D0:57:00:00:01")
    assert SensorSpec.parse("ble:dorsi-3f2a").ble_keys == ("dorsi-3f2a",)
    assert SensorSpec.parse("ble:C0:D0:57:00:00:01").ble_keys == ("C0:D0:57:00:00:01",)
    assert SensorSpec.parse("serial:/dev/ttyACM0").ble_keys == ()


def test_the_command_line_parses_it_once_and_names_the_option(capsys):
    from dorsimeter.cli import _parse, main

    args = _parse(["record", "--sensor", "ble:dorsi-3f2a@50", "--duration", "1", "--out", "x"])
    assert isinstance(args.sensor, SensorSpec) and args.sensor.rate_hz == 50.0
    assert main(["record", "--sensor", "ble:", "--duration", "1", "--out", "x.csv"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --sensor: ble:ADDRESS_OR_NAME" in err
    assert "Traceback" not in err
