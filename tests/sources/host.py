"""The host side of the BLE tests, shared by every family's: take samples from a source, drop a
peripheral's link at a device time, run a ``dorsimeter`` command while this event loop keeps the
emulated radio up, and read what ``scan``, ``record`` and ``analyze`` printed. Used as
``from tests.sources import host`` (``host.take(source, 100, timeout_s=20)``)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dorsimeter.store.security import AllowList
from tests.emulators.peripheral import Peripheral


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


def drop_link_at(peripheral: Peripheral, t_s: float, silent_s: float = 0.0):
    """An ``on_batch`` for :func:`collect_seconds` that drops ``peripheral``'s link (silent
    ``silent_s`` after) once, at the first batch reaching device time ``t_s``."""
    dropped = []

    async def on_batch(batch) -> None:
        if not dropped and batch.t_s[-1] >= t_s:
            dropped.append(float(batch.t_s[-1]))
            await peripheral.drop_link(silent_s=silent_s)

    return on_batch


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


async def record(env: dict, home: Path, address: str, sensor: str, out_csv: Path,
                 duration_s: float, timeout_s: float = 150) -> tuple[str, str]:
    """``dorsimeter record --sensor SENSOR`` (exit 0) into ``out_csv``, the sensor at
    ``address`` allow-listed in ``home`` first: what it printed (stdout, stderr)."""
    AllowList.load(str(home)).add(address)
    code, out, err = await run_cli(env, "record", "--sensor", sensor, "--duration",
                                   f"{duration_s:g}", "--out", str(out_csv), "--home", str(home),
                                   timeout_s=timeout_s)
    assert code == 0, err
    return out, err


async def assert_reanalysed(env: dict, out_csv: Path, out: str) -> None:
    """``dorsimeter analyze`` of the raw CSV ``record`` wrote prints each leg's max and
    best-valid angles as ``record`` printed them live (``out``: the left leg's at least)."""
    live = maxima(out)
    assert "left" in live, out
    code, again, err = await run_cli(env, "analyze", str(out_csv), timeout_s=120)
    assert code == 0, err
    assert maxima(again) == live


def maxima(text: str) -> dict[str, tuple[str, str]]:
    """Each leg's printed (max tibia angle, best valid) in ``text`` (record's or analyze's)."""
    return {side: (top, best) for side, top, best in re.findall(
        r"(left|right): max tibia angle ([\d.]+)°, best valid ([\d.]+)°", text)}


def decoded(batches: list) -> tuple:
    """(t_s, acc_m_s2, gyr_rad_s) of ``batches``, concatenated."""
    return (np.concatenate([b.t_s for b in batches]),
            np.concatenate([b.acc_m_s2 for b in batches]),
            np.concatenate([b.gyr_rad_s for b in batches]))
