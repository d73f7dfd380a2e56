# dbus-fast reads D-Bus signatures from string annotations ("s", "as", "a{sv}"):
# ruff: noqa: UP037, F722, F821
"""A minimal ``bluetoothd``: the part of ``org.bluez`` that bleak's BlueZ backend uses, on D-Bus.

    bleak ──D-Bus──▶ dbus-daemon ──▶ FakeBlueZ ── Bumble central ══LocalLink══ peripherals

Implemented: ``Adapter1`` (Start/StopDiscovery, SetDiscoveryFilter with UUIDs, RemoveDevice),
``Device1`` (Connect, Disconnect; Name, RSSI, UUIDs, ServiceData, ManufacturerData merged from the
advertisement and scan response), ``GattService1``, ``GattCharacteristic1`` (Read/WriteValue,
Start/StopNotify delivering notifications as ``PropertiesChanged("Value")`` exactly as bluetoothd
does), ``GattDescriptor1``. ``Device1.Pair`` pairs over Bumble's SMP (LE Secure Connections,
just works); later connections to a bonded device are encrypted too. dbus-fast provides the
object manager.

Bumble's LocalLink has no radio: no connection interval, no loss, one fixed RSSI. Loss and drops
come from the peripherals; RSSI per address can be set with :meth:`FakeBlueZ.set_rssi`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from bumble.att import (
    ATT_INSUFFICIENT_AUTHENTICATION_ERROR,
    ATT_INSUFFICIENT_ENCRYPTION_ERROR,
    ATT_Error,
)
from bumble.controller import Controller
from bumble.device import Device, Peer
from bumble.gatt import Characteristic as BumbleCharacteristic
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink
from dbus_fast import BusType, DBusError, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method

log = logging.getLogger(__name__)

ADAPTER_PATH = "/org/bluez/hci0"
ADAPTER_ADDRESS = "F1:F1:F1:F1:F1:F1"
BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"
R = PropertyAccess.READ

# advertising data types (Bluetooth Core Supplement, part A)
_AD_UUID16 = (0x02, 0x03)
_AD_UUID128 = (0x06, 0x07)
_AD_NAME = (0x08, 0x09)
_AD_SERVICE_DATA16 = 0x16
_AD_SERVICE_DATA128 = 0x21
_AD_MANUFACTURER = 0xFF


def full_uuid(value: Any) -> str:
    """A Bumble UUID (or 16-bit hex string) as BlueZ's lower-case 128-bit string."""
    s = value.to_hex_str("-").lower() if hasattr(value, "to_hex_str") else str(value).lower()
    if len(s) == 4:
        s = f"0000{s}{BASE_UUID_TAIL}"
    return s


def _uuid16(raw: bytes) -> str:
    return f"0000{int.from_bytes(raw, 'little'):04x}{BASE_UUID_TAIL}"


def _uuid128(raw: bytes) -> str:
    h = raw[::-1].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class AdvertisedData:
    """What a device has advertised so far (advertisements and scan responses merged)."""

    name: str | None = None
    uuids: list[str] = field(default_factory=list)
    service_data: dict[str, bytes] = field(default_factory=dict)
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)

    def merge(self, ad_structures: list[tuple[int, bytes]]) -> None:
        for ad_type, raw in ad_structures:
            ad_type, raw = int(ad_type), bytes(raw)
            if ad_type in _AD_NAME:
                self.name = raw.decode("utf-8", "replace")
            elif ad_type in _AD_UUID16:
                self._add_uuids(_uuid16(raw[i:i + 2]) for i in range(0, len(raw) - 1, 2))
            elif ad_type in _AD_UUID128:
                self._add_uuids(_uuid128(raw[i:i + 16]) for i in range(0, len(raw) - 15, 16))
            elif ad_type == _AD_SERVICE_DATA16 and len(raw) >= 2:
                self.service_data[_uuid16(raw[:2])] = raw[2:]
            elif ad_type == _AD_SERVICE_DATA128 and len(raw) >= 16:
                self.service_data[_uuid128(raw[:16])] = raw[16:]
            elif ad_type == _AD_MANUFACTURER and len(raw) >= 2:
                self.manufacturer_data[int.from_bytes(raw[:2], "little")] = raw[2:]

    def _add_uuids(self, uuids) -> None:
        for u in uuids:
            if u not in self.uuids:
                self.uuids.append(u)


