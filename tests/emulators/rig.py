"""The emulated BLE world in one object: a LocalLink, the fake BlueZ and some peripherals; and
the host-side drivers the BLE tests of every family share (take samples from a source, run a
``dorsimeter`` command while the radio stays up, read what ``scan`` and ``record`` printed).

Needs ``DBUS_SYSTEM_BUS_ADDRESS`` pointing at a bus where ``org.bluez`` is free (see
:func:`tests.emulators.dbus.private_system_bus`).
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from bumble.link import LocalLink

from tests.emulators.fake_bluez import FakeBlueZ
from tests.emulators.peripheral import Peripheral

P = TypeVar("P", bound=Peripheral)


class BleRig:
    """``async with BleRig() as rig: node = await rig.add(NodePeripheral(rig.link, ...))``."""

    def __init__(self, mtu: int = 247, identifiers: dict[str, str] | None = None) -> None:
        """``identifiers``: MAC -> UUID for devices the host sees by a UUID (as on macOS)."""
        self.link = LocalLink()
        self.bluez = FakeBlueZ(self.link, mtu=mtu, identifiers=identifiers)
        self.peripherals: list[Peripheral] = []

    async def __aenter__(self) -> BleRig:
        await self.bluez.start()
        return self

    async def add(self, peripheral: P, rssi: int | None = None) -> P:
        """Power on and start advertising ``peripheral``; ``rssi`` as the host will see it."""
        if rssi is not None:
            self.bluez.set_rssi(peripheral.address, rssi)
        await peripheral.start()
        self.peripherals.append(peripheral)
        return peripheral

    async def __aexit__(self, *exc) -> None:
        for p in self.peripherals:
            await p.stop()
        await self.bluez.stop()


# ----------------------------------------------------------------- the host side, shared
async def take(source: Any, n_samples: int, timeout_s: float) -> list:
    """The first ``n_samples`` samples' batches from ``source`` (then stops it)."""
    n = 0

    def enough(batch) -> bool:
        nonlocal n
        n += len(batch)
        return n >= n_samples

    return await collect_seconds(source, float("inf"), timeout_s, until=enough)


async def collect_seconds(source: Any, seconds: float, timeout_s: float,
                          on_batch=None, until=None) -> list:
    """Batches from ``source`` until ``seconds`` of device time have arrived, or ``until(batch)``
    holds (then stops it)."""
    out = []

    async def run():
        async for batch in source:
            out.append(batch)
            if on_batch is not None:
                await on_batch(batch)
            if batch.t_s[-1] - out[0].t_s[0] >= seconds - 1e-9:
                break
            if until is not None and until(batch):
                break

    try:
        await asyncio.wait_for(run(), timeout_s)
    finally:
        await source.close()
    return out


async def run_cli(env: dict, *args: str, timeout_s: float = 30) -> tuple[int, str, str]:
    """``dorsimeter ARGS`` in a subprocess, while this event loop keeps the emulated radio up."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dorsimeter.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


async def scan_line(env: dict, home: Path, address: str) -> str:
    """The line ``dorsimeter scan`` (exit 0) prints for the sensor at ``address``."""
    code, out, err = await run_cli(env, "scan", "--timeout", "1.5", "--home", str(home))
    assert code == 0, err
    return next(ln for ln in out.splitlines() if address in ln)


def maxima(text: str) -> dict[str, tuple[str, str]]:
    """Each leg's printed (max tibia angle, best valid) in ``text`` (record's or analyze's)."""
    return {side: (top, best) for side, top, best in re.findall(
        r"(left|right): max tibia angle ([\d.]+)°, best valid ([\d.]+)°", text)}


def decoded(batches: list) -> tuple:
    """(t_s, acc_m_s2, gyr_rad_s) of ``batches``, concatenated."""
    return (np.concatenate([b.t_s for b in batches]),
            np.concatenate([b.acc_m_s2 for b in batches]),
            np.concatenate([b.gyr_rad_s for b in batches]))
