"""The sensor registry: one :class:`SensorKind` per device family, declaring everything about it.

Its GATT UUIDs and advertised name prefixes, the set-up writes that start it at a rate, the rate
it streams at when asked for none or one it does not offer (``stream_rate``), how it is
recognised on a serial port, its decoder, whether it numbers its frames and keeps a clock, and
how its battery is read. The BLE scan and source, the serial source and ``dorsimeter scan`` all
read :data:`KINDS` through the pickers at the bottom (as bleak picks its backend in one place);
none of them names a family.

Adding a family is one decoder module in ``wire/``, one entry here and its emulator in
``tests/emulators/`` (README: "Adding a sensor"); ``tests/sources/test_registry.py`` holds the
sources to that.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from dorsimeter.errors import DeviceError
from dorsimeter.types import ImuBatch
from dorsimeter.wire import frames, gatt, metawear, movella, movesense, polar, witmotion
from dorsimeter.wire.frames import FrameDecoder

#: the rate asked of a family when the user named none (``--sensor ble:NAME`` without @RATE):
#: the rate the detectors and the accuracy benchmarks are anchored on
DEFAULT_RATE_HZ = 100.0
#: an explicit rate a family does not offer gives way to the nearest it does when that is within
#: this ratio (e.g. @50 → 52 Hz, @200 → 208 Hz); farther (@100 on a 60 Hz DOT) it is refused:
#: every stage takes the stream's rate anyway, but a rate that far from the one asked is more
#: likely a mistake than a wish
NEAREST_RATE_RATIO = 1.25

if TYPE_CHECKING:  # the BLE source hands its bleak client in; the serial source never needs it
    from bleak import BleakClient

    from dorsimeter.sources.base import LinkStats


class Decoder(Protocol):
    """What a family's decoder offers: bytes in (any split, any garbage, never raises), ImuBatch
    out, counters in ``stats`` (``samples``, ``bytes_skipped`` and the valid packets its kind's
    ``packets_stat`` names, at least), what it changes as it runs in one declared ``state``."""

    stats: Any
    state: Any

    def feed(self, data: bytes) -> list[ImuBatch]: ...


async def _read_level(client: BleakClient, uuid: str) -> int | None:
    """The first byte of a battery characteristic (%), None if the device has none."""
    if client.services.get_characteristic(uuid) is None:
        return None
    value = await client.read_gatt_char(uuid)
    return int(value[0]) if value else None


class SensorKind:
    """One device family. Class attributes declare it; methods are its few behaviours."""

    key = ""                 # short id: stats, messages
    name = "sensor"          # shown to the user (scan, status line)
    # --- BLE
    service_uuid = ""        # the GATT service it offers (and may advertise)
    notify_uuid = ""         # data notifications
    control_uuid = ""        # notifications answering commands (if any)
    write_uuid = ""          # where set-up commands go
    name_prefixes: tuple[str, ...] = ()  # advertised names that identify it without a UUID
    company_ids: tuple[int, ...] = ()  # manufacturer data (Bluetooth SIG company) identifying it
    needs_bonding = False    # pair before connecting (writes need an encrypted, bonded link)
    has_battery_service = False  # a battery level to read in a scan and poll (battery_uuid)
    battery_uuid = gatt.BATTERY_LEVEL_UUID  # its characteristic (uint8 % first): 0x2A19 of
    #                                         the standard Battery Service, unless its own
    battery_by_command = False  # no level to read: a command asks (polled, read in a scan)
    ble_command_gap_s = 0.0  # pause between set-up writes
    # --- the stream
    has_sequence = False     # frames numbered: loss counted exactly
    has_clock = False        # device time in every frame: gaps and rates measured exactly
    rates_hz: tuple[float, ...] = ()  # output rates it offers
    snaps_rate = False       # a rate it does not offer: stream at the nearest (``stream_rate``)
    packets_stat = "packets"  # the decoder's ``stats`` counter of valid packets of any type
    # --- serial
    serial = False           # speaks on a serial port (USB CDC or a UART)
    serial_command_gap_s = 0.0
    blind_setup = False      # its rate command may be sent before the device is recognised

    def rates_text(self) -> str:
        """Its offered rates, for a message ("1, 4, 10, …, 60")."""
        return ", ".join(f"{r:g}" for r in self.rates_hz)

    def nearest_rate(self, rate_hz: float) -> float:
        """The offered rate nearest ``rate_hz`` in ratio."""
        return float(min(self.rates_hz, key=lambda r: abs(math.log(r / rate_hz))))

    def stream_rate(self, asked_hz: float | None) -> float:
        """The rate to stream at, ``asked_hz`` (None: the user named none) negotiated with what
        the family offers. None: ``DEFAULT_RATE_HZ``, or for a family that snaps its rate the
        offered one nearest it. An unoffered rate: as asked (the family's set-up accepts or
        refuses it), or for one that snaps the nearest offered, DeviceError (one line) when
        that is more than ``NEAREST_RATE_RATIO`` off."""
        if asked_hz is None:
            asked_hz = DEFAULT_RATE_HZ
            if self.snaps_rate and asked_hz not in self.rates_hz:
                return self.nearest_rate(asked_hz)
            return asked_hz
        if not self.snaps_rate or asked_hz in self.rates_hz:
            return asked_hz
        near = self.nearest_rate(asked_hz)
        if max(near / asked_hz, asked_hz / near) > NEAREST_RATE_RATIO:
            raise DeviceError(self.not_offered(asked_hz))
        return near

    def offered(self, rate_hz: float) -> float:
        """``rate_hz`` if the family offers it, else DeviceError (one line) naming the rate to
        ask for instead: the guard of a set-up that takes offered rates only."""
        if rate_hz not in self.rates_hz:
            raise DeviceError(self.not_offered(rate_hz))
        return rate_hz

    def not_offered(self, rate_hz: float) -> str:
        """Why ``rate_hz`` cannot be streamed, naming the rate to ask for instead."""
        return (f"the {self.name} streams at {self.rates_text()} Hz, not {rate_hz:g}: ask "
                f"for one of those, e.g. --sensor ble:NAME@{self.nearest_rate(rate_hz):g}")

    def decoder(self, rate_hz: float, side: str | None = None) -> Decoder:
        """A fresh decoder of its BLE notifications."""
        raise NotImplementedError

    def serial_decoder(self, rate_hz: float, side: str | None = None) -> Decoder:
        """A fresh decoder of its serial bytes."""
        raise NotImplementedError

    def packets(self, decoder: Decoder) -> int:
        """Valid packets (of any type) the decoder found so far (its ``packets_stat``)."""
        return int(getattr(decoder.stats, self.packets_stat))

    def recognised(self, decoder: Decoder) -> bool:
        """Whether the bytes fed to ``serial_decoder()`` clearly are this family's."""
        return False

    def rate_commands(self, rate_hz: float) -> list[bytes]:
        """The writes that set the output rate, one at a time; DeviceError if not offered."""
        return []

    async def setup(self, client: BleakClient, rate_hz: float,
                    responses: asyncio.Queue[bytes]) -> int | None:
        """Set-up after connecting, before the data is subscribed; the battery % if known.
        ``responses``: the control characteristic's notifications (when it has one)."""
        for cmd in self.rate_commands(rate_hz):
            await self._write(client, cmd)
        return None

    async def _write(self, client: BleakClient, cmd: bytes) -> None:
        """One command to ``write_uuid`` (with a response when the characteristic offers it),
        then ``ble_command_gap_s`` before anything else is sent."""
        char = client.services.get_characteristic(self.write_uuid)
        response = char is not None and "write" in char.properties
        await client.write_gatt_char(self.write_uuid, cmd, response=response)
        await asyncio.sleep(self.ble_command_gap_s)

    @property
    def reads_battery(self) -> bool:
        """Whether the battery can be asked over BLE (a Battery Service, or a command)."""
        return self.has_battery_service or self.battery_by_command

    async def read_battery(self, client: BleakClient, timeout_s: float = 2.0) -> int | None:
        """The battery level over a short connection of its own (``dorsimeter scan``): its
        level characteristic (``battery_uuid``), None if not offered."""
        return await _read_level(client, self.battery_uuid)

    async def battery(self, client: BleakClient, responses: asyncio.Queue[bytes],
                      seq: int) -> int | None:
        """The battery level now over BLE, if the device can tell: its level characteristic
        (``battery_uuid``) when it has a battery service; a family whose answer comes in the
        data stream only asks here, and ``battery_seen`` reads the reply."""
        if not self.has_battery_service:
            return None
        return await _read_level(client, self.battery_uuid)

    async def teardown(self, client: BleakClient) -> None:
        """Writes that stop the device at the end (``BleSource.close``, link still up), for a
        family that would go on sampling after the host leaves."""

    def battery_seen(self, decoder: Decoder) -> int | None:
        """A battery level the stream itself reported since the last call (serial and BLE)."""
        return None

    def count(self, decoder: Decoder, link: LinkStats) -> None:
        """Copy the decoder's counters into the link figures (those it has; a family without
        sequence numbers cannot tell lost or duplicate frames)."""
        link.bytes_skipped = int(decoder.stats.bytes_skipped)
        link.duplicates = 0

    def skip_samples(self, decoder: Decoder, n: int) -> None:
        """Move a clockless decoder's sample clock on by ``n`` samples the device took while
        the link was down (a family with a clock keeps time itself)."""


