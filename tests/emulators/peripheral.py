"""A Bumble BLE peripheral on a LocalLink that can lose notifications and drop its link.

The LocalLink carries every packet instantly and never loses one, so the radio's faults are
injected here, at the peripheral: a seeded fraction of notifications are never sent (and are
counted, so a test can compare the host's loss count with the truth), and :meth:`drop_link`
ends the connection the way a supervision timeout does, optionally staying silent (not
advertising) for a while before the host can reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import HCI_CONNECTION_TIMEOUT_ERROR, Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

log = logging.getLogger(__name__)

NOTIFY = Characteristic.Properties.NOTIFY
READ = Characteristic.Properties.READ
WRITE = Characteristic.Properties.WRITE
WRITE_NO_RESPONSE = Characteristic.Properties.WRITE_WITHOUT_RESPONSE
INDICATE = Characteristic.Properties.INDICATE
#: the standard Battery Service and its Battery Level characteristic (16-bit UUIDs)
BATTERY_SERVICE_16, BATTERY_LEVEL_16 = "180F", "2A19"


@dataclass
class Impairments:
    """Faults the emulated radio adds. ``loss_fraction`` of notifications vanish (seeded)."""

    loss_fraction: float = 0.0
    seed: int = 0


@dataclass
class LinkCounters:
    """What the peripheral did, for tests to compare with what the host saw."""

    sent: int = 0          # notifications that went onto the link
    dropped: int = 0       # notifications removed by injected loss
    unsent: int = 0        # produced while nobody was subscribed (link down)
    connections: int = 0
    drops: int = 0
    writes: list[bytes] = field(default_factory=list)
    write_times_s: list[float] = field(default_factory=list)  # time.monotonic() at each write


def advertising_data(*structures: tuple[int, bytes]) -> bytes:
    """Raw advertising data from (type, value) pairs."""
    return bytes(AdvertisingData(list(structures)))


def uuid128_list(uuid: str) -> tuple[int, bytes]:
    """The advertising structure listing one 128-bit service UUID (little-endian on air)."""
    return (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            bytes.fromhex(uuid.replace("-", ""))[::-1])


class Peripheral:
    """A Bumble device advertising on ``link``; subclasses add the GATT services and a stream."""

    def __init__(self, link: LocalLink, name: str, address: str,
                 impairments: Impairments | None = None) -> None:
        self.name, self.address = name, address
        self.impairments = impairments or Impairments()
        self._rng = np.random.default_rng(self.impairments.seed)
        ctrl = Controller(name, link=link, public_address=address)
        self.device = Device(name=name, address=Address(address),
                             host=Host(ctrl, AsyncPipeSink(ctrl)))
        self.counters = LinkCounters()
        self.subscribed = asyncio.Event()  # someone listens to ``self.data`` (the stream)
        self.device.on("connection", self._on_connection)
        self.device.on("characteristic_subscription", self._on_subscription)
        self._silent_until = 0.0
        self._tasks: list[asyncio.Task] = []
        self.last_write_encrypted = False

    # --- set-up
    def advertisement(self) -> tuple[bytes, bytes]:
        """(advertising data, scan response data); subclasses override (most through
        :meth:`named_advertisement`)."""
        return self.named_advertisement()

    def named_advertisement(self, *structures: tuple[int, bytes]) -> tuple[bytes, bytes]:
        """LE general discoverable, BR/EDR not supported and ``structures`` advertised, the
        complete local name in the scan response: the layout most sensors use."""
        return (advertising_data((AdvertisingData.FLAGS, b"\x06"), *structures),
                advertising_data((AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode())))

    def services(self) -> list[Service]:
        """The GATT services; subclasses override."""
        return []

    def stream(self, uuid: str, initial: bytes = b"") -> Characteristic:
        """The streaming (notify) characteristic, kept as ``self.data``: the one whose
        subscription ``subscribed`` follows and :meth:`notify` is mostly given."""
        self.data = Characteristic(uuid, NOTIFY, Characteristic.READABLE, initial)
        return self.data

    def writable(self, uuid: str, on_write: Callable[[bytes], None],
                 properties: Characteristic.Properties = WRITE | WRITE_NO_RESPONSE
                 ) -> Characteristic:
        """A write (and by default write-without-response) characteristic that records and
        forwards writes."""

        def write(conn, value: bytes) -> None:
            self.counters.writes.append(bytes(value))
            self.counters.write_times_s.append(time.monotonic())
            self.last_write_encrypted = bool(conn.is_encrypted)
            on_write(bytes(value))

        return Characteristic(uuid, properties, Characteristic.WRITEABLE,
                              CharacteristicValue(write=write))

    @staticmethod
    def battery_service(read: Callable[[], bytes], service: str = BATTERY_SERVICE_16,
                        level: str = BATTERY_LEVEL_16) -> Service:
        """A battery service: its level characteristic (read, notify) answering ``read()``;
        the standard one (0x180F, level 0x2A19) unless a family has its own."""
        return Service(service, [Characteristic(level, READ | NOTIFY, Characteristic.READABLE,
                                                CharacteristicValue(read=lambda _c: read()))])

    async def start(self) -> Peripheral:
        for svc in self.services():
            self.device.add_service(svc)
        await self.device.power_on()
        await self._advertise()
        return self

    async def _advertise(self) -> None:
        # Bumble's emulated controller does not carry scan responses (it echoes the advertising
        # data instead), so the scan response rides in the advertisement itself; with extended
        # advertising commands underneath, the length is not held to 31 bytes.
        adv, scan = self.advertisement()
        self.device.advertising_data = adv + scan
        self.device.scan_response_data = scan
        await self.device.start_advertising(auto_restart=True, advertising_interval_min=20,
                                            advertising_interval_max=20)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._tasks.clear()
        for conn in list(self.device.connections.values()):
            try:
                await conn.disconnect()
            except Exception as e:  # noqa: BLE001
                log.debug("stop: %s", e)

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        return task

    # --- link events
    def _on_connection(self, connection) -> None:
        self.counters.connections += 1
        connection.on("disconnection", lambda reason: self.subscribed.clear())

    def _on_subscription(self, connection, characteristic, notify_enabled, indicate_enabled):
        stream = getattr(self, "data", None)  # the streaming characteristic, if any
        if stream is not None and characteristic.handle != stream.handle:
            return
        if notify_enabled or indicate_enabled:
            self.subscribed.set()
        else:
            self.subscribed.clear()

    @property
    def connected(self) -> bool:
        return bool(self.device.connections)

    # --- faults
    async def drop_link(self, silent_s: float = 0.0) -> None:
        """End the connection as a supervision timeout would; stay unreachable ``silent_s``."""
        self.counters.drops += 1
        self.subscribed.clear()  # first: what is produced while the link goes down is unsent
        for conn in list(self.device.connections.values()):
            await conn.disconnect(HCI_CONNECTION_TIMEOUT_ERROR)
        if silent_s > 0:
            await asyncio.sleep(0.02)  # let Bumble's auto-restart of advertising run first
            if self.device.is_advertising:
                await self.device.stop_advertising()
            self.spawn(self._come_back(silent_s))

    async def _come_back(self, silent_s: float) -> None:
        await asyncio.sleep(silent_s)
        await self._advertise()

    # --- data
    async def notify(self, characteristic: Characteristic, value: bytes) -> bool:
        """Send one notification unless injected loss removes it; True if it was sent."""
        if not self.subscribed.is_set():
            self.counters.unsent += 1
            return False
        if self.impairments.loss_fraction > 0 and self._rng.random() < \
                self.impairments.loss_fraction:
            self.counters.dropped += 1
            return False
        await self.device.notify_subscribers(characteristic, value)
        self.counters.sent += 1
        return True


class Ticker:
    """Absolute-schedule pacing: how many periods of ``rate_hz`` are due since the start."""

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self._t0: float | None = None
        self.done = 0

    def due(self) -> int:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._t0 is None:
            self._t0 = now
        n = int((now - self._t0) * self.rate_hz) + 1 - self.done
        return max(0, n)

    def advance(self, n: int) -> None:
        self.done += n

    async def sleep(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._t0 is not None
        delay = self._t0 + self.done / self.rate_hz - loop.time()
        await asyncio.sleep(max(0.0, delay))

    def restart(self, rate_hz: float) -> None:
        self.rate_hz, self._t0, self.done = rate_hz, None, 0