def _flags(props: int) -> list[str]:
    p = BumbleCharacteristic.Properties
    names = [(p.BROADCAST, "broadcast"), (p.READ, "read"),
             (p.WRITE_WITHOUT_RESPONSE, "write-without-response"), (p.WRITE, "write"),
             (p.NOTIFY, "notify"), (p.INDICATE, "indicate")]
    return [n for f, n in names if props & f]


class Adapter1(ServiceInterface):
    """``org.bluez.Adapter1`` for one always-powered adapter, hci0."""

    def __init__(self, fake: FakeBlueZ) -> None:
        super().__init__("org.bluez.Adapter1")
        self.fake = fake
        self._discovering = False
        self.uuid_filter: set[str] = set()

    @method()
    async def StartDiscovery(self):  # D-Bus method names are CamelCase
        if not self._discovering:
            await self.fake.central.start_scanning(filter_duplicates=False)
            self._discovering = True
            self.emit_properties_changed({"Discovering": True})

    @method()
    async def StopDiscovery(self):
        if not self._discovering:
            raise DBusError("org.bluez.Error.Failed", "No discovery started")
        await self.fake.central.stop_scanning()
        self._discovering = False
        self.uuid_filter = set()
        self.emit_properties_changed({"Discovering": False})

    @method()
    def SetDiscoveryFilter(self, properties: "a{sv}"):
        uuids = properties.get("UUIDs")
        self.uuid_filter = {u.lower() for u in uuids.value} if uuids is not None else set()

    @method()
    def RemoveDevice(self, device: "o"):
        self.fake.remove_device(device)

    @method()
    def GetDiscoveryFilters(self) -> "as":
        return ["UUIDs", "RSSI", "Transport", "DuplicateData"]

    @dbus_property(access=R)
    def Address(self) -> "s":
        return ADAPTER_ADDRESS

    @dbus_property(access=R)
    def AddressType(self) -> "s":
        return "public"

    @dbus_property(access=R)
    def Name(self) -> "s":
        return "dorsimeter-fake-hci0"

    @dbus_property(access=R)
    def Alias(self) -> "s":
        return "dorsimeter-fake-hci0"

    @dbus_property(access=R)
    def Powered(self) -> "b":
        return True

    @dbus_property(access=R)
    def Discovering(self) -> "b":
        return self._discovering

    @dbus_property(access=R)
    def Roles(self) -> "as":
        return ["central", "peripheral"]

    @dbus_property(access=R)
    def UUIDs(self) -> "as":
        return []


