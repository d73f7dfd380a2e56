"""Security and privacy: the host connects only to added sensors, files are owner-only, and
nothing leaves the machine.

The allow-list is enforced on the real path: unmodified bleak against emulated peripherals on a
private D-Bus system bus; a sensor not on the list is seen advertising and never connected to.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import stat
import sys

import pytest

from dorsimeter.cli import main
from dorsimeter.errors import DeviceError
from dorsimeter.sources.ble import BleSource
from dorsimeter.store.security import AllowList
from tests.emulators.dbus import private_system_bus
from tests.emulators.node import NodePeripheral
from tests.emulators.rig import BleRig


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0)  # the worst case: files would be world-writable
    yield
    os.umask(old)


def _cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_sensors_add_list_remove_owner_only(tmp_path, loose_umask):
    home = tmp_path / "home"
    rc, out, _ = _cli(["sensors", "add", "c0:d0:57:00:00:a1", "--label", "left shin",
                       "--home", str(home)])
    assert rc == 0 and "added C0:D0:57:00:00:A1 (left shin)" in out
    _cli(["sensors", "add", "C0-D0-57-00-00-B2", "--home", str(home)])
    path = home / "sensors.json"
    assert mode(home) == 0o700 and mode(path) == 0o600
    assert [s["address"] for s in json.loads(path.read_text())["sensors"]] == [
        "C0:D0:57:00:00:A1", "C0:D0:57:00:00:B2"]
    rc, out, _ = _cli(["sensors", "list", "--home", str(home)])
    assert out.splitlines() == ["C0:D0:57:00:00:A1  left shin", "C0:D0:57:00:00:B2"]
    rc, out, _ = _cli(["sensors", "remove", "left shin", "--home", str(home)])
    assert rc == 0 and AllowList.load(home).permits("c0:d0:57:00:00:b2")
    assert not AllowList.load(home).permits("C0:D0:57:00:00:A1")
    # bad input: one line, exit 2
    rc, _, err = _cli(["sensors", "add", "dorsi-00a1", "--home", str(home)])
    assert rc == 2 and err.count("\n") == 1 and "not a Bluetooth address" in err
    path.write_text("{not json")
    rc, _, err = _cli(["sensors", "list", "--home", str(home)])
    assert rc == 2 and err.count("\n") == 1 and "sensors.json" in err


@pytest.fixture(scope="module")
def system_bus():
    with private_system_bus() as bus:
        yield bus


async def _first_samples(source: BleSource, n: int, timeout_s: float) -> int:
    got = 0

    async def run():
        nonlocal got
        async for b in source:
            got += len(b)
            if got >= n:
                break

    try:
        await asyncio.wait_for(run(), timeout_s)
    finally:
        await source.close()
    return got


async def test_ble_connects_only_to_sensors_on_the_allow_list(system_bus, tmp_path):
    allow = AllowList(tmp_path / "sensors.json")
    allow.add("C0:D0:57:00:00:A1", "mine")
    async with BleRig() as rig:
        mine = await rig.add(NodePeripheral(rig.link, "dorsi-00a1", "C0:D0:57:00:00:a1"))
        # a stranger's node advertising a look-alike name, and one with the very same name
        other = await rig.add(NodePeripheral(rig.link, "dorsi-00a2", "C0:D0:57:00:00:a2"))
        for target in ("dorsi-00a2", "C0:D0:57:00:00:A2"):
            with pytest.raises(DeviceError, match="not one of your sensors"):
                await _first_samples(BleSource(target, allowed=allow, scan_timeout_s=5), 1, 15)
        assert other.counters.connections == 0  # seen advertising, never connected to
        assert await _first_samples(BleSource("dorsi-00a1", allowed=allow, scan_timeout_s=5),
                                    100, 20) >= 100
        assert mine.counters.connections == 1


async def test_cli_refuses_a_sensor_not_added_in_one_line(system_bus, tmp_path):
    """``record --sensor ble:NAME`` from the command line: the data directory's allow-list is
    always applied (empty until sensors are added), before any connection."""
    async with BleRig() as rig:
        node = await rig.add(NodePeripheral(rig.link, "dorsi-00c3", "C0:D0:57:00:00:c3"))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dorsimeter.cli", "record", "--sensor", "ble:dorsi-00c3",
            "--duration", "1", "--out", str(tmp_path / "x.csv"), "--home",
            str(tmp_path / "home"), env=system_bus.env(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        err = err.decode()
        assert proc.returncode == 1 and err.count("\n") == 1, err
        assert "C0:D0:57:00:00:C3 ('dorsi-00c3') is not one of your sensors" in err
        assert "dorsimeter sensors add C0:D0:57:00:00:C3" in err
        assert node.counters.connections == 0


def test_recordings_exports_and_history_are_owner_only_and_nothing_leaves_the_machine(
        tmp_path, loose_umask):
    home = tmp_path / "home"
    raw, readings = tmp_path / "raw.csv", tmp_path / "readings.csv"
    sockets: list[tuple] = []

    def audit(event, args):  # every socket the process opens or connects, whatever library
        if event in ("socket.connect", "socket.sendto", "socket.getaddrinfo"):
            sockets.append((event, args))

    sys.addaudithook(audit)
    assert _cli(["record", "--speed", "0", "--duration", "30", "--out", str(raw),
                 "--athlete", "K-2931", "--home", str(home)])[0] == 0
    assert _cli(["analyze", str(raw), "--out", str(readings)])[0] == 0
    assert _cli(["export", "latest", "--out", str(tmp_path / "exp"), "--home", str(home)])[0] == 0
    assert _cli(["report", "latest", "--out", str(tmp_path / "r.html"), "--home", str(home)]
                )[0] == 0
    network = [s for s in sockets if not (s[0] == "socket.connect"
                                          and getattr(s[1][0], "family", None) == socket.AF_UNIX)]
    assert network == []  # no network use at all: nothing leaves the machine
    made = [raw, readings, home / "history.sqlite3", *sorted((tmp_path / "exp").iterdir()),
            tmp_path / "r.html"]
    assert len(made) >= 5
    assert {str(p.name): mode(p) for p in made} == {str(p.name): 0o600 for p in made}
    assert mode(home) == 0o700 and mode(tmp_path / "exp") == 0o700
    # a pseudonymous id is all the history and the exports know of the athlete
    text = "".join(p.read_text() for p in (tmp_path / "exp").iterdir())
    assert "K-2931" in text and not any(w in text for w in ("birth", "email", "phone"))
