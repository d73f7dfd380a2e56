"""Text from outside is inert everywhere (issue 18): advertised BLE names, athlete names and
sensor labels never run as textual markup in the monitor, never reach the terminal as escape
sequences from the CLI, and never run as formulas in the trials CSV.

The BLE cases run real bleak against the emulated BlueZ (fake org.bluez + Bumble peripherals on
a private D-Bus), the monitor cases the real textual app under its pilot.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import sys

import pytest

from dorsimeter.cli import main
from dorsimeter.pipeline import Pipeline
from dorsimeter.store import Store
from dorsimeter.store.security import AllowList
from dorsimeter.tui.app import MonitorApp
from dorsimeter.tui.screens import ConnectScreen
from dorsimeter.tui.services import StoreClient
from tests.emulators.dbus import private_system_bus
from tests.emulators.node import NodePeripheral
from tests.emulators.rig import BleRig
from tests.tui.rig import ScriptedSource, frozen_clock, sim_batches, wait_for

OSC_TITLE = "\x1b]0;owned\x07"  # an xterm "set window title" sequence
HOSTILE_NAMES = ["[/]", "[@click=app.quit]x", "[b]bold", f"Ana{OSC_TITLE}", "\t=1+1",
                 "=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\r=1"]


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def system_bus():
    with private_system_bus() as bus:
        yield bus


async def run_cli(env: dict, *argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dorsimeter.cli", *argv, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()


async def test_an_advertised_name_with_markup_and_escapes_is_inert_in_scan_and_the_monitor(
        system_bus, tmp_path):
    """A node advertising ``[/]`` + an OSC sequence: `scan` prints it visibly escaped, the
    monitor's sensor screen lists it (no MarkupError) and does not connect to it (not allowed)."""
    hostile = "[/]\x1b]0;x\x07"
    async with BleRig() as rig:
        await rig.add(NodePeripheral(rig.link, hostile, "C0:D0:57:00:00:f1"), rssi=-50)
        code, out, err = await run_cli(system_bus.env(), "scan", "--timeout", "1.5",
                                       "--home", str(tmp_path / "home"))
        assert code == 0, err
        assert "\x1b" not in out and "\x07" not in out and "C0:D0:57:00:00:F1" in out
        line = next(ln for ln in out.splitlines() if "C0:D0:57:00:00:F1" in ln)
        assert "[/]" in line and line.endswith("no")  # shown, as text, and not allowed
        first = ScriptedSource(sim_batches(1)[0])
        app = MonitorApp(first, Pipeline(100.0), store=StoreClient(tmp_path / "home"),
                         record_session=False, clock=frozen_clock)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = ConnectScreen(scan_s=1.5)
            await app.push_screen(screen)
            await wait_for(pilot, lambda: any(f.spec.startswith("ble:") for f in screen.found))
            i = next(k for k, f in enumerate(screen.found) if f.spec.startswith("ble:C0:D0"))
            assert screen.found[i].name == "[/]]0;x"  # controls removed at the source
            await pilot.pause()
            rendered = str(screen.query_one("#con-list").get_option_at_index(i).prompt)
            assert "[/]" in rendered.replace("\\[", "[") and "(+ to add)" in rendered
            screen.query_one("#con-list").highlighted = i
            await pilot.press("enter")  # the scan list is limited by the allow-list
            await pilot.pause()
            assert "not one of your sensors" in str(screen.query_one("#con-status").render())
            assert app.source is first and app.is_running
        assert app.return_code in (None, 0)


@pytest.mark.parametrize("name", ["[/]", "[@click=app.quit]x"])
async def test_an_athlete_named_like_markup_starts_the_monitor_and_shows_literally(
        tmp_path, name):
    store = StoreClient(tmp_path / "home")
    athlete = store.run(lambda s: s.athlete(name)).result()
    app = MonitorApp(ScriptedSource(sim_batches(3)[0]), Pipeline(100.0), store=store,
                     athlete=athlete, record_session=False, clock=frozen_clock)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.redraws > 2)
            status = str(app.query_one("#status").render())
            assert name in status  # the text itself, not what its markup would do
            await pilot.click("#status")  # a live @click would quit the app
            await pilot.pause()
            assert app.is_running
    finally:
        store.close()


def test_cli_output_of_names_and_labels_has_no_control_characters(tmp_path):
    home = tmp_path / "home"
    AllowList.load(home).add("C0:D0:57:00:00:01", f"left{OSC_TITLE}")
    rc, out, _ = cli("sensors", "list", "--home", home)
    assert rc == 0 and "\x1b" not in out and "\x07" not in out and "left\\x1b]0;owned" in out
    with Store.open(home) as store:
        sid = store.start_session("record", f"Ana{OSC_TITLE}")
        store.add_trial(sid, "left", 38.0, True, "switch", 1.0, 2.0, rep=1, scored=True)
        store.end_session(sid)
    for argv in (("history",), ("history", f"Ana{OSC_TITLE}"), ("history", f"Bo{OSC_TITLE}")):
        rc, out, err = cli(*argv, "--home", home)
        assert rc in (0, 2) and "\x1b" not in out + err and "\x07" not in out + err, argv
        assert "Ana\\x1b]0;owned\\x07" in out + err


def test_trials_csv_cells_of_user_text_never_run_as_formulas(tmp_path):
    home = tmp_path / "home"
    with Store.open(home) as store:
        ids = []
        for name in HOSTILE_NAMES:
            sid = store.start_session("record", name, sensor=f"={name}")
            store.add_trial(sid, "left", 30.0, True, "switch", 1.0, 2.0, rep=1, scored=True)
            store.end_session(sid)
            ids.append(sid)
    rc, _, err = cli("export", "all", "--out", tmp_path / "out", "--home", home)
    assert rc == 0, err
    for sid, name in zip(ids, HOSTILE_NAMES, strict=True):
        with open(tmp_path / "out" / f"dorsimeter-session-{sid}-trials.csv",
                  encoding="utf-8-sig", newline="") as f:
            (row,) = list(csv.DictReader(f))
        cell = row["athlete"]
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (name, cell)
        assert cell.lstrip("'") == name.strip()  # the text itself kept in full
