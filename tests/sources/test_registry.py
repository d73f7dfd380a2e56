"""The sensor registry holds everything about a device family, and nothing else names one.

Adding a family is one decoder module in ``wire/``, one ``SensorKind`` in
``sources/registry.py`` and its emulator in ``tests/emulators/`` (README: "Adding a sensor"):
checked here from the source files (no per-family branch or import outside the registry), from
the entries (each complete, each with its emulator), and by registering a new family in the test
alone and streaming it through real bleak and the emulated BlueZ.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import importlib
from pathlib import Path

import numpy as np
import pytest
from bumble.gatt import Service

from dorsimeter.sources import registry
from dorsimeter.sources.ble import BleSource, scan_sensors
from dorsimeter.sources.registry import KINDS, SensorKind, WitMotionKind
from dorsimeter.types import GRAVITY_M_S2
from tests.emulators.dbus import private_system_bus
from tests.emulators.rig import BleRig
from tests.emulators.witmotion import WitMotionPeripheral

SRC = Path(__file__).resolve().parents[2] / "src" / "dorsimeter"
#: the code that reads the registry: it may name no family
READERS = ("sources/ble.py", "sources/serial.py", "sources/__init__.py", "sources/base.py",
           "cli/scan.py", "cli/sensors.py", "tui/screens/connect.py")
#: the family-specific wire modules (each entry's decoder's), imported by the registry only
FAMILY_MODULES = {type(k.decoder(100.0)).__module__ for k in KINDS}


def _identifiers_and_strings(tree: ast.AST) -> set[str]:
    """Names, attributes and string constants of a module, docstrings left out."""
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, ast.alias):
            out.add(n.name)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            out.add(n.value)
    return out


@pytest.mark.parametrize("path", READERS)
def test_the_readers_of_the_registry_name_no_family(path):
    tree = ast.parse((SRC / path).read_text(encoding="utf-8"))
    words = _identifiers_and_strings(tree)
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {f"{n.module}.{a.name}" for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not imported & FAMILY_MODULES, f"{path} imports a family's wire module"
    families = {k.key for k in KINDS} | {k.name for k in KINDS} | {type(k).__name__ for k in KINDS}
    families |= {"KINDS"} if path != "sources/serial.py" else set()  # the serial probe lists
    # every word that names a family, in any case, as a name, attribute or string
    hits = {w for w in words for f in families if f.lower() in w.lower()}
    hits -= {"registry"}  # the module's own name
    if path == "sources/serial.py":
        hits -= {"KINDS"}  # iterates all families (error text, blind rate commands)
    assert not hits, f"{path} names a family: {sorted(hits)}"
    uuids = {u.lower() for k in KINDS
             for u in (k.service_uuid, k.notify_uuid, k.control_uuid, k.write_uuid) if u}
    assert not {w.lower() for w in words} & uuids, f"{path} holds a family's UUID"


def test_every_family_is_declared_whole_with_its_decoder_and_its_emulator():
    keys = [k.key for k in KINDS]
    assert len(set(keys)) == len(keys) == len({k.name for k in KINDS}) >= 2
    services = [k.service_uuid.lower() for k in KINDS]
    assert len(set(services)) == len(services)
    rng = np.random.default_rng(5)
    for kind in KINDS:
        assert type(kind).__module__ == "dorsimeter.sources.registry"
        assert kind.service_uuid and kind.notify_uuid and kind.write_uuid and kind.rates_hz
        decoders = [kind.decoder(100.0)] + ([kind.serial_decoder(100.0)] if kind.serial else [])
        for dec in decoders:
            assert type(dec).__module__.startswith("dorsimeter.wire.")  # its decoder module
            assert dataclasses.is_dataclass(dec.state)  # its evolving state, declared
            for _ in range(20):  # any bytes at all: never raises, counts what it skipped
                dec.feed(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8)
                         .tobytes())
            assert dec.stats.bytes_skipped > 0
            assert kind.packets(dec) >= 0  # its packets_stat names one of the decoder's counters
        # the emulator, written from the vendor's layout, serves the UUIDs the entry declares
        emulator = importlib.import_module(f"tests.emulators.{kind.key}")
        peripheral_cls = next(v for v in vars(emulator).values() if isinstance(v, type)
                              and v.__module__ == emulator.__name__
                              and v.__name__.endswith("Peripheral"))
        served = {str(s.uuid).lower() for s in peripheral_cls.services(
            peripheral_cls.__new__(peripheral_cls))}
        assert kind.service_uuid.lower() in served


def test_the_pickers_read_the_registry(monkeypatch):
    class Other(SensorKind):
        key, name, service_uuid, name_prefixes = "other", "Other IMU", "1234abcd-0000-1000-" \
            "8000-00805f9b34fb", ("OTH-",)

    assert registry.kind_for_services(["1234ABCD-0000-1000-8000-00805F9B34FB"]) is None
    monkeypatch.setattr(registry, "KINDS", (*KINDS, Other()))
    assert registry.kind_for_services(["1234ABCD-0000-1000-8000-00805F9B34FB"]).key == "other"
    assert registry.kind_for_services([], "oth-77").key == "other"
    assert "Other IMU (1234abcd)" in registry.services_wanted()


def test_the_rate_is_negotiated_only_by_the_families_that_snap_to_what_they_offer():
    node, wit = (next(k for k in KINDS if k.key == key) for key in ("node", "witmotion"))
    # the node and WitMotion: 100 Hz without a rate, an asked rate as asked (their set-up
    # accepts or refuses it, as before)
    assert [node.stream_rate(r) for r in (None, 50, 150)] == [100, 50, 150]
    assert [wit.stream_rate(r) for r in (None, 50, 150)] == [100, 50, 150]
    # the others: the offered rate nearest 100 Hz, or nearest the one asked (within 25 %)
    assert {k.key: k.stream_rate(None) for k in KINDS if k.snaps_rate} == {
        "movella": 60, "polar": 104, "movesense": 104, "metawear": 100}


# --------------------------------------------------------------- a family added in the test only
MIRROR_SERVICE = "6d697272-6f72-4000-8000-00805f9b34fb"
MIRROR_NOTIFY = "6d697273-6f72-4000-8000-00805f9b34fb"
MIRROR_WRITE = "6d697274-6f72-4000-8000-00805f9b34fb"


class MirrorKind(WitMotionKind):
    """A made-up family that speaks WitMotion's packets under its own UUIDs and names."""

    key = "mirror"
    name = "Mirror IMU"
    service_uuid, notify_uuid, write_uuid = MIRROR_SERVICE, MIRROR_NOTIFY, MIRROR_WRITE
    name_prefixes = ("MIRROR",)
    serial = False