class NodeKind(SensorKind):
    """The dorsimeter sensor node (firmware_bridge): framed protocol (``wire.frames``) with
    sequence numbers and device time, commands answered on a control characteristic."""

    key = "node"
    name = "dorsimeter node"
    service_uuid = gatt.NODE_SERVICE_UUID
    notify_uuid = gatt.NODE_DATA_UUID
    control_uuid = gatt.NODE_CONTROL_UUID
    write_uuid = gatt.NODE_CONTROL_UUID
    name_prefixes = ()  # always advertises its service
    needs_bonding = True
    has_battery_service = True
    has_sequence = True
    has_clock = True
    rates_hz = (25.0, 50.0, 100.0, 200.0, 400.0)
    serial = True
    blind_setup = True  # a framed command with a CRC: anything else ignores it
    packets_stat = "frames"

    def decoder(self, rate_hz: float, side: str | None = None) -> FrameDecoder:
        return FrameDecoder(side=side)

    serial_decoder = decoder

    def recognised(self, decoder: Decoder) -> bool:
        return decoder.stats.frames >= 3

    def rate_commands(self, rate_hz: float) -> list[bytes]:
        if rate_hz not in self.rates_hz:
            return []  # the node streams at its own rate; the stream shows it
        return [frames.encode_set_rate(1, int(round(rate_hz)))]

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

    def battery_seen(self, decoder: Decoder) -> int | None:
        assert isinstance(decoder, FrameDecoder)
        battery = None
        for msg in decoder.pop_messages():
            st = msg.node_status()
            if st is not None:
                battery = st.battery_pct
            elif msg.cmd == frames.CMD_BATTERY and msg.status == frames.ST_OK and msg.data:
                battery = msg.data[0]
        return battery

    def count(self, decoder: Decoder, link: LinkStats) -> None:
        s = decoder.stats
        link.frames, link.lost_frames, link.lost_samples = s.frames, s.lost, s.lost_samples
        link.crc_errors, link.duplicates, link.restarts = s.crc_errors, s.duplicates, s.restarts
        link.bytes_skipped = s.bytes_skipped


