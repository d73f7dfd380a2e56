"""What the screens ask of the rest of dorsimeter: sensors to connect, athletes, history, export.

The modules that provide them are imported where they are used (BLE scan, the SQLite store,
the session's wall geometry): start-up stays short and the screens use the real objects, never
a guess at their shape. Blocking calls here are run by the screens in thread workers.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from dorsimeter.session.wall import HAND_WIDTH_M, AthleteGeometry
from dorsimeter.store.db import Athlete
from dorsimeter.wire.sensorspec import SensorSpec


@dataclass
class FoundSensor:
    """One entry of the connect screen's list."""

    spec: str  # what --sensor takes: sim, serial:PORT, ble:ADDRESS
    name: str
    detail: str = ""
    address: str | None = None  # BLE: the address the allow-list knows it by


def serial_ports() -> list[FoundSensor]:
    """USB serial ports pyserial sees (blocking: run in a thread); none when it cannot look."""
    from serial.tools import list_ports

    try:
        ports = list_ports.comports()
    except OSError:
        return []
    return [FoundSensor(f"serial:{p.device}", p.description or p.device,
                        f"{p.manufacturer or ''} {p.hwid or ''}".strip())
            for p in sorted(ports, key=lambda p: p.device)]


def load_allow_list(home=None):
    """The user's BLE sensor allow-list (blocking: run in a thread), or None without one."""
    from dorsimeter.store.security import AllowList

    return AllowList.load(home)


def box_calibration_for(spec: SensorSpec, home=None, names: tuple[str, ...] = ()):
    """The box calibration stored for a BLE sensor (``dorsimeter sensor-cal --id``), found as
    the CLI finds it (``sensor_cal_for``: by the address or name in ``ble:ADDRESS_OR_NAME``),
    else under one of ``names`` (the name the scan saw); None for other sources or when none is
    stored. Blocking: run in a thread. A damaged calibration file is an error
    (DorsimeterError), as on the command line."""
    from dorsimeter.io.calfiles import sensor_cal_for

    if spec.kind != "ble":
        return None
    for key in (spec.target, *names):
        cal = sensor_cal_for(SensorSpec("ble", key), None, home) if key else None
        if cal is not None:
            return cal
    return None


async def ble_sensors(timeout_s: float = 4.0) -> tuple[list[FoundSensor], str | None]:
    """Nearby supported BLE sensors from the BLE source's scan, and a note when there is none."""
    from dorsimeter.sources.ble import scan_sensors

    try:
        found = await scan_sensors(timeout_s)
    except Exception as e:  # no adapter, BlueZ down: say so in the list
        return [], f"BLE scan failed: {e}"
    out = []
    for d in found:
        batt = d.battery_pct
        detail = f"{d.kind}  {d.rssi_dbm} dBm" + ("" if batt is None else f"  batt {batt} %")
        out.append(FoundSensor(f"ble:{d.address}", d.name or d.address, detail, d.address))
    return out, None


class StoreClient:
    """The history store on a thread of its own.

    SQLite connections belong to the thread that opened them, and the event loop must never wait
    on the disk: every store call runs, in order, on one worker thread. A live session is stored
    through the store's ``SessionRecorder`` on that thread (samples queued batch by batch, trials
    and the end mark on ``finish``)."""

    def __init__(self, home=None) -> None:
        self.home = home
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dorsimeter-store")
        self._store = None
        self.recorder = None
        self.session_id: int | None = None
        self.error: str | None = None

    def _get(self):
        if self._store is None:
            from dorsimeter.store import Store

            self._store = Store.open(self.home)
        return self._store

    def run(self, fn, *args) -> Future:
        """``fn(store, *args)`` on the store thread."""
        return self._pool.submit(lambda: fn(self._get(), *args))

    async def call(self, fn, *args):
        """Await ``fn(store, *args)`` run on the store thread."""
        return await asyncio.wrap_future(self.run(fn, *args))

    # -- the live session ------------------------------------------------------------------

    def start_recording(self, kind: str, athlete: str | None, sensor: str | None,
                        sensor_kind: str | None = None, calibrations: dict | None = None,
                        raw_path=None, notes: str | None = None, legs: dict | None = None
                        ) -> Future:
        """``legs``: side → (sensor name, raw CSV) with a sensor per shin."""
        def start(store):
            from dorsimeter.store.recorder import SessionRecorder

            self.recorder = SessionRecorder(store, kind, athlete=athlete, sensor=sensor,
                                            sensor_kind=sensor_kind, raw_path=raw_path,
                                            notes=notes, calibrations=calibrations, legs=legs)
            self.session_id = self.recorder.session_id
            return self.session_id

        def start_or_say(_store):
            try:
                return start(self._get())
            except Exception as e:  # read-only or full data directory: the UI goes on
                self.error = str(e)
                return None

        return self._pool.submit(lambda: start_or_say(None))

    def record(self, readings, events) -> None:
        """Queue one pipeline output for the store (in order, never blocking the caller)."""
        if len(readings) == 0 and not events:
            return

        def add(_store):
            if self.recorder is not None:
                try:
                    self.recorder.add(readings, list(events))
                except Exception as e:  # disk full: keep the UI alive, say it
                    self.error = str(e)

        self.run(add)

    def finish_recording(self, results) -> Future:
        """Store the session's trials and mark it ended, on the store thread, from a copy of
        ``results`` taken now on the caller's (the event loop's): it may go on changing."""
        from dorsimeter.store.recorder import ResultsSnapshot

        snapshot = ResultsSnapshot.of(results)

        def finish(_store):
            if self.recorder is None:
                return None
            rec, self.recorder = self.recorder, None
            return rec.finish(snapshot)

        return self._pool.submit(lambda: finish(None))  # no store to open if none was started

    def close(self, timeout_s: float = 30.0) -> None:
        """Wait for queued writes, then close the database."""
        def shut(_store):
            if self._store is not None:
                self._store.close()
                self._store = None

        try:
            self._pool.submit(lambda: shut(None)).result(timeout=timeout_s)
        finally:
            self._pool.shutdown(wait=True)


def athlete_geometry(athlete: Athlete | None) -> AthleteGeometry | None:
    """The session's ``AthleteGeometry`` for an athlete whose tibia and toe-to-ankle lengths are
    known, else None."""
    if athlete is None or not athlete.tibia_length_m or athlete.foot_length_m is None:
        return None
    return AthleteGeometry(float(athlete.tibia_length_m), float(athlete.foot_length_m))


def wall_target_deg(athlete: Athlete | None) -> float | None:
    """Tibia angle at which the knee reaches the hand-width wall, from the athlete's lengths
    (the session's wall geometry), or None when they are not known or it is out of reach."""
    geo = athlete_geometry(athlete)
    return None if geo is None else geo.angle_to_reach_deg(HAND_WIDTH_M)
