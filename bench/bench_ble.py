"""How many BLE notifications per second reach bleak through the emulated stack.

Route: Bumble peripheral ══LocalLink══ Bumble central in the fake bluetoothd ──D-Bus (private
dbus-daemon)──▶ unmodified bleak (BlueZ backend). Two consumers are measured:

* ``bleak callback``: a plain ``start_notify`` callback counting notifications;
* ``BleSource``: our source end to end (enqueue, decode, ImuBatch out), with a WitMotion
  emulation sending one 20-byte packet per sample (pushed past the device's real 200 Hz
  to find the ceiling).

The peripheral is asked for a rate; the table shows what arrived and whether any went missing.
All three processes' worth of work share this machine's cores, so the ceiling is the machine's.
Run: ``python -m bench.bench_ble`` (or ``python bench/bench_ble.py``).
"""

from __future__ import annotations

import asyncio
import sys
import time

from bleak import BleakClient, BleakScanner
from bumble.gatt import Characteristic, Service

from dorsimeter.sources.ble import BleSource
from tests.emulators.dbus import private_system_bus
from tests.emulators.peripheral import NOTIFY, Peripheral, Ticker
from tests.emulators.rig import BleRig
from tests.emulators.witmotion import WitMotionPeripheral

SVC = "6e400001-0000-4000-8000-0000000be4c0"
DATA = "6e400002-0000-4000-8000-0000000be4c0"
RATES_HZ = (200, 500, 1000, 2000, 5000)
SECONDS = 2.0
GOAL_PER_S = 1000


class Blaster(Peripheral):
    """Sends 20-byte numbered notifications at a requested rate."""

    def services(self):
        self.data = Characteristic(DATA, NOTIFY, Characteristic.READABLE, b"")
        return [Service(SVC, [self.data])]

    async def blast(self, rate_hz: float, seconds: float) -> int:
        ticker = Ticker(rate_hz)
        n_total = int(rate_hz * seconds)
        sent = 0
        while sent < n_total:
            n = min(ticker.due(), n_total - sent)
            for _ in range(n):
                await self.notify(self.data, sent.to_bytes(4, "little") + bytes(16))
                sent += 1
            ticker.advance(n)
            await ticker.sleep()
        return sent


async def bleak_callback_rate(rig: BleRig, rate_hz: float) -> tuple[int, int, float]:
    """(sent, received, achieved notifications/s) into a bare bleak callback."""
    blaster = rig.peripherals[0]
    assert isinstance(blaster, Blaster)
    dev = await BleakScanner.find_device_by_name(blaster.name, timeout=5)
    got: list[float] = []
    async with BleakClient(dev) as client:  # pyright: ignore[reportArgumentType]
        await client.start_notify(DATA, lambda c, d: got.append(time.perf_counter()))
        await blaster.subscribed.wait()
        t0 = time.perf_counter()
        sent = await blaster.blast(rate_hz, SECONDS)
        deadline = time.perf_counter() + 3.0
        while len(got) < sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        span = (got[-1] - t0) if got else float("nan")
    return sent, len(got), len(got) / span if got else 0.0


async def source_rate(rate_hz: float) -> tuple[int, int, float]:
    """(sent, samples out of BleSource, samples/s) with the WitMotion emulation."""
    async with BleRig() as rig:
        wit = await rig.add(WitMotionPeripheral(rig.link, "WT901BLE-bench", "C0:BE:00:00:00:02",
                                                autostart=False))
        src = BleSource(wit.name, rate_hz=200)  # the highest rate a BWT901BLE can be set to
        n_out = 0
        t0 = time.perf_counter()

        async def consume():
            nonlocal n_out
            async for batch in src:
                n_out += len(batch)

        task = asyncio.create_task(consume())
        await wit.subscribed.wait()
        t0 = time.perf_counter()
        sent = await wit.stream_for(rate_hz, SECONDS)
        deadline = time.perf_counter() + 3.0
        while n_out < sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        span = time.perf_counter() - t0
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        await src.close()
    return sent, n_out, n_out / span


async def run() -> list[tuple[str, float, int, int, float]]:
    rows = []
    async with BleRig() as rig:
        await rig.add(Blaster(rig.link, "blaster", "C0:BE:00:00:00:01"))
        for rate in RATES_HZ:
            sent, got, achieved = await bleak_callback_rate(rig, rate)
            rows.append(("bleak callback", rate, sent, got, achieved))
    for rate in RATES_HZ[:4]:
        rows.append(("BleSource (WitMotion)", rate, *await source_rate(rate)))
    return rows


def main(argv: list[str] | None = None) -> int:
    with private_system_bus():
        rows = asyncio.run(run())
    print("BLE notifications into bleak through the emulated BlueZ (LocalLink + D-Bus)")
    print(f"{'consumer':<22} {'asked/s':>8} {'sent':>7} {'received':>9} {'lost':>6} "
          f"{'achieved/s':>11}")
    for name, rate, sent, got, achieved in rows:
        print(f"{name:<22} {rate:>8.0f} {sent:>7d} {got:>9d} {sent - got:>6d} {achieved:>11.0f}")
    best = max((a for n, r, s, g, a in rows if n == "bleak callback" and g == s), default=0.0)
    ok = best >= GOAL_PER_S
    print(f"goal: over {GOAL_PER_S} notifications/s into bleak with none lost (issue 5): "
          f"best {best:.0f}/s -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
