"""BLE GATT link (MicroPython ``bluetooth``): the node service, Battery Service, bonding.

Security: LE Secure Connections with bonding (``le_secure``, ``bond``). Our own bond list lives
in ``bonds.json``: NimBLE keeps no keys of its own on MicroPython, it asks us (``_IRQ_GET_SECRET``
/ ``_IRQ_SET_SECRET``). What holds:

* The list is loaded and ``ble.irq`` registered before ``ble.active(True)``, when NimBLE reads
  the peers' identity keys (IRKs) for its resolving list: a host with a private address
  (Windows, macOS, Android) is recognised after the node reboots.
* New bonds are stored only while the pairing window is open (the first ``PAIRING_WINDOW_S``
  after power-up, or after a long press of the button). NimBLE reports ``bonded=1`` even when we
  refuse to store the keys, so its flag is not trusted: a connection is trusted only when it is
  encrypted with keys found in, or just stored in, our list. A central that pairs outside the
  window is disconnected.
* The control characteristic (every command, including those that change the node) requires an
  encrypted link (``_FLAG_WRITE_ENCRYPTED``): the host's stack gets Insufficient Encryption and
  pairs by itself (BlueZ, Windows and CoreBluetooth alike).
* Keys are written to flash from the main loop (``poll``), not inside the IRQ, as aioble defers
  its ``save_secrets``; the file is replaced atomically.
"""

import json
import os
import time

import bluetooth
from micropython import const

import firmware_bridge.wire as wire

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_FLAG_READ = const(0x0002)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)
_FLAG_WRITE_ENCRYPTED = const(0x1000)
_IO_NO_INPUT_OUTPUT = const(3)
_SEC_OUR, _SEC_PEER = const(1), const(2)  # NimBLE's BLE_STORE_OBJ_TYPE_OUR_SEC / PEER_SEC

NODE_SERVICE_UUID = bluetooth.UUID("d057a100-6a2f-4c8e-9b3e-1f2a3c4d5e60")
NODE_DATA_UUID = bluetooth.UUID("d057a101-6a2f-4c8e-9b3e-1f2a3c4d5e60")
NODE_CONTROL_UUID = bluetooth.UUID("d057a102-6a2f-4c8e-9b3e-1f2a3c4d5e60")
BATTERY_SERVICE_UUID = bluetooth.UUID(0x180F)
BATTERY_LEVEL_UUID = bluetooth.UUID(0x2A19)
PAIRING_WINDOW_S = 120
BONDS_FILE = "bonds.json"


def _adv(name, service_uuid):
    name = name.encode()
    adv = bytes((2, 0x01, 0x06)) + bytes((len(name) + 1, 0x09)) + name
    resp = bytes((17, 0x07)) + bytes(service_uuid)
    return adv, resp