class Device1(ServiceInterface):
    """``org.bluez.Device1``: one remote device; Connect reaches it over the LocalLink."""

    def __init__(self, fake: FakeBlueZ, path: str, address: Address, adv: AdvertisedData,
                 rssi: int) -> None:
        super().__init__("org.bluez.Device1")
        self.fake, self.path, self.address = fake, path, address
        self.adv, self._rssi = adv, rssi
        self._published: dict[str, Any] = {}
        self._connected = False
        self._resolved = False
        self._paired = False
        self._trusted = False
        self._lock = asyncio.Lock()
        self.connection = None
        self.gatt: list[tuple[str, ServiceInterface]] = []
        self.insufficient_encryption = 0  # writes the peripheral refused until paired

    @method()
    async def Connect(self):
        await self._connect(pair=False)

    @method()
    async def Pair(self):
        """Connect if needed and pair (LE Secure Connections, "just works"), bonding the keys."""
        await self._connect(pair=True)

    async def _connect(self, pair: bool) -> None:
        async with self._lock:
            if self._connected:
                if pair and not self._paired:
                    await self._pair(self.connection)
                return
            try:
                conn = await self.fake.central.connect(self.address,
                                                       timeout=self.fake.connect_timeout_s)
            except Exception as e:  # noqa: BLE001 - any failure is a failed connect for bleak
                raise DBusError("org.bluez.Error.Failed", f"Connection failed: {e}") from e
            self.connection = conn
            conn.on("disconnection", lambda reason: self._on_disconnection(conn))
            try:
                if pair and not self._paired:
                    await self._pair(conn)
                elif self._paired:
                    # A bonded device: bluetoothd would encrypt with the stored LTK. Bumble's key
                    # store files keys under the identity address and looks them up under the
                    # connection address, so pair again instead: the link ends up encrypted, as
                    # the peripheral would see it.
                    await conn.pair()
                peer = Peer(conn)
                await peer.request_mtu(self.fake.mtu)
                await peer.discover_all()
            except DBusError:
                self._on_disconnection(conn)
                raise
            except Exception as e:  # noqa: BLE001
                self._on_disconnection(conn)
                raise DBusError("org.bluez.Error.Failed", f"GATT set-up failed: {e}") from e
            if self.connection is not conn:  # dropped during discovery
                raise DBusError("org.bluez.Error.Failed", "Connection dropped during discovery")
            self._export_gatt(peer, conn.att_mtu)
            self._set(Connected=True)
            self._set(ServicesResolved=True)

    async def _pair(self, conn) -> None:
        try:
            await conn.pair()
        except Exception as e:  # noqa: BLE001
            raise DBusError("org.bluez.Error.AuthenticationFailed", f"Pairing failed: {e}") from e
        self._paired = True
        self.emit_properties_changed({"Paired": True, "Bonded": True})

    @method()
    async def Disconnect(self):
        conn = self.connection
        if conn is not None:
            try:
                await conn.disconnect()
            except Exception as e:  # noqa: BLE001 - already gone is fine
                log.debug("disconnect: %s", e)
            self._on_disconnection(conn)

    def _set(self, **props: bool) -> None:
        for k, v in props.items():
            setattr(self, {"Connected": "_connected", "ServicesResolved": "_resolved"}[k], v)
        self.emit_properties_changed(props)

    def _on_disconnection(self, conn) -> None:
        if self.connection is not conn:
            return
        self.connection = None
        for path, iface in reversed(self.gatt):
            if isinstance(iface, GattCharacteristic1):
                iface.alive = False
            self.fake.bus.unexport(path, iface)
        self.gatt.clear()
        self._set(ServicesResolved=False)
        self._set(Connected=False)

    def _export_gatt(self, peer: Peer, mtu: int) -> None:
        for svc in peer.services:
            spath = f"{self.path}/service{svc.handle:04x}"
            self._export(spath, GattService1(full_uuid(svc.uuid), self.path))
            for ch in svc.characteristics:
                cpath = f"{spath}/char{ch.handle:04x}"
                self._export(cpath, GattCharacteristic1(peer, ch, spath, mtu, self))
                for d in ch.descriptors:
                    self._export(f"{cpath}/desc{d.handle:04x}", GattDescriptor1(peer, d, cpath))

    def _export(self, path: str, iface: ServiceInterface) -> None:
        self.fake.bus.export(path, iface)
        self.gatt.append((path, iface))

    def advertised(self, rssi: int) -> None:
        """A new advertisement arrived: publish the RSSI (bleak's scanners see the device
        through it) and whatever else changed."""
        self._rssi = rssi
        now = {"Name": self.adv.name or self.Address, "Alias": self.Alias,
               "UUIDs": list(self.adv.uuids), "ServiceData": dict(self.adv.service_data),
               "ManufacturerData": dict(self.adv.manufacturer_data)}
        changed: dict[str, Any] = {k: v for k, v in now.items() if self._published.get(k) != v}
        self._published.update(now)
        if "ServiceData" in changed:
            changed["ServiceData"] = self._service_data()
        if "ManufacturerData" in changed:
            changed["ManufacturerData"] = self._manufacturer_data()
        self.emit_properties_changed({"RSSI": rssi, **changed})

    def _service_data(self) -> dict[str, Variant]:
        return {k: Variant("ay", v) for k, v in self.adv.service_data.items()}

    def _manufacturer_data(self) -> dict[int, Variant]:
        return {k: Variant("ay", v) for k, v in self.adv.manufacturer_data.items()}

    @dbus_property(access=R)
    def Address(self) -> "s":
        """The MAC address, or the CoreBluetooth-style UUID the fake was told to show for it
        (``FakeBlueZ.identifiers``: how macOS names a peripheral)."""
        mac = str(self.address).split("/")[0]
        return self.fake.identifiers.get(mac.upper(), mac)

    @dbus_property(access=R)
    def AddressType(self) -> "s":
        return "random" if self.address.is_random else "public"

    @dbus_property(access=R)
    def Name(self) -> "s":
        return self.adv.name or self.Address

    @dbus_property(access=R)
    def Alias(self) -> "s":
        return self.adv.name or self.Address.replace(":", "-")

    @dbus_property(access=R)
    def Adapter(self) -> "o":
        return ADAPTER_PATH

    @dbus_property(access=R)
    def Paired(self) -> "b":
        return self._paired

    @dbus_property(access=R)
    def Bonded(self) -> "b":
        return self._paired

    @dbus_property()
    def Trusted(self) -> "b":
        return self._trusted

    @Trusted.setter
    def Trusted(self, value: "b"):
        self._trusted = bool(value)

    @dbus_property(access=R)
    def Blocked(self) -> "b":
        return False

    @dbus_property(access=R)
    def LegacyPairing(self) -> "b":
        return False

    @dbus_property(access=R)
    def Connected(self) -> "b":
        return self._connected

    @dbus_property(access=R)
    def ServicesResolved(self) -> "b":
        return self._resolved

    @dbus_property(access=R)
    def RSSI(self) -> "n":
        return self._rssi

    @dbus_property(access=R)
    def UUIDs(self) -> "as":
        return list(self.adv.uuids)

    @dbus_property(access=R)
    def ServiceData(self) -> "a{sv}":
        return self._service_data()

    @dbus_property(access=R)
    def ManufacturerData(self) -> "a{qv}":
        return self._manufacturer_data()