class WitMotionKind(SensorKind):
    """WitMotion BWT901BLE / WT901BLE over BLE (0x55 0x61 packets) and its UART sensors
    (0x55 0x5X packets): no sequence numbers, no clock (``wire.witmotion``)."""

    key = "witmotion"
    name = "WitMotion BWT901BLE"
    # WitMotion's own UUIDs use the base …-00805f9a34fb (9a, not Bluetooth's 9b)
    service_uuid = "0000ffe5-0000-1000-8000-00805f9a34fb"
    notify_uuid = "0000ffe4-0000-1000-8000-00805f9a34fb"
    write_uuid = "0000ffe9-0000-1000-8000-00805f9a34fb"
    name_prefixes = ("WT901", "BWT901")  # units that advertise their name only
    # the battery: register 0x64 read with ``FF AA 27 64 00``; the ``55 71`` reply comes on the
    # data characteristic (the vendor SDK: every 30 s in its Unity example, 1 s in Android's)
    battery_by_command = True
    # the vendor's SDK (WitBluetooth_BWT901BLE5_0) waits 100 ms between unlock, write and save,
    # on BLE and on the UART alike (its command queue sends one command per 100 ms)
    ble_command_gap_s = witmotion.COMMAND_GAP_S
    rates_hz = tuple(float(r) for r in witmotion.RATE_CODES if r >= 1)
    serial = True
    serial_command_gap_s = witmotion.COMMAND_GAP_S

    def decoder(self, rate_hz: float, side: str | None = None) -> witmotion.WitBleDecoder:
        return witmotion.WitBleDecoder(rate_hz, side=side)

    def serial_decoder(self, rate_hz: float,
                       side: str | None = None) -> witmotion.WitUartDecoder:
        return witmotion.WitUartDecoder(rate_hz, side=side)

    def recognised(self, decoder: Decoder) -> bool:
        return decoder.stats.packets >= 9 and decoder.stats.samples >= 2

    def rate_commands(self, rate_hz: float) -> list[bytes]:
        try:
            return witmotion.rate_commands(rate_hz)
        except ValueError as e:
            raise DeviceError(str(e)) from e

    async def battery(self, client: BleakClient, responses: asyncio.Queue[bytes],
                      seq: int) -> int | None:
        await self._write(client, witmotion.BATTERY_COMMAND)
        return None  # the reply arrives among the data packets: ``battery_seen``

    def battery_seen(self, decoder: Decoder) -> int | None:
        """The battery % of the last register 0x64 reply since the last call: BLE units only.
        The UART units are not asked: the vendor's SDK (WitBluetooth_BWT901BLE5_0, the only
        vendor source for 0x64) documents the register for its Bluetooth units, the UART ones
        (WT901C TTL/232/485, HWT905) are powered by their cable, and their register-read reply
        (``55 5F``) is not laid out in the SDK; their 0x52 packet's last value is temperature in
        the UART protocol (docs.wit-motion.com, HWT905-TTL), not a voltage."""
        if not isinstance(decoder, witmotion.WitBleDecoder):
            return None
        volts = [v for v in map(witmotion.battery_volts, decoder.pop_replies()) if v is not None]
        return witmotion.battery_percent(volts[-1]) if volts else None

    async def read_battery(self, client: BleakClient, timeout_s: float = 2.0) -> int | None:
        """Subscribe to the data, ask register 0x64 and wait for its reply."""
        decoder = self.decoder(rate_hz=10.0)
        got: asyncio.Queue[bytes] = asyncio.Queue()
        await client.start_notify(self.notify_uuid, lambda _c, d: got.put_nowait(bytes(d)))
        await self._write(client, witmotion.BATTERY_COMMAND)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    decoder.feed(await got.get())
                    battery = self.battery_seen(decoder)
                    if battery is not None:
                        return battery
        except TimeoutError:
            return None

    def count(self, decoder: Decoder, link: LinkStats) -> None:
        super().count(decoder, link)
        link.crc_errors = decoder.stats.checksum_errors  # the UART's sums (BLE has none: 0)

    def skip_samples(self, decoder: Decoder, n: int) -> None:
        decoder.state.n += n