class MirrorPeripheral(WitMotionPeripheral):
    """Its emulator: the WitMotion emulator's streaming under the new GATT layout."""

    def services(self) -> list[Service]:
        return [Service(MIRROR_SERVICE, [self.stream(MIRROR_NOTIFY),
                                         self.writable(MIRROR_WRITE, self._on_command)])]

    def advertisement(self) -> tuple[bytes, bytes]:
        return self.named_advertisement()  # its name only


@pytest.fixture()
def system_bus():
    with private_system_bus() as bus:
        yield bus


async def test_a_family_added_by_one_entry_is_scanned_and_streamed_through_real_bleak(
        system_bus, monkeypatch):
    monkeypatch.setattr(registry, "KINDS", (*KINDS, MirrorKind()))
    async with BleRig(mtu=23) as rig:
        mirror = await rig.add(MirrorPeripheral(rig.link, "MIRROR-01", "C0:11:22:00:00:01"))
        found = await scan_sensors(2.0)
        assert [(f.name, f.kind) for f in found] == [("MIRROR-01", "Mirror IMU")]
        assert found[0].battery_pct == 56  # its battery read as WitMotion's (3.85 V)
        skip = len(mirror.sent.acc_g)  # what the scan's short connection was sent
        source = BleSource("MIRROR-01", rate_hz=50)
        n, batches = 0, []

        async def run():
            nonlocal n
            async for batch in source:
                batches.append(batch)
                n += len(batch)
                if n >= 60:
                    return

        try:
            await asyncio.wait_for(run(), 30)
        finally:
            await source.close()
        # its set-up (the rate command of the entry) reached the emulator, its decoder ran
        assert mirror.rate_changes == [50.0]
        assert source.link.kind == "Mirror IMU" and source.link.loss is None
        sent_acc_g = mirror.sent.arrays()[0][skip:]
        acc = np.concatenate([b.acc_m_s2 for b in batches])
        k = min(len(acc), len(sent_acc_g))
        assert k >= 60
        assert np.max(np.abs(acc[:k] / GRAVITY_M_S2 - sent_acc_g[:k])) <= 0.5 * 16 / 32768 + 1e-6


async def test_scan_lists_one_emulated_sensor_of_every_family(system_bus):
    """What ``python -m tests.emulators`` serves: each family's ``demo()`` sensor, all found by
    ``scan`` under their family's name."""
    from tests.emulators.peripheral import Impairments

    async with BleRig() as rig:
        for seed, kind in enumerate(KINDS):
            emulator = importlib.import_module(f"tests.emulators.{kind.key}")
            peripheral, rssi = emulator.demo(rig.link, Impairments(0.0, seed=seed))
            await rig.add(peripheral, rssi=rssi)
        found = await scan_sensors(2.0, read_battery=False)
        assert sorted(f.kind for f in found) == sorted(k.name for k in KINDS)