class GattService1(ServiceInterface):
    """``org.bluez.GattService1``."""

    def __init__(self, uuid: str, device_path: str) -> None:
        super().__init__("org.bluez.GattService1")
        self._uuid, self._dev = uuid, device_path

    @dbus_property(access=R)
    def UUID(self) -> "s":
        return self._uuid

    @dbus_property(access=R)
    def Device(self) -> "o":
        return self._dev

    @dbus_property(access=R)
    def Primary(self) -> "b":
        return True

    @dbus_property(access=R)
    def Includes(self) -> "ao":
        return []


_NEEDS_PAIRING = (ATT_INSUFFICIENT_ENCRYPTION_ERROR, ATT_INSUFFICIENT_AUTHENTICATION_ERROR)


class GattCharacteristic1(ServiceInterface):
    """``org.bluez.GattCharacteristic1``; notifications become ``PropertiesChanged("Value")``."""

    def __init__(self, peer: Peer, proxy, service_path: str, mtu: int,
                 device: Device1 | None = None) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.peer, self.proxy, self._svc, self._mtu = peer, proxy, service_path, mtu
        self.device = device
        self._value = b""
        self._notifying = False
        self.alive = True

    def _on_value(self, value: bytes) -> None:
        if not self.alive:
            return
        self._value = bytes(value)
        self.emit_properties_changed({"Value": self._value})

    def _check(self) -> None:
        if not self.alive:
            raise DBusError("org.bluez.Error.NotConnected", "Not connected")

    @method()
    async def ReadValue(self, options: "a{sv}") -> "ay":
        self._check()
        self._value = bytes(await self.peer.read_value(self.proxy))
        return self._value

    @method()
    async def WriteValue(self, value: "ay", options: "a{sv}"):
        self._check()
        kind = options.get("type", Variant("s", "request")).value
        try:
            await self.peer.write_value(self.proxy, bytes(value),
                                        with_response=(kind != "command"))
        except ATT_Error as e:
            if e.error_code not in _NEEDS_PAIRING or self.device is None:
                raise DBusError("org.bluez.Error.Failed", f"Operation failed: {e}") from e
            # what BlueZ (and CoreBluetooth, WinRT) do on Insufficient Encryption/Authentication:
            # pair, then write again
            self.device.insufficient_encryption += 1
            await self.device._connect(pair=True)
            await self.peer.write_value(self.proxy, bytes(value),
                                        with_response=(kind != "command"))

    @method()
    async def StartNotify(self):
        self._check()
        if not self._notifying:
            await self.peer.subscribe(self.proxy, self._on_value)
            self._notifying = True
            self.emit_properties_changed({"Notifying": True})

    @method()
    async def StopNotify(self):
        self._check()
        if self._notifying:
            await self.peer.unsubscribe(self.proxy, self._on_value)
            self._notifying = False
            self.emit_properties_changed({"Notifying": False})

    @dbus_property(access=R)
    def UUID(self) -> "s":
        return full_uuid(self.proxy.uuid)

    @dbus_property(access=R)
    def Service(self) -> "o":
        return self._svc

    @dbus_property(access=R)
    def Value(self) -> "ay":
        return self._value

    @dbus_property(access=R)
    def Notifying(self) -> "b":
        return self._notifying

    @dbus_property(access=R)
    def Flags(self) -> "as":
        return _flags(self.proxy.properties)

    @dbus_property(access=R)
    def MTU(self) -> "q":
        return self._mtu