class MovellaKind(SensorKind):
    """Movella (Xsens) DOT, custom mode 5 (timestamp, quaternion, acceleration, angular velocity)
    on the long payload characteristic: a clock, no sequence numbers (``wire.movella``)."""

    key = "movella"
    name = "Movella DOT"
    service_uuid = movella.MEASUREMENT_SERVICE_UUID
    notify_uuid = movella.LONG_PAYLOAD_UUID
    write_uuid = movella.CONTROL_UUID
    name_prefixes = ("MOVELLA DOT", "XSENS DOT")  # the default device tag (advertised name)
    company_ids = (movella.COMPANY_ID,)  # found by its manufacturer data when renamed
    has_battery_service = True  # its own battery service (``battery_uuid``), polled
    battery_uuid = movella.BATTERY_UUID
    has_clock = True
    rates_hz = tuple(float(r) for r in movella.STREAM_RATES_HZ)
    snaps_rate = True  # without @RATE: 60 Hz, its fastest real-time rate (nearest 100 Hz)

    def decoder(self, rate_hz: float, side: str | None = None) -> movella.DotDecoder:
        return movella.DotDecoder(rate_hz, side=side)

    def rate_commands(self, rate_hz: float) -> list[bytes]:
        self.offered(rate_hz)
        return [movella.control_command(movella.CUSTOM_MODE_5)]

    async def setup(self, client: BleakClient, rate_hz: float,
                    responses: asyncio.Queue[bytes]) -> int | None:
        """Output rate (Device Control: read, change the rate field, write, read back), then
        start custom mode 5 (Control, read back: a firmware without the mode leaves it off)."""
        start = self.rate_commands(rate_hz)[0]
        control = bytes(await client.read_gatt_char(movella.DEVICE_CONTROL_UUID))
        rate = int(rate_hz)
        if movella.output_rate(control) != rate:
            await client.write_gatt_char(movella.DEVICE_CONTROL_UUID,
                                         movella.set_output_rate(control, rate), response=True)
            control = bytes(await client.read_gatt_char(movella.DEVICE_CONTROL_UUID))
            if movella.output_rate(control) != rate:
                raise DeviceError(f"the {self.name} did not take the output rate {rate} Hz")
        await client.write_gatt_char(self.write_uuid, start, response=True)
        if bytes(await client.read_gatt_char(self.write_uuid))[:3] != start:
            raise DeviceError(f"the {self.name} did not start custom mode 5 (timestamp, "
                              "quaternion, acceleration, angular velocity): update its firmware "
                              "in the Movella DOT app")
        return await self.battery(client, responses, 0)

    def count(self, decoder: Decoder, link: LinkStats) -> None:
        super().count(decoder, link)
        link.lost_samples = int(decoder.stats.lost)  # from the device timestamps
        link.duplicates = int(decoder.stats.duplicates)