class BleLink:
    """One connected central at a time; frames go out as notifications on NODE_DATA."""

    def __init__(self, name):
        self.name = name
        self._secrets = self._load_secrets()  # before active(True): NimBLE reads IRKs then
        self._dirty = False
        self._pairing_until = time.ticks_add(time.ticks_ms(), PAIRING_WINDOW_S * 1000)
        self.conn = None
        self.max_payload = 20
        self.encrypted = self.bonded = False
        self._peer = None  # store key (hex) of the bond this connection's keys belong to
        self._refused = False  # this connection paired outside the window
        self._kick = False
        self._greet = False  # a STATUS frame is owed to the central
        self.inbox = []
        self.dropped = 0
        self.kicked = 0
        self.ble = bluetooth.BLE()
        self.ble.irq(self._irq)
        self.ble.active(True)
        self.ble.config(gap_name=name, mtu=247, bond=True, le_secure=True, mitm=False,
                        io=_IO_NO_INPUT_OUTPUT)
        ((self.h_data, self.h_control), (self.h_battery,)) = self.ble.gatts_register_services((
            (NODE_SERVICE_UUID, ((NODE_DATA_UUID, _FLAG_NOTIFY),
                                 (NODE_CONTROL_UUID,
                                  _FLAG_WRITE | _FLAG_WRITE_ENCRYPTED | _FLAG_NOTIFY))),
            (BATTERY_SERVICE_UUID, ((BATTERY_LEVEL_UUID, _FLAG_READ | _FLAG_NOTIFY),)),
        ))
        self.ble.gatts_set_buffer(self.h_control, 64, True)
        self.reader = wire.FrameReader()
        self._advertise()

    # -- our bond list
    def _load_secrets(self):
        try:
            with open(BONDS_FILE) as f:
                return {tuple(k.split(",")): v for k, v in json.load(f).items()}
        except (OSError, ValueError):
            return {}

    def _save_secrets(self):
        tmp = BONDS_FILE + ".tmp"
        with open(tmp, "w") as f:
            json.dump({",".join(str(p) for p in k): v for k, v in self._secrets.items()}, f)
        os.rename(tmp, BONDS_FILE)

    def bonded_peers(self):
        """Store keys (hex of the peer's identity address) of the hosts we bonded with."""
        return set(k[1] for k in self._secrets if k[0] in (str(_SEC_OUR), str(_SEC_PEER)))

    def open_pairing_window(self):
        self._pairing_until = time.ticks_add(time.ticks_ms(), PAIRING_WINDOW_S * 1000)

    def pairing_open(self):
        return time.ticks_diff(self._pairing_until, time.ticks_ms()) > 0

    @property
    def trusted(self):
        return (self.conn is not None and self.encrypted and not self._refused
                and self._peer is not None and self._peer in self.bonded_peers())

    # -- events (IRQ context: no flash writes, no allocation-heavy work)
    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            self.conn = data[0]
            self.max_payload = 20
            self.encrypted = self.bonded = self._refused = self._kick = False
            self._peer = None
            self._greet = True
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self.conn = None
            self._peer = None
            self._advertise()
        elif event == _IRQ_MTU_EXCHANGED:
            self.max_payload = max(20, data[1] - 3)
        elif event == _IRQ_ENCRYPTION_UPDATE:
            _conn, encrypted, _auth, bonded, _key_size = data
            self.encrypted, self.bonded = bool(encrypted), bool(bonded)
            if self.encrypted and not self.trusted:
                self._kick = True  # paired outside the window, or keys not from our list
            self._greet = True
        elif event == _IRQ_GATTS_WRITE:
            conn, handle = data
            if handle == self.h_control:
                self.inbox.append(self.ble.gatts_read(handle))
        elif event == _IRQ_GET_SECRET:
            sec_type, index, key = data
            if key is None:
                found = [v for k, v in self._secrets.items() if k[0] == str(sec_type)]
                return bytes.fromhex(found[index]) if index < len(found) else None
            k = (str(sec_type), bytes(key).hex())
            v = self._secrets.get(k)
            if v and self.conn is not None:
                self._peer = k[1]
            return bytes.fromhex(v) if v else None
        elif event == _IRQ_SET_SECRET:
            sec_type, key, value = data
            k = (str(sec_type), bytes(key).hex())
            if value is None:
                if self._secrets.pop(k, None) is not None:
                    self._dirty = True
                return True
            if not self.pairing_open():
                self._refused = True  # NimBLE reports bonded anyway: we disconnect instead
                return False
            self._secrets[k] = bytes(value).hex()
            self._peer = k[1]
            self._dirty = True
            return True
        return None

    def _advertise(self):
        adv, resp = _adv(self.name, NODE_SERVICE_UUID)
        self.ble.gap_advertise(50_000, adv_data=adv, resp_data=resp)

    # -- the link interface
    def send(self, frame):
        if self.conn is None:
            return
        try:
            if frame[1] & 0x0F == wire.T_DATA:
                self.ble.gatts_notify(self.conn, self.h_data, frame)
            else:
                self.ble.gatts_notify(self.conn, self.h_control, frame)
        except OSError:
            self.dropped += 1  # the controller's buffers are full: the host sees a lost frame

    def set_battery(self, pct):
        self.ble.gatts_write(self.h_battery, bytes((pct,)), self.conn is not None)

    def poll(self, node):
        if self._dirty:
            self._dirty = False
            self._save_secrets()
        if self._kick and self.conn is not None:
            self._kick = False
            self.kicked += 1
            self.inbox = []
            self.ble.gap_disconnect(self.conn)
            return
        if self._greet and self.conn is not None:
            self._greet = False
            self.reader = wire.FrameReader()
            node.send_status(self)
        while self.inbox:
            node.handle_command(self.inbox.pop(0), self, trusted=self.trusted,
                                reader=self.reader)
