"""BLE sensors through bleak: any family in the sensor registry (``sources.registry``).

The link is kept by :class:`BleSource`: connect through bleak-retry-connector, subscribe, and
after a drop reconnect with backoff, re-subscribe and go on streaming into the same trial. The
notification callback only enqueues ``(generation, bytes)``; decoding happens in the stream
loop. Each connection gets a new generation number and its own callback, so a callback left
registered by an earlier connection (BlueZ's doubled callbacks after a reconnect, bleak issue
2002) cannot deliver anything twice: its items carry an old generation and are dropped.

A drop is recorded as a :class:`Gap` (device times either side, samples lost, link down time) in
``BleSource.gaps`` and passed to ``on_gap``; the batches themselves carry on with unbroken
device time. ``BleSource.link`` (a ``LinkStats``) has what the UI shows: link state, sample
rate, loss, battery. What the link changes as it runs is declared once, in ``BleSource.state``
(a :class:`BleState`).

Nothing here names a device family: UUIDs, set-up, decoder, sequence numbers and battery come
from the family's ``SensorKind``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from dorsimeter.errors import DeviceError, DorsimeterError
from dorsimeter.sources.base import Gap, LinkStats, Source
from dorsimeter.sources.registry import (
    DEFAULT_RATE_HZ,
    Decoder,
    SensorKind,
    kind_for_services,
    services_wanted,
)
from dorsimeter.text import device_name
from dorsimeter.types import ImuBatch
from dorsimeter.wire import gatt
from dorsimeter.wire.address import is_address, normalise_address

log = logging.getLogger(__name__)

SCAN_TIMEOUT_ENV = "DORSIMETER_BLE_SCAN_S"  # how long to look for a named sensor (default 10)
TEARDOWN_TIMEOUT_S = 2.0  # at close, how long the family's stop writes may take
NAME_SETTLE_S = 1.0  # after a name matched, how long to listen for another sensor with it
# the standard Battery Service 0x180F (Bluetooth base UUID): its level in advertised data
BATTERY_SERVICE_DATA_UUID = gatt.BATTERY_SERVICE_UUID


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


async def read_battery_level(device: BLEDevice, kind: SensorKind,
                             timeout_s: float = 5.0) -> int | None:
    """Connect briefly and ask the battery as the family tells (``SensorKind.read_battery``:
    the standard Battery Level, or a command), None if it cannot tell."""
    try:
        async with asyncio.timeout(timeout_s):
            async with BleakClient(device) as client:
                return await kind.read_battery(client)
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
    ``read_battery``) from a short connection to ask it, for the families that can tell
    (``SensorKind.reads_battery``: a Battery Service or a command); the others show None.
    """
    try:  # no UUID filter: some families advertise only their name (``name_prefixes``)
        found = await BleakScanner.discover(timeout=timeout_s, return_adv=True)
    except (BleakError, OSError) as e:
        raise DeviceError(scan_error(e)) from e
    out = []
    for dev, adv in found.values():
        kind = kind_for_services(adv.service_uuids, adv.local_name, adv.manufacturer_data)
        if kind is None:
            continue
        battery = _advertised_battery(adv)
        if battery is None and read_battery and kind.reads_battery:
            battery = await read_battery_level(dev, kind)
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
#: the states of the link, as ``LinkStats.state`` says them
CONNECTING, STREAMING, RECONNECTING, LOST, ENDED = (
    "connecting", "streaming", "reconnecting", "lost", "ended")


@dataclass
class BleState:
    """What a :class:`BleSource` changes as it runs, declared in one place (as VQF's
    ``PyVQFState``); the settings are the source's own attributes, the figures its ``link``."""

    kind: SensorKind | None = None       # the family, from the advertisement or the services
    device: BLEDevice | None = None      # as last found by a scan
    client: BleakClient | None = None    # the connection now (None while down)
    decoder: Decoder | None = None       # one for the whole stream, across reconnections
    responses: asyncio.Queue[bytes] | None = None  # this connection's control notifications
    #: (connection generation, notification or None for "link dropped", arrival time)
    queue: asyncio.Queue[tuple[int, bytes | None, float]] = field(default_factory=asyncio.Queue)
    generation: int = 0                  # connections made; older callbacks' items are stale
    closing: bool = False
    #: held while the link is let go (stop writes, disconnect): ``close()`` returns only once
    #: the stream's own cleanup, which may have started first, is done
    releasing: asyncio.Lock = field(default_factory=asyncio.Lock)
    battery_task: asyncio.Task | None = None
    battery_t: float = 0.0               # when the battery was last asked (monotonic)
    command_seq: int = 2                 # the last command number used
    stale_notifications: int = 0         # items of an older connection, dropped
    pending_gap: Gap | None = None       # an outage whose far side has not streamed yet
    down_since: float | None = None
    last_error: Exception | None = None  # of the last failed reconnection
    last_t_s: float | None = None        # device time of the last sample delivered
    last_arrival: float | None = None    # when the last batch's bytes arrived (monotonic)
    t_shift_s: float = 0.0               # added to a clockless family's times after gaps
    gap_lost_base: int = 0               # frames lost before the pending gap