class PolarKind(SensorKind):
    """Polar Verity Sense over Polar Measurement Data: SDK mode, ACC and gyro frames (delta
    compressed), the standard battery service; a clock, no sequence numbers (``wire.polar``)."""

    key = "polar"
    name = "Polar Verity Sense"
    service_uuid = polar.SERVICE_UUID
    notify_uuid = polar.DATA_UUID
    control_uuid = polar.CONTROL_POINT_UUID  # indications answering its commands
    write_uuid = polar.CONTROL_POINT_UUID
    name_prefixes = ("POLAR SENSE",)  # "Polar Sense 1A2B3C4D"
    has_battery_service = True
    has_clock = True
    rates_hz = tuple(float(r) for r in polar.SDK_RATES_HZ)
    # without @RATE: 104 Hz, the offered rate nearest 100 Hz (the Verity's own 52 Hz default
    # is ACC only; in SDK mode ACC + gyro stream live at any of its rates: at 104 Hz that is
    # about 1.3 kB/s of frames, a tenth of what a BLE connection carries)
    snaps_rate = True
    packets_stat = "frames"

    def decoder(self, rate_hz: float, side: str | None = None) -> polar.PolarDecoder:
        return polar.PolarDecoder(rate_hz, side=side)

    def rate_commands(self, rate_hz: float) -> list[bytes]:
        return polar.imu_start_commands(int(self.offered(rate_hz)))

    async def _command(self, client: BleakClient, responses: asyncio.Queue[bytes],
                       command: bytes, timeout_s: float = 5.0) -> polar.Response:
        """Write one control-point command; its response (``F0 op type …``) on the indication."""
        await client.write_gatt_char(self.write_uuid, command, response=True)
        async with asyncio.timeout(timeout_s):
            while True:
                resp = polar.parse_response(await responses.get())
                if resp is not None and resp.op == command[0] and resp.measurement == command[1]:
                    return resp

    async def setup(self, client: BleakClient, rate_hz: float,
                    responses: asyncio.Queue[bytes]) -> int | None:
        """SDK mode, then ACC and gyro at the rate, each answered on the control point; the
        conversion factors they report must be the ones the decoder applies."""
        commands = self.rate_commands(rate_hz)
        offered = polar.features(bytes(await client.read_gatt_char(self.write_uuid)))
        if polar.SDK_MODE not in offered or polar.GYRO not in offered:
            raise DeviceError(f"the {self.name} offers no gyroscope stream: update it to "
                              "firmware 1.1.5 or later (Polar Flow) for its SDK mode")
        expected = {polar.ACC: polar.ACC_FACTOR_G, polar.GYRO: polar.GYR_FACTOR_DPS}
        try:
            for command in commands:
                resp = await self._command(client, responses, command)
                if resp.status == polar.ALREADY_IN_STATE and command[1] == polar.SDK_MODE:
                    continue
                if not resp.ok:
                    what = {polar.SDK_MODE: "SDK mode", polar.ACC: "ACC", polar.GYRO: "gyro"}
                    raise DeviceError(f"the {self.name} refused to start {what[command[1]]}: "
                                      f"{resp.error()}")
                factor = (polar.parse_settings(resp.params) or {}).get(polar.SET_FACTOR)
                want = expected.get(command[1])
                if want is not None and factor and abs(factor[0] - want) > want * 1e-6:
                    raise DeviceError(f"the {self.name} reports a conversion factor of "
                                      f"{factor[0]:g}, not {want:g}")
        except TimeoutError as e:
            raise DeviceError(f"the {self.name} did not answer its commands") from e
        return await self.battery(client, responses, 0)

    def count(self, decoder: Decoder, link: LinkStats) -> None:
        super().count(decoder, link)
        link.lost_samples = int(decoder.stats.lost)  # from the device timestamps


