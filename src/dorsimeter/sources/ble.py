"""BLE sensors through bleak: our sensor node and the WitMotion BWT901BLE.

The link is kept by :class:`BleSource`: connect through bleak-retry-connector, subscribe, and
after a drop reconnect with backoff, re-subscribe and go on streaming into the same trial. The
notification callback only enqueues ``(generation, bytes)``; decoding happens in the stream
loop. Each connection gets a new generation number and its own callback, so a callback left
registered by an earlier connection (BlueZ's doubled callbacks after a reconnect, bleak issue
2002) cannot deliver anything twice: its items carry an old generation and are dropped.

A drop is recorded as a :class:`Gap` (device times either side, samples lost, link down time) in
``BleSource.gaps`` and passed to ``on_gap``; the batches themselves carry on with unbroken
device time. ``BleSource.status`` has what the UI shows: link state, sample rate, loss, battery.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from dorsimeter.errors import DeviceError, DorsimeterError
from dorsimeter.sources.base import Gap, Source
from dorsimeter.text import device_name
from dorsimeter.types import ImuBatch
from dorsimeter.wire import frames, gatt, witmotion
from dorsimeter.wire.address import is_address, normalise_address
from dorsimeter.wire.frames import FrameDecoder

log = logging.getLogger(__name__)

SCAN_TIMEOUT_ENV = "DORSIMETER_BLE_SCAN_S"  # how long to look for a named sensor (default 10)
# the vendor's SDK (WitBluetooth_BWT901BLE5_0) waits 100 ms between unlock, write and save
WITMOTION_COMMAND_GAP_S = 0.1
NAME_SETTLE_S = 1.0  # after a name matched, how long to listen for another sensor with it
# The node's firmware registers the standard Battery Service 0x180F / Battery Level 0x2A19
# (Bluetooth base UUID …-00805f9b34fb; WitMotion's own UUIDs use …-00805f9a34fb).
BATTERY_SERVICE_DATA_UUID = gatt.BATTERY_SERVICE_UUID
BATTERY_LEVEL_UUID = gatt.BATTERY_LEVEL_UUID


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise DorsimeterError(f"environment variable {name}={text!r}: expected a positive "
                              "number of seconds")
    return value


def _norm(uuid: str) -> str:
    return uuid.lower()


# --------------------------------------------------------------------------- device kinds
class DeviceKind:
    """What differs between supported sensors: UUIDs, set-up writes, the decoder."""

    name = "sensor"
    service_uuid = ""
    notify_uuid = ""
    control_uuid = ""        # notifications with command responses (if any)
    has_sequence = False
    needs_bonding = False    # pair before connecting (writes need an encrypted, bonded link)
    has_battery_service = False

    def decoder(self, rate_hz: float) -> Any:
        raise NotImplementedError

    async def setup(self, client: BleakClient, rate_hz: float,
                    responses: asyncio.Queue[bytes]) -> int | None:
        """Commands after subscribing, awaited one by one; returns the battery % if known."""
        return None

    async def battery(self, client: BleakClient, responses: asyncio.Queue[bytes],
                      seq: int) -> int | None:
        """The battery level now, if the device can tell."""
        return None


class NodeKind(DeviceKind):
    """The dorsimeter sensor node (firmware_bridge): framed protocol with sequence numbers."""

    name = "dorsimeter node"
    service_uuid = _norm(gatt.NODE_SERVICE_UUID)
    notify_uuid = _norm(gatt.NODE_DATA_UUID)
    control_uuid = _norm(gatt.NODE_CONTROL_UUID)
    has_sequence = True
    needs_bonding = True
    has_battery_service = True

    def decoder(self, rate_hz: float) -> FrameDecoder:
        return FrameDecoder()

    async def _command(self, client: BleakClient, responses: asyncio.Queue[bytes], seq: int,
                       frame: bytes, timeout_s: float = 2.0) -> frames.Message:
        """Write one COMMAND frame and wait for its RESPONSE on the control characteristic."""
        await client.write_gatt_char(self.control_uuid, frame, response=True)
        decoder = FrameDecoder()
        async with asyncio.timeout(timeout_s):
            while True:
                decoder.feed(await responses.get())
                for msg in decoder.pop_messages():
                    if msg.mtype == frames.T_RESPONSE and msg.seq == seq:
                        return msg

    async def setup(self, client: BleakClient, rate_hz: float,
                    responses: asyncio.Queue[bytes]) -> int | None:
        try:
            resp = await self._command(client, responses, 1,
                                       frames.encode_set_rate(1, int(round(rate_hz))))
            if resp.status == frames.ST_NOT_ALLOWED:
                raise DeviceError("the sensor node refused to change its rate: this computer is "
                                  "not bonded with it (pair within its pairing window: switch "
                                  "it on, or hold its button 3 s; hardware_docs/pairing.md)")
            if resp.status != frames.ST_OK:
                raise DeviceError(f"the sensor node cannot stream at {rate_hz:g} Hz")
            return await self.battery(client, responses, 2)
        except TimeoutError as e:
            raise DeviceError("the sensor node did not answer its commands") from e

    async def battery(self, client: BleakClient, responses: asyncio.Queue[bytes],
                      seq: int) -> int | None:
        resp = await self._command(client, responses, seq,
                                   frames.encode_command(seq, frames.CMD_BATTERY))
        return int(resp.data[0]) if resp.status == frames.ST_OK and resp.data else None


class WitMotionKind(DeviceKind):
    """WitMotion BWT901BLE / WT901BLE: 0x55 0x61 packets, no sequence numbers."""

    name = "WitMotion BWT901BLE"
    service_uuid = _norm(gatt.WITMOTION_SERVICE_UUID)
    notify_uuid = _norm(gatt.WITMOTION_NOTIFY_UUID)
    write_uuid = _norm(gatt.WITMOTION_WRITE_UUID)

    def decoder(self, rate_hz: float) -> witmotion.WitBleDecoder:
        return witmotion.WitBleDecoder(rate_hz)

    async def setup(self, client: BleakClient, rate_hz: float,
                    responses: asyncio.Queue[bytes]) -> int | None:
        try:
            commands = witmotion.rate_commands(rate_hz)
        except ValueError as e:
            raise DeviceError(str(e)) from e
        char = client.services.get_characteristic(self.write_uuid)
        response = char is not None and "write" in char.properties
        for k, cmd in enumerate(commands):  # unlock, rate, save: one at a time, paced
            if k:
                await asyncio.sleep(WITMOTION_COMMAND_GAP_S)
            await client.write_gatt_char(self.write_uuid, cmd, response=response)
        return None


KINDS: tuple[DeviceKind, ...] = (NodeKind(), WitMotionKind())


WITMOTION_NAME_PREFIXES = ("WT901", "BWT901")  # units that advertise their name only


def kind_from_uuids(uuids, name: str | None = None) -> DeviceKind | None:
    """The supported sensor kind offering one of ``uuids`` (advertised or discovered), or
    failing that a WitMotion recognised by its advertised name."""
    have = {_norm(u) for u in uuids}
    for kind in KINDS:
        if kind.service_uuid in have:
            return kind
    if name and name.upper().startswith(WITMOTION_NAME_PREFIXES):
        return KINDS[1]
    return None


# --------------------------------------------------------------------------- scanning
@dataclass
class FoundSensor:
    """A supported sensor seen while scanning."""

    address: str
    name: str
    kind: str
    rssi_dbm: int
    battery_pct: int | None
    device: BLEDevice | None = field(default=None, repr=False)


def _advertised_battery(adv: AdvertisementData) -> int | None:
    data = adv.service_data.get(BATTERY_SERVICE_DATA_UUID)
    return int(data[0]) if data else None


async def read_battery_level(device: BLEDevice, timeout_s: float = 5.0) -> int | None:
    """Connect briefly and read the standard Battery Level (0x2A19), None if not offered."""
    try:
        async with asyncio.timeout(timeout_s):
            async with BleakClient(device) as client:
                char = client.services.get_characteristic(BATTERY_LEVEL_UUID)
                if char is None:
                    return None
                return int((await client.read_gatt_char(char))[0])
    except (BleakError, OSError, TimeoutError, IndexError) as e:
        log.debug("battery of %s: %s", device.address, e)
        return None


NO_BLE_HELP = ("use a USB sensor (--sensor serial:PORT) or the simulator (--sensor sim) "
               "meanwhile")


def scan_error(e: BaseException) -> str:
    """Why a BLE scan failed, in words a user can act on: bleak reports a computer without
    Bluetooth as the system D-Bus socket missing ("[Errno 2] No such file or directory"), BlueZ
    absent from the bus, or no adapter."""
    text = str(e)
    if isinstance(e, (FileNotFoundError, ConnectionRefusedError)):
        return ("no Bluetooth on this computer: BlueZ (Linux's Bluetooth service) and its "
                "system D-Bus are not running; install and start them (Debian/Ubuntu: `sudo apt "
                "install bluez`, then `sudo systemctl start bluetooth`), or " + NO_BLE_HELP)
    if "org.bluez" in text or "ServiceUnknown" in text:
        return ("no Bluetooth service: BlueZ is not running; start it (`sudo systemctl start "
                "bluetooth`, or install the `bluez` package), or " + NO_BLE_HELP)
    if "adapter" in text.lower():
        return ("no Bluetooth adapter found: plug one in or switch it on (`rfkill unblock "
                "bluetooth`, `bluetoothctl power on`), or " + NO_BLE_HELP)
    return f"cannot scan for BLE sensors: {e}"


async def scan_sensors(timeout_s: float = 5.0, read_battery: bool = True) -> list[FoundSensor]:
    """Supported sensors nearby, strongest first.

    The battery level comes from the advertisement when a sensor puts it there, else (with
    ``read_battery``) from a short connection to read the Battery Service. WitMotion sensors
    have no Battery Service and show None.
    """
    try:  # no UUID filter: some WitMotion units advertise only their name
        found = await BleakScanner.discover(timeout=timeout_s, return_adv=True)
    except (BleakError, OSError) as e:
        raise DeviceError(scan_error(e)) from e
    out = []
    for dev, adv in found.values():
        kind = kind_from_uuids(adv.service_uuids, adv.local_name)
        if kind is None:
            continue
        battery = _advertised_battery(adv)
        if battery is None and read_battery and kind.has_battery_service:
            battery = await read_battery_level(dev)
        # the name is whatever the air said: capped, control characters out, at the source
        name = device_name(adv.local_name) or device_name(dev.name) or dev.address
        out.append(FoundSensor(dev.address, name, kind.name, adv.rssi, battery, dev))
    return sorted(out, key=lambda f: -f.rssi_dbm)


#: one scan at a time per event loop: BlueZ runs one discovery per adapter, and a second
#: scanner's start and stop cut the first one's short ("No discovery started")
_SCAN_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _scan_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _SCAN_LOCKS.get(loop)
    if lock is None:
        lock = _SCAN_LOCKS[loop] = asyncio.Lock()
    return lock


async def find_sensor(target: str, timeout_s: float = 10.0,
                      permits: Callable[[str], bool] | None = None,
                      ) -> tuple[BLEDevice, AdvertisementData]:
    """The device with address (a MAC address, or a CoreBluetooth UUID on macOS) or advertised
    name ``target``; DeviceError if not seen, or if a name is ambiguous.

    A name matches only when it picks one sensor: after the first match the scan listens
    ``NAME_SETTLE_S`` longer, and if several devices advertise the name, the one ``permits``
    (the allow-list) accepts is taken, else it is an error naming their addresses. Scans take
    turns (``_scan_lock``), so two sources started at once both find theirs."""
    by_address = is_address(target)
    address = normalise_address(target) if by_address else ""

    def match(dev: BLEDevice, adv: AdvertisementData) -> bool:
        if by_address:
            return dev.address.upper() == address
        return target in (adv.local_name, dev.name)

    seen: dict[str, tuple[BLEDevice, AdvertisementData]] = {}
    first = asyncio.Event()

    def on_advert(dev: BLEDevice, adv: AdvertisementData) -> None:
        if match(dev, adv):
            seen[dev.address] = (dev, adv)
            first.set()

    try:
        async with _scan_lock(), BleakScanner(detection_callback=on_advert):
            try:
                await asyncio.wait_for(first.wait(), timeout_s)
            except TimeoutError:
                pass
            else:
                if not by_address:
                    await asyncio.sleep(NAME_SETTLE_S)
    except (BleakError, OSError) as e:
        raise DeviceError(scan_error(e)) from e
    if not seen:
        what = "address" if by_address else "name"
        raise DeviceError(f"no BLE sensor with {what} '{target}' seen in {timeout_s:g} s "
                          "(is it switched on and in range? try `dorsimeter scan`)")
    found = list(seen.values())
    if len(found) > 1 and permits is not None:
        found = [f for f in found if permits(f[0].address)] or found[:1]
    if len(found) > 1:
        addresses = ", ".join(sorted(d.address for d, _ in found))
        raise DeviceError(f"{len(found)} BLE sensors advertise the name '{target}' "
                          f"({addresses}): name one by its address, e.g. "
                          f"--sensor ble:{found[0][0].address}")
    return found[0]


def backend_can_pair() -> bool:
    """bleak's CoreBluetooth backend (macOS) has no ``pair()``: there the node's encrypted
    control characteristic makes the OS pair on the first write."""
    return sys.platform != "darwin"


async def _pair(client: BleakClient) -> None:
    try:
        await client.pair()
    except NotImplementedError:  # a backend without pairing: the encrypted write pairs
        log.info("this Bluetooth backend cannot pair on request; the OS pairs on the first write")


# --------------------------------------------------------------------------- the source
@dataclass
class LinkStatus:
    """What the UI shows about the link."""

    state: str = "idle"    # scanning | connecting | connected | reconnecting | lost | closed
    kind: str = ""
    address: str = ""
    rate_hz: float = 0.0   # samples per second received over the last ~2 s
    received: int = 0      # samples decoded
    notifications: int = 0  # notifications handled (once each)
    frames: int = 0        # valid data frames decoded (node)
    lost_frames: int = 0   # frames missing by sequence number (exact)
    lost: int = 0          # samples in those frames (exact when frames are full)
    duplicates: int = 0    # notifications dropped as duplicates (sequence or old generation)
    crc_errors: int = 0
    battery_pct: int | None = None
    rssi_dbm: int | None = None  # when it was found
    reconnects: int = 0
    gaps: int = 0

    @property
    def loss_fraction(self) -> float:
        """Fraction of frames lost on the link (node only; WitMotion has no sequence)."""
        total = self.frames + self.lost_frames
        return self.lost_frames / total if total else 0.0


class BleSource(Source):
    """Streams a BLE sensor named by address or advertised name, surviving link drops.

    ``rate_hz`` is the sample rate asked of the device (WitMotion: a rate command) and the
    nominal rate for the pipeline. ``give_up_s``: how long reconnecting may take before the
    sensor counts as lost for good (DeviceError).
    """

    def __init__(self, target: str, side: str = "left", rate_hz: float = 100.0,
                 scan_timeout_s: float | None = None, give_up_s: float = 30.0,
                 battery_every_s: float = 60.0,
                 on_gap: Callable[[Gap], None] | None = None, allowed=None) -> None:
        self.target = target
        self.allowed = allowed  # a security.AllowList: connect only to sensors on it (CLI)
        self.side = side
        self.rate_hz = rate_hz
        self.scan_timeout_s = scan_timeout_s if scan_timeout_s is not None else \
            _env_seconds(SCAN_TIMEOUT_ENV, 10.0)
        self.give_up_s = give_up_s
        self.battery_every_s = battery_every_s
        self._responses: asyncio.Queue[bytes] | None = None
        self._battery_task: asyncio.Task | None = None
        self._battery_t = 0.0
        self._command_seq = 2
        self.on_gap = on_gap
        self.name = f"BLE {target}"
        self.status = LinkStatus()
        self.gaps: list[Gap] = []
        self.client: BleakClient | None = None
        self.stale_notifications = 0
        self._kind: DeviceKind | None = None
        self._device: BLEDevice | None = None
        self._decoder: Any = None
        # (connection generation, notification or None for "link dropped", arrival time)
        self._queue: asyncio.Queue[tuple[int, bytes | None, float]] = asyncio.Queue()
        self._generation = 0
        self._closing = False
        self._pending_gap: Gap | None = None
        self._down_since: float | None = None
        self._last_t_s: float | None = None
        self._last_error: Exception | None = None
        self._arrivals: deque[tuple[float, int]] = deque()

    def set_side(self, side: str) -> None:
        self.side = side

    # --- callbacks: enqueue only
    def _callback_for(self, generation: int) -> Callable[[Any, bytearray], None]:
        def on_notify(_char: Any, data: bytearray) -> None:
            self._queue.put_nowait((generation, bytes(data), time.monotonic()))

        return on_notify

    def _on_disconnect(self, generation: int) -> Callable[[BleakClient], None]:
        def on_disconnect(_client: BleakClient) -> None:
            self._queue.put_nowait((generation, None, time.monotonic()))

        return on_disconnect

    # --- connecting
    async def _connect(self) -> None:
        assert self._device is not None
        self._generation += 1
        gen = self._generation
        self.status.state = "connecting" if gen == 1 else "reconnecting"
        pair = self._kind is not None and self._kind.needs_bonding and backend_can_pair()
        client = await establish_connection(
            BleakClient, self._device, self.target,
            disconnected_callback=self._on_disconnect(gen), max_attempts=3, pair=pair,
            ble_device_callback=lambda: self._device)
        try:
            if self._kind is None:
                self._kind = kind_from_uuids(s.uuid for s in client.services)
                if self._kind is None:
                    raise DeviceError(f"BLE device '{self.target}' offers neither the dorsimeter "
                                      "node service nor the WitMotion service (ffe5)")
                if self._kind.needs_bonding and backend_can_pair():
                    await _pair(client)
            self.status.kind = self._kind.name
            self.name = f"{self._kind.name} '{self.target}' (BLE)"
            responses: asyncio.Queue[bytes] = asyncio.Queue()  # this connection's only
            if self._kind.control_uuid:
                await client.start_notify(self._kind.control_uuid,
                                          lambda _c, d: responses.put_nowait(bytes(d)))
            battery = await self._kind.setup(client, self.rate_hz, responses)
            # subscribe to the data after the set-up, so that all of it is at the asked rate
            await client.start_notify(self._kind.notify_uuid, self._callback_for(gen))
        except BaseException:
            await client.disconnect()
            raise
        if battery is not None:
            self.status.battery_pct = battery
        self.client = client
        self._responses = responses
        self._battery_t = time.monotonic()
        self.status.state = "connected"

    def _maybe_poll_battery(self) -> None:
        """Ask for the battery level every ``battery_every_s``, beside the stream."""
        now = time.monotonic()
        if (self._kind is None or not self._kind.has_battery_service or self.client is None
                or now - self._battery_t < self.battery_every_s
                or (self._battery_task is not None and not self._battery_task.done())):
            return
        self._battery_t = now
        self._command_seq = 3 + (self._command_seq - 2) % 60000
        self._battery_task = asyncio.get_running_loop().create_task(
            self._poll_battery(self.client, self._responses, self._command_seq))

    async def _poll_battery(self, client: BleakClient, responses, seq: int) -> None:
        try:
            battery = await self._kind.battery(client, responses, seq)
        except (BleakError, OSError, TimeoutError) as e:
            log.debug("battery poll: %s", e)
            return
        if battery is not None:
            self.status.battery_pct = battery

    async def _reconnect(self) -> None:
        """Reconnect with backoff until it works or ``give_up_s`` has passed."""
        self.status.state = "reconnecting"
        self.status.reconnects += 1
        self._down_since = time.monotonic()
        self._pending_gap = Gap(t_before_s=self._last_t_s)
        old, self.client = self.client, None
        if old is not None:
            try:
                await old.disconnect()
            except (BleakError, OSError) as e:
                log.debug("disconnect after drop: %s", e)
        self._last_error = None
        try:
            async with asyncio.timeout(self.give_up_s):
                await self._reconnect_with_backoff()
        except TimeoutError as e:
            self.status.state = "lost"
            why = f" (last: {self._last_error})" if self._last_error else ""
            raise DeviceError(f"BLE sensor '{self.target}' lost: no reconnection in "
                              f"{self.give_up_s:g} s{why}") from e
        self._pending_gap.down_s = time.monotonic() - self._down_since

    async def _reconnect_with_backoff(self) -> None:
        """Any failure of a connection or of its set-up (a refused or unanswered command is a
        DeviceError) is retried with exponential backoff; after a failure the device is looked
        up afresh (a new BLEDevice: BlueZ may have dropped its object, CoreBluetooth its
        peripheral), which ``establish_connection`` also asks for between its own attempts."""
        delay_s = 0.05
        while True:
            try:
                await self._connect()
                return
            except Exception as e:  # noqa: BLE001 - every set-up failure is retried until give_up_s
                self._last_error = e
                log.info("reconnect to %s failed (%s); retrying in %.2f s", self.target, e,
                         delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(2.0, delay_s * 2)
            try:
                self._device, _ = await find_sensor(self._device.address,
                                                    min(self.scan_timeout_s, 5.0))
            except DeviceError as e:  # not advertising yet: try the old one again
                log.debug("rescan for %s: %s", self.target, e)

    # --- streaming
    async def stream(self) -> AsyncIterator[ImuBatch]:
        self.status.state = "scanning"
        permits = self.allowed.permits if self.allowed is not None else None
        self._device, adv = await find_sensor(self.target, self.scan_timeout_s, permits)
        if self.allowed is not None and not self.allowed.permits(self._device.address):
            self.status.state = "closed"  # seen advertising; never connected to
            raise DeviceError(self.allowed.refusal(self._device.address,
                                                   device_name(adv.local_name)))
        self.status.address = self._device.address
        self._kind = kind_from_uuids(adv.service_uuids, adv.local_name)
        self.status.battery_pct = _advertised_battery(adv)
        self.status.rssi_dbm = adv.rssi
        try:
            await self._connect()
        except (TimeoutError, BleakError, OSError) as e:
            raise DeviceError(f"cannot connect to BLE sensor '{self.target}': {e}") from e
        assert self._kind is not None
        self._decoder = self._kind.decoder(self.rate_hz)
        try:
            while not self._closing:
                gen, data, t_arrival = await self._queue.get()
                if gen != self._generation:
                    self.stale_notifications += data is not None
                    self.status.duplicates += data is not None
                    continue
                if data is None:  # the link dropped
                    await self._reconnect()
                    continue
                self.status.notifications += 1
                self._maybe_poll_battery()
                for batch in self._decoder.feed(data):
                    batch = self._account(batch, t_arrival)
                    if batch is not None:
                        yield batch
        finally:
            await self._release()

    def _account(self, batch: ImuBatch, t_arrival: float) -> ImuBatch | None:
        """Update status and close a pending gap; None for an empty batch."""
        if len(batch) == 0:
            return None
        batch.side = self.side
        stats = getattr(self._decoder, "stats", None)
        # rate from arrival times (taken in the callback), not from when we got round to it
        self._arrivals.append((t_arrival, len(batch)))
        while len(self._arrivals) > 2 and t_arrival - self._arrivals[0][0] > 2.0:
            self._arrivals.popleft()
        span = t_arrival - self._arrivals[0][0]
        if span > 0.5:
            n_after_first = sum(k for _, k in self._arrivals) - self._arrivals[0][1]
            self.status.rate_hz = n_after_first / span
        self.status.received += len(batch)
        if stats is not None:
            self.status.frames = int(getattr(stats, "frames", 0))
            self.status.lost_frames = int(getattr(stats, "lost", 0))
            self.status.lost = int(getattr(stats, "lost_samples", 0))
            self.status.duplicates = int(getattr(stats, "duplicates", 0)) + \
                self.stale_notifications
            self.status.crc_errors = int(getattr(stats, "crc_errors", 0))
        if batch.restart and self._pending_gap is None:  # a reset without a link drop
            self._pending_gap = Gap(t_before_s=self._last_t_s)
        if self._pending_gap is not None:
            gap, self._pending_gap = self._pending_gap, None
            gap.restart = batch.restart
            if self._kind is not None and self._kind.has_sequence:
                gap.lost_frames = self.status.lost_frames - self._gap_lost_base
                if gap.t_before_s is not None:
                    gap.lost_samples = max(0, round((float(batch.t_s[0]) - gap.t_before_s)
                                                    * self.rate_hz) - 1)
            elif self._last_arrival is not None:
                # no device time: the sensor kept sampling while the link was down, so move
                # our sample clock on by the samples it must have taken (from arrival times)
                missed = max(0, round((t_arrival - self._last_arrival) * self.rate_hz) - 1)
                gap.lost_samples, gap.estimated = missed, True
                self._t_shift_s += missed / self.rate_hz
            gap.t_after_s = float(batch.t_s[0]) + self._t_shift_s
            self.gaps.append(gap)
            self.status.gaps = len(self.gaps)
            if self.on_gap is not None:
                self.on_gap(gap)
        if self._t_shift_s:
            batch.t_s = batch.t_s + self._t_shift_s
            if batch.seq is not None:
                batch.seq = batch.seq + round(self._t_shift_s * self.rate_hz)
        self._gap_lost_base = self.status.lost_frames
        self._last_t_s = float(batch.t_s[-1])
        self._last_arrival = t_arrival
        return batch

    _t_shift_s = 0.0  # added to a sequence-less device's sample clock after gaps
    _last_arrival: float | None = None

    _gap_lost_base = 0

    async def _release(self) -> None:
        if self.status.state != "lost":
            self.status.state = "closed"
        client, self.client = self.client, None
        self._generation += 1  # anything still queued or still arriving is stale now
        if self._battery_task is not None:
            self._battery_task.cancel()
        if client is not None:
            try:
                await client.disconnect()
            except (BleakError, OSError) as e:
                log.debug("disconnect: %s", e)

    def stats(self) -> dict:
        """Link figures for the UI (see ``Source.stats``)."""
        state = {"connected": "streaming", "closed": "ended", "scanning": "connecting",
                 "idle": "connecting"}.get(self.status.state, self.status.state)
        out: dict[str, Any] = {"state": state, "rate_hz": self.status.rate_hz,
                               "address": self.status.address, "gaps": self.status.gaps,
                               "reconnects": self.status.reconnects}
        if self._kind is not None and self._kind.has_sequence:
            out["loss"] = self.status.loss_fraction
        if self.status.battery_pct is not None:
            out["battery"] = self.status.battery_pct / 100.0
        if self.status.rssi_dbm is not None:
            out["rssi_dbm"] = self.status.rssi_dbm
        return out

    async def close(self) -> None:
        self._closing = True
        self._queue.put_nowait((-1, None, 0.0))  # wakes a stream loop waiting; stale
        await self._release()