class BleSource(Source):
    """Streams a BLE sensor named by address or advertised name, surviving link drops.

    ``rate_hz`` is the sample rate asked (None: none named). Once the family is known (at the
    first connection) ``self.rate_hz`` is the rate it streams at, negotiated with what it offers
    (``SensorKind.stream_rate``); ``rate_note`` says so in one line when that is not the rate
    asked (or 100 Hz). Before that ``self.rate_hz`` is only nominal: the live session takes the
    stream's rate at its first batch. ``give_up_s``: how long reconnecting may take before the
    sensor counts as lost for good (DeviceError).
    """

    def __init__(self, target: str, side: str = "left", rate_hz: float | None = None,
                 scan_timeout_s: float | None = None, give_up_s: float = 30.0,
                 battery_every_s: float = 60.0,
                 on_gap: Callable[[Gap], None] | None = None, allowed=None) -> None:
        super().__init__()
        self.target = target
        self.allowed = allowed  # a security.AllowList: connect only to sensors on it (CLI)
        self.side = side
        self.asked_hz = rate_hz
        self.rate_hz = DEFAULT_RATE_HZ if rate_hz is None else rate_hz
        self.scan_timeout_s = scan_timeout_s if scan_timeout_s is not None else \
            _env_seconds(SCAN_TIMEOUT_ENV, 10.0)
        self.give_up_s = give_up_s
        self.battery_every_s = battery_every_s
        self.on_gap = on_gap
        self.name = f"BLE {target}"
        self.gaps: list[Gap] = []
        self.link = LinkStats(state=CONNECTING)
        self.state = BleState()

    def set_side(self, side: str) -> None:
        self.side = side

    # --- callbacks: enqueue only
    def _callback_for(self, generation: int) -> Callable[[Any, bytearray], None]:
        queue = self.state.queue

        def on_notify(_char: Any, data: bytearray) -> None:
            queue.put_nowait((generation, bytes(data), time.monotonic()))

        return on_notify

    def _on_disconnect(self, generation: int) -> Callable[[BleakClient], None]:
        queue = self.state.queue

        def on_disconnect(_client: BleakClient) -> None:
            queue.put_nowait((generation, None, time.monotonic()))

        return on_disconnect

    # --- connecting
    async def _connect(self) -> None:
        st = self.state
        assert st.device is not None
        st.generation += 1
        gen = st.generation
        self.link.state = CONNECTING if gen == 1 else RECONNECTING
        pair = st.kind is not None and st.kind.needs_bonding and backend_can_pair()

        def current_device() -> BLEDevice:  # read at each attempt: a rescan may replace it
            device = st.device
            assert device is not None  # set by the first scan, only ever replaced by a rescan
            return device

        client = await establish_connection(
            BleakClient, st.device, self.target,
            disconnected_callback=self._on_disconnect(gen), max_attempts=3, pair=pair,
            ble_device_callback=current_device)
        try:
            if st.kind is None:
                st.kind = kind_for_services(s.uuid for s in client.services)
                if st.kind is None:
                    raise DeviceError(f"BLE device '{self.target}' offers none of the supported "
                                      f"services: {services_wanted()}")
                if st.kind.needs_bonding and backend_can_pair():
                    await _pair(client)
            kind = st.kind
            self.link.kind, self.link.has_sequence = kind.name, kind.has_sequence
            self.name = f"{kind.name} '{self.target}' (BLE)"
            self._negotiate(kind)
            responses: asyncio.Queue[bytes] = asyncio.Queue()  # this connection's only
            if kind.control_uuid:
                await client.start_notify(kind.control_uuid,
                                          lambda _c, d: responses.put_nowait(bytes(d)))
            battery = await kind.setup(client, self.rate_hz, responses)
            if kind.control_uuid == kind.notify_uuid:  # one characteristic answers and streams
                await client.stop_notify(kind.control_uuid)
            # subscribe to the data after the set-up, so that all of it is at the asked rate
            await client.start_notify(kind.notify_uuid, self._callback_for(gen))
        except BaseException:
            await client.disconnect()
            raise
        if battery is not None:
            self.link.battery_pct = battery
        st.client, st.responses = client, responses
        # a battery the set-up did not tell is asked with the first notification
        st.battery_t = time.monotonic() if battery is not None else -float("inf")
        self.link.state = STREAMING

    def _negotiate(self, kind: SensorKind) -> None:
        """The rate to stream at, from what ``kind`` offers; noted when not the one asked."""
        self.rate_hz = kind.stream_rate(self.asked_hz)
        asked = DEFAULT_RATE_HZ if self.asked_hz is None else self.asked_hz
        if self.rate_hz != asked:
            why = ("the rate it offers nearest 100 Hz; name another with @RATE"
                   if self.asked_hz is None else
                   f"the rate it offers nearest the {asked:g} Hz asked")
            self.rate_note = (f"{self.name}: streaming at {self.rate_hz:g} Hz ({why}; it "
                              f"offers {kind.rates_text()} Hz)")

    def _maybe_poll_battery(self) -> None:
        """Ask for the battery level every ``battery_every_s``, beside the stream."""
        st = self.state
        now = time.monotonic()
        if (st.kind is None or not st.kind.reads_battery or st.client is None
                or now - st.battery_t < self.battery_every_s
                or (st.battery_task is not None and not st.battery_task.done())):
            return
        st.battery_t = now
        st.command_seq = 3 + (st.command_seq - 2) % 60000
        st.battery_task = asyncio.get_running_loop().create_task(
            self._poll_battery(st.kind, st.client, st.responses, st.command_seq))

    async def _poll_battery(self, kind: SensorKind, client: BleakClient, responses,
                            seq: int) -> None:
        try:
            battery = await kind.battery(client, responses, seq)
        except (BleakError, OSError, TimeoutError) as e:
            log.debug("battery poll: %s", e)
            return
        if battery is not None:
            self.link.battery_pct = battery

    async def _reconnect(self) -> None:
        """Reconnect with backoff until it works or ``give_up_s`` has passed."""
        st = self.state
        self.link.state = RECONNECTING
        self.link.reconnects += 1
        st.down_since = time.monotonic()
        st.pending_gap = Gap(t_before_s=st.last_t_s)
        old, st.client = st.client, None
        if old is not None:
            try:
                await old.disconnect()
            except (BleakError, OSError) as e:
                log.debug("disconnect after drop: %s", e)
        st.last_error = None
        try:
            async with asyncio.timeout(self.give_up_s):
                await self._reconnect_with_backoff()
        except TimeoutError as e:
            self.link.state = LOST
            why = f" (last: {st.last_error})" if st.last_error else ""
            raise DeviceError(f"BLE sensor '{self.target}' lost: no reconnection in "
                              f"{self.give_up_s:g} s{why}") from e
        st.pending_gap.down_s = time.monotonic() - st.down_since

    async def _reconnect_with_backoff(self) -> None:
        """Any failure of a connection or of its set-up (a refused or unanswered command is a
        DeviceError) is retried with exponential backoff; after a failure the device is looked
        up afresh (a new BLEDevice: BlueZ may have dropped its object, CoreBluetooth its
        peripheral), which ``establish_connection`` also asks for between its own attempts."""
        st = self.state
        delay_s = 0.05
        while True:
            try:
                await self._connect()
                return
            except Exception as e:  # noqa: BLE001 - every set-up failure is retried until give_up_s
                st.last_error = e
                log.info("reconnect to %s failed (%s); retrying in %.2f s", self.target, e,
                         delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(2.0, delay_s * 2)
            try:
                assert st.device is not None
                st.device, _ = await find_sensor(st.device.address,
                                                 min(self.scan_timeout_s, 5.0))
            except DeviceError as e:  # not advertising yet: try the old one again
                log.debug("rescan for %s: %s", self.target, e)

    # --- streaming
    async def stream(self) -> AsyncIterator[ImuBatch]:
        st = self.state
        permits = self.allowed.permits if self.allowed is not None else None
        st.device, adv = await find_sensor(self.target, self.scan_timeout_s, permits)
        if self.allowed is not None and not self.allowed.permits(st.device.address):
            self.link.state = ENDED  # seen advertising; never connected to
            raise DeviceError(self.allowed.refusal(st.device.address,
                                                   device_name(adv.local_name)))
        self.link.address = st.device.address
        st.kind = kind_for_services(adv.service_uuids, adv.local_name, adv.manufacturer_data)
        self.link.battery_pct = _advertised_battery(adv)
        self.link.rssi_dbm = adv.rssi
        try:
            await self._connect()
        except (TimeoutError, BleakError, OSError) as e:
            raise DeviceError(f"cannot connect to BLE sensor '{self.target}': {e}") from e
        assert st.kind is not None
        st.decoder = st.kind.decoder(self.rate_hz)
        try:
            while not st.closing:
                gen, data, t_arrival = await st.queue.get()
                if gen != st.generation:
                    st.stale_notifications += data is not None
                    self.link.duplicates += data is not None
                    continue
                if data is None:  # the link dropped
                    await self._reconnect()
                    continue
                self.link.notifications += 1
                self._maybe_poll_battery()
                batches = st.decoder.feed(data)
                battery = st.kind.battery_seen(st.decoder)  # a reply among the data
                if battery is not None:
                    self.link.battery_pct = battery
                for batch in batches:
                    batch = self._account(batch, t_arrival)
                    if batch is not None:
                        yield batch
        finally:
            await self._release()

    def _account(self, batch: ImuBatch, t_arrival: float) -> ImuBatch | None:
        """Update the link figures and close a pending gap; None for an empty batch."""
        if len(batch) == 0:
            return None
        st, link = self.state, self.link
        assert st.kind is not None and st.decoder is not None
        batch.side = self.side
        link.arrived(t_arrival, len(batch))  # arrival times taken in the callback
        st.kind.count(st.decoder, link)
        link.duplicates += st.stale_notifications  # and the old connections' items dropped
        if batch.restart and st.pending_gap is None:  # a reset without a link drop
            st.pending_gap = Gap(t_before_s=st.last_t_s)
        if st.pending_gap is not None:
            gap, st.pending_gap = st.pending_gap, None
            gap.restart = batch.restart
            if st.kind.has_sequence:
                gap.lost_frames = link.lost_frames - st.gap_lost_base
            if st.kind.has_clock:
                if gap.t_before_s is not None:
                    gap.lost_samples = max(0, round((float(batch.t_s[0]) - gap.t_before_s)
                                                    * self.rate_hz) - 1)
            elif st.last_arrival is not None:
                # no device time: the sensor kept sampling while the link was down, so move
                # our sample clock on by the samples it must have taken (from arrival times)
                missed = max(0, round((t_arrival - st.last_arrival) * self.rate_hz) - 1)
                gap.lost_samples, gap.estimated = missed, True
                st.t_shift_s += missed / self.rate_hz
            gap.t_after_s = float(batch.t_s[0]) + st.t_shift_s
            self.gaps.append(gap)
            link.gaps = len(self.gaps)
            if self.on_gap is not None:
                self.on_gap(gap)
        if st.t_shift_s:
            batch.t_s = batch.t_s + st.t_shift_s
            if batch.seq is not None:
                batch.seq = batch.seq + round(st.t_shift_s * self.rate_hz)
        st.gap_lost_base = link.lost_frames
        st.last_t_s = float(batch.t_s[-1])
        st.last_arrival = t_arrival
        return batch

    async def _release(self) -> None:
        st = self.state
        if self.link.state != LOST:
            self.link.state = ENDED
        client, st.client = st.client, None
        st.generation += 1  # anything still queued or still arriving is stale now
        if st.battery_task is not None:
            st.battery_task.cancel()
        async with st.releasing:
            if client is not None:
                await self._teardown(client)
                try:
                    await client.disconnect()
                except (BleakError, OSError) as e:
                    log.debug("disconnect: %s", e)

    async def _teardown(self, client: BleakClient) -> None:
        """The family's stop writes, while the link is still up: a device left sampling after
        the host leaves drains its battery. Whoever ends the stream first (``close()`` or the
        stream's own cleanup) took the client, so this runs once, before the disconnection."""
        kind = self.state.kind
        if kind is None or not client.is_connected:
            return
        try:
            async with asyncio.timeout(TEARDOWN_TIMEOUT_S):
                await kind.teardown(client)
        except (BleakError, OSError, TimeoutError) as e:
            log.debug("teardown: %s", e)

    async def close(self) -> None:
        self.state.closing = True
        self.state.queue.put_nowait((-1, None, 0.0))  # wakes a stream loop waiting; stale
        await self._release()