class MovesenseKind(SensorKind):
    """Movesense running the GATT SensorData Protocol app (``wire.movesense``): IMU6 (acc +
    gyro, float32) at 13-104 Hz with the sensor's ms timestamp on every notification, which
    numbers them (loss counted exactly) and keeps device time."""

    key = "movesense"
    name = "Movesense"
    service_uuid = movesense.SERVICE_UUID
    notify_uuid = movesense.NOTIFY_UUID
    control_uuid = movesense.NOTIFY_UUID  # command results come on the data characteristic
    write_uuid = movesense.WRITE_UUID
    name_prefixes = ("MOVESENSE",)  # "Movesense 174630000192" (name, serial); any case
    has_battery_service = True
    has_sequence = True  # the timestamps: a missing notification is a jump of 1/13 s
    has_clock = True
    rates_hz = movesense.BLE_RATES_HZ
    snaps_rate = True  # without @RATE: 104 Hz, the offered rate nearest 100 Hz

    def decoder(self, rate_hz: float, side: str | None = None) -> movesense.MovesenseDecoder:
        return movesense.MovesenseDecoder(rate_hz, side=side)

    def rate_commands(self, rate_hz: float) -> list[bytes]:
        """UNSUBSCRIBE our reference (a subscription left by an earlier host), SUBSCRIBE IMU6."""
        path = movesense.imu6_path(self.offered(rate_hz))
        return [movesense.encode_unsubscribe(), movesense.encode_subscribe(path)]

    async def setup(self, client: BleakClient, rate_hz: float,
                    responses: asyncio.Queue[bytes]) -> int | None:
        await client.write_gatt_char(self.write_uuid, movesense.encode_hello(), response=True)
        try:
            async with asyncio.timeout(3.0):
                while True:
                    reply = movesense.parse_reply(await responses.get())
                    if reply is not None and reply.ref == movesense.HELLO_REF:
                        break
        except TimeoutError as e:
            raise DeviceError("the Movesense sensor did not answer HELLO: it must run the "
                              "gatt_sensordata_app firmware (Movesense's GATT SensorData "
                              "Protocol sample)") from e
        for cmd in self.rate_commands(rate_hz):
            await client.write_gatt_char(self.write_uuid, cmd, response=True)
        return await self.battery(client, responses, 0)

    def count(self, decoder: Decoder, link: LinkStats) -> None:
        s = decoder.stats
        link.frames, link.lost_frames, link.lost_samples = s.packets, s.lost, s.lost_samples
        link.bytes_skipped, link.restarts, link.duplicates = s.bytes_skipped, s.restarts, 0


