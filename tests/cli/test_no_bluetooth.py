"""A computer without Bluetooth (issue 12 item 9): real bleak against a system D-Bus that is not
there, and a private bus without BlueZ on it; the CLI says so in one line with what to do, and
the monitor's top line never says a trial is running."""

import subprocess
from pathlib import Path

from dorsimeter.pipeline import Pipeline
from dorsimeter.sources.ble import BleSource, scan_error
from dorsimeter.tui.app import MonitorApp
from tests.emulators.dbus import ENV_VAR, private_system_bus
from tests.tui.rig import wait_for

CLI = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "dorsimeter")


def _run(args, env_addr, tmp_path):
    import os

    env = {**os.environ, ENV_VAR: env_addr, "DORSIMETER_HOME": str(tmp_path / "home")}
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=env)


def test_no_system_bus_reads_as_no_bluetooth(tmp_path):
    nowhere = f"unix:path={tmp_path / 'no-bus-here'}"
    for args in (["scan", "--timeout", "1"],
                 ["record", "--sensor", "ble:dorsi-9999", "--duration", "1", "--out",
                  str(tmp_path / "r.csv")]):
        r = _run(args, nowhere, tmp_path)
        assert r.returncode == 1, r.stderr
        assert r.stderr.count("\n") == 1 and "Errno" not in r.stderr
        assert "no Bluetooth on this computer" in r.stderr
        assert "sudo systemctl start bluetooth" in r.stderr and "--sensor sim" in r.stderr


def test_a_bus_without_bluez_reads_as_no_bluetooth_service(tmp_path):
    with private_system_bus() as _:
        import os

        r = _run(["scan", "--timeout", "1"], os.environ[ENV_VAR], tmp_path)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "no Bluetooth service: BlueZ is not running" in r.stderr


def test_no_adapter_in_bleaks_words_reads_as_no_adapter():
    from bleak.exc import BleakError

    assert scan_error(BleakError("No Bluetooth adapters found.")).startswith(
        "no Bluetooth adapter found: plug one in or switch it on")


async def test_the_monitor_top_line_without_bluetooth(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, f"unix:path={tmp_path / 'no-bus-here'}")
    source = BleSource("dorsi-9999", scan_timeout_s=1.0)
    app = MonitorApp(source, Pipeline(source.rate_hz), refresh_hz=20)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.error is not None)
        app.refresh_view()
        top = str(app.query_one("#status").render())
        assert "trial running" not in top and "sensor stopped" in top
        assert "no Bluetooth on this computer" in app.message
        await pilot.press("q")