class GattDescriptor1(ServiceInterface):
    """``org.bluez.GattDescriptor1``."""

    def __init__(self, peer: Peer, proxy, char_path: str) -> None:
        super().__init__("org.bluez.GattDescriptor1")
        self.peer, self.proxy, self._char = peer, proxy, char_path

    @method()
    async def ReadValue(self, options: "a{sv}") -> "ay":
        return bytes(await self.peer.read_value(self.proxy))

    @method()
    async def WriteValue(self, value: "ay", options: "a{sv}"):
        await self.peer.write_value(self.proxy, bytes(value), with_response=True)

    @dbus_property(access=R)
    def UUID(self) -> "s":
        return full_uuid(self.proxy.type)

    @dbus_property(access=R)
    def Characteristic(self) -> "o":
        return self._char

    @dbus_property(access=R)
    def Value(self) -> "ay":
        return b""

    @dbus_property(access=R)
    def Flags(self) -> "as":
        return ["read", "write"]


class FakeBlueZ:
    """Owns ``org.bluez`` on the system bus (``DBUS_SYSTEM_BUS_ADDRESS``) and a Bumble central.

    ``mtu`` is the ATT MTU the central asks for on connect (23 = no exchange beyond the default).
    """

    def __init__(self, link: LocalLink, mtu: int = 247, connect_timeout_s: float = 2.0,
                 identifiers: dict[str, str] | None = None) -> None:
        ctrl = Controller("fake-hci0", link=link, public_address=ADAPTER_ADDRESS)
        self.central = Device(name="fake-hci0", address=Address(ADAPTER_ADDRESS),
                              host=Host(ctrl, AsyncPipeSink(ctrl)))
        self.mtu = mtu
        self.connect_timeout_s = connect_timeout_s
        # MAC -> UUID: devices shown under a UUID, as macOS's CoreBluetooth shows every one
        self.identifiers = {k.upper(): v.upper() for k, v in (identifiers or {}).items()}
        self.devices: dict[str, Device1] = {}
        self.rssi: dict[str, int] = {}
        self.bus: MessageBus | None = None
        self.adapter: Adapter1 | None = None

    async def start(self) -> FakeBlueZ:
        await self.central.power_on()
        self.central.on("advertisement", self._on_advertisement)
        self.bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        self.adapter = Adapter1(self)
        self.bus.export(ADAPTER_PATH, self.adapter)
        await self.bus.request_name("org.bluez")
        return self

    async def stop(self) -> None:
        for dev in list(self.devices.values()):
            if dev.connection is not None:
                try:
                    await dev.connection.disconnect()
                except Exception as e:  # noqa: BLE001
                    log.debug("stop: %s", e)
        if self.bus is not None:
            self.bus.disconnect()
            await self.bus.wait_for_disconnect()
            self.bus = None

    async def __aenter__(self) -> FakeBlueZ:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def set_rssi(self, address: str, rssi: int) -> None:
        """The RSSI reported for ``address`` (LocalLink itself always reports -50 dBm)."""
        self.rssi[address.upper()] = rssi

    def _on_advertisement(self, adv) -> None:
        address = str(adv.address).split("/")[0].upper()
        path = f"{ADAPTER_PATH}/dev_{address.replace(':', '_')}"
        rssi = self.rssi.get(address, int(adv.rssi))
        dev = self.devices.get(path)
        if dev is None:
            data = AdvertisedData()
            data.merge(adv.data.ad_structures)
            wanted = self.adapter.uuid_filter if self.adapter else set()
            if wanted and not wanted & set(data.uuids):
                return
            dev = Device1(self, path, adv.address, data, rssi)
            self.devices[path] = dev
            self.bus.export(path, dev)  # ObjectManager.InterfacesAdded
        else:
            dev.adv.merge(adv.data.ad_structures)
            dev.advertised(rssi)

    def remove_device(self, path: str) -> None:
        dev = self.devices.pop(path, None)
        if dev is not None:
            self.bus.unexport(path)