class MetaWearKind(SensorKind):
    """MbientLab MetaWear / MetaMotion boards (BMI160: MetaMotionR, RL, C; BMI270: MetaMotionS)
    over the MetaWear register protocol (``wire.metawear``): packed acc + gyro at 25-200 Hz, no
    device time and no counter in the stream (a sample clock, as WitMotion's)."""

    key = "metawear"
    name = "MetaWear"
    service_uuid = metawear.SERVICE_UUID
    notify_uuid = metawear.NOTIFY_UUID
    control_uuid = metawear.NOTIFY_UUID  # register reads are answered on the data notify
    write_uuid = metawear.COMMAND_UUID
    name_prefixes = ("METAWEAR", "METAMOTION")  # "MetaWear" unless renamed; any case
    has_battery_service = True
    rates_hz = metawear.RATES_HZ
    snaps_rate = True  # without @RATE: 100 Hz (offered); @104 -> 100, @60 -> 50

    def decoder(self, rate_hz: float, side: str | None = None) -> metawear.MetaWearDecoder:
        return metawear.MetaWearDecoder(rate_hz, side=side)

    async def setup(self, client: BleakClient, rate_hz: float,
                    responses: asyncio.Queue[bytes]) -> int | None:
        """Ask the board which IMU it has (module info), then configure and start it."""
        self.offered(rate_hz)
        info: dict[int, tuple[int, int]] = {}
        for module in (metawear.ACC, metawear.GYRO):
            await client.write_gatt_char(self.write_uuid,
                                         metawear.read_command(module, metawear.INFO),
                                         response=False)
        try:
            async with asyncio.timeout(3.0):
                while len(info) < 2:
                    got = metawear.parse_info(await responses.get())
                    if got is not None and got[0] in (metawear.ACC, metawear.GYRO):
                        info[got[0]] = got[1:]
        except TimeoutError as e:
            raise DeviceError("the MetaWear board did not answer its module info "
                              "(not MetaWear firmware?)") from e
        chip = metawear.chips(info[metawear.ACC][0], info[metawear.GYRO][0])
        if chip is None:
            raise DeviceError("this MetaWear board's accelerometer and gyro are not a BMI160 or "
                              "a BMI270 (MetaMotionR, RL, C, S): not supported")
        for cmd in metawear.start_commands(rate_hz, chip):
            await client.write_gatt_char(self.write_uuid, cmd, response=False)
        return await self.battery(client, responses, 0)

    def count(self, decoder: Decoder, link: LinkStats) -> None:
        super().count(decoder, link)
        link.lost_samples = int(decoder.stats.unpaired)

    async def teardown(self, client: BleakClient) -> None:
        """Power both sensors down: the board keeps sampling after a disconnection otherwise
        (its settings survive it), draining its battery until the next host stops it."""
        for cmd in metawear.stop_commands():
            await client.write_gatt_char(self.write_uuid, cmd, response=False)

    def skip_samples(self, decoder: Decoder, n: int) -> None:
        decoder.state.n += n


#: every supported family, in the order they are tried
KINDS: tuple[SensorKind, ...] = (NodeKind(), WitMotionKind(), MovellaKind(), PolarKind(),
                                 MovesenseKind(), MetaWearKind())


# --------------------------------------------------------------------------- picking
def kind_for_services(uuids: Iterable[str], name: str | None = None,
                      company_ids: Iterable[int] = ()) -> SensorKind | None:
    """The family offering one of ``uuids`` (advertised or discovered), or failing that the one
    whose name prefix the advertised ``name`` starts with, or whose company identifier is in the
    advertised manufacturer data (``company_ids``: its keys)."""
    have = {u.lower() for u in uuids}
    for kind in KINDS:
        if kind.service_uuid.lower() in have:
            return kind
    upper = (name or "").upper()
    for kind in KINDS:
        if upper and upper.startswith(kind.name_prefixes):
            return kind
    companies = set(company_ids)
    for kind in KINDS:
        if companies & set(kind.company_ids):
            return kind
    return None


def services_wanted() -> str:
    """The services a BLE sensor must offer, for an error message."""
    return ", ".join(f"{k.name} ({k.service_uuid[:8]})" for k in KINDS if k.service_uuid)


class SerialProbe:
    """The same serial bytes fed to every family's decoder, to tell which protocol they are."""

    def __init__(self, rate_hz: float = 100.0) -> None:
        self.decoders: dict[SensorKind, Decoder] = {
            k: k.serial_decoder(rate_hz) for k in KINDS if k.serial}

    def feed(self, data: bytes) -> dict[SensorKind, list[ImuBatch]]:
        """Each family's batches from ``data``."""
        return {k: d.feed(data) for k, d in self.decoders.items()}

    def samples(self, kind: SensorKind) -> int:
        return int(self.decoders[kind].stats.samples)

    def anything(self) -> bool:
        """Whether any family found a valid packet of its own yet."""
        return any(k.packets(d) for k, d in self.decoders.items())

    def kind(self) -> SensorKind | None:
        """The family the bytes clearly are: of those that recognise them, the one that had to
        skip the fewest bytes; None while unclear."""
        sure = [k for k, d in self.decoders.items() if k.recognised(d)]
        return min(sure, key=lambda k: self.decoders[k].stats.bytes_skipped, default=None)


def kind_for_bytes(data: bytes, rate_hz: float = 100.0) -> SensorKind | None:
    """The family ``data`` (bytes read from a serial port) clearly holds, else None."""
    probe = SerialProbe(rate_hz)
    probe.feed(data)
    return probe.kind()
