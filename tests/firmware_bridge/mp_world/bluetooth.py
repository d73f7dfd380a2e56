"""Stand-in for MicroPython's ``bluetooth`` (NimBLE on the ESP32), written to its documented API
(docs/library/bluetooth.rst) and to what extmod/nimble/modbluetooth_nimble.c does:

* IRQ codes and tuple layouts: ``_IRQ_CENTRAL_CONNECT`` (conn, addr_type, addr) with the peer's
  identity address if NimBLE resolved it, else the address it used; ``_IRQ_GATTS_WRITE`` (conn,
  value handle); ``_IRQ_MTU_EXCHANGED`` (conn, mtu); ``_IRQ_ENCRYPTION_UPDATE`` (conn,
  encrypted, authenticated, bonded, key_size); ``_IRQ_GET_SECRET`` (sec_type, index, key) and
  ``_IRQ_SET_SECRET`` (sec_type, key, value) with memoryviews valid only inside the IRQ; keys
  are the peer's 7-byte ``ble_addr_t``; sec_type 1 our LTK, 2 the peer's.
* NimBLE's security manager: Just Works pairing stores both secrets with SET_SECRET and reports
  ``bonded=1`` whatever the store answered (``ble_sm_persist_keys``); a bonded central
  re-encrypts with the LTK GET_SECRET returns; at ``active(True)`` NimBLE loads the peers' IRKs
  through GET_SECRET (index, key None) into its resolving list, and only a private address
  whose IRK is in that list resolves to the identity address.
* ATT: a write to a characteristic flagged ``_FLAG_WRITE_ENCRYPTED`` on an unencrypted link is
  refused with Insufficient Encryption (0x0F); every OS's stack then pairs and retries.
* ``gatts_notify`` carries at most MTU - 3 bytes (NimBLE truncates; the model logs an error).

The centrals (hosts) keep their own keys in ``centrals.json`` so that they outlive a node reboot.
"""

import json

import world

FLAG_READ, FLAG_WRITE, FLAG_NOTIFY = 0x0002, 0x0008, 0x0010
FLAG_WRITE_ENCRYPTED = 0x1000
IRQ_CENTRAL_CONNECT, IRQ_CENTRAL_DISCONNECT, IRQ_GATTS_WRITE = 1, 2, 3
IRQ_MTU_EXCHANGED, IRQ_ENCRYPTION_UPDATE, IRQ_GET_SECRET, IRQ_SET_SECRET = 21, 28, 29, 30
SEC_OUR, SEC_PEER = 1, 2
CENTRALS_FILE = "centrals.json"


class UUID:
    def __init__(self, value):
        if isinstance(value, int):
            self._b = bytes((value & 0xFF, value >> 8))
        else:
            h = value.replace("-", "")
            self._b = bytes(reversed(bytes.fromhex(h)))  # little-endian, as bytes(UUID) gives

    def __iter__(self):
        return iter(self._b)

    def __eq__(self, other):
        return isinstance(other, UUID) and self._b == other._b


def _hex(b):
    return bytes(b).hex()


class _Conn:
    def __init__(self, handle, central, key):
        self.handle, self.central, self.key = handle, central, key
        self.mtu = 23
        self.encrypted = False
        self.closing = False


class BLE:
    _instance = None

    def __new__(cls):  # bluetooth.BLE() is a singleton
        if BLE._instance is None:
            BLE._instance = object.__new__(cls)
            BLE._instance._setup()
        return BLE._instance

    def _setup(self):
        self._active = False
        self._irq = None
        self._config = {}
        self._values = {}
        self._flags = {}
        self._append = {}
        self.conns = {}
        self._next_conn = 64
        self.resolving = []  # IRKs NimBLE can resolve private addresses with
        self.advertising = False
        self.disconnects = []  # conns the firmware asked to drop (done on the next tick)
        try:
            with open(CENTRALS_FILE) as f:
                self.keys = json.load(f)  # central name -> LTK hex it holds for this node
        except OSError:
            self.keys = {}
        world.W.ble = self

    # -- the documented API
    def active(self, on=None):
        if on and not self._active:
            self._active = True
            world.W.write("ble_active", "irq" if self._irq else "no_irq")
            i = 0
            while self._irq is not None:  # NimBLE fills its resolving list from the store
                v = self._irq(IRQ_GET_SECRET, (SEC_PEER, i, None))
                if v is None:
                    break
                self.resolving.append(_hex(bytes(v)[23:39]))
                i += 1
            world.W.write("resolving", len(self.resolving))
        elif on is False:
            self._active = False
        return self._active

    def config(self, *args, **kw):
        if args:
            return self._config.get(args[0])
        if "gap_name" in kw and not self._active:
            raise OSError(1)  # EPERM: NimBLE sets the GAP name on a running stack
        self._config.update(kw)
        return None

    def irq(self, handler):
        self._irq = handler

    def gatts_register_services(self, services):
        handle = 1
        out = []
        for _uuid, chars in services:
            handle += 1
            hs = []
            for _cuuid, flags in chars:
                handle += 2  # declaration, value
                self._flags[handle] = flags
                self._values[handle] = b""
                hs.append(handle)
                if flags & FLAG_NOTIFY:
                    handle += 1  # CCCD
            out.append(tuple(hs))
        return tuple(out)

    def gatts_set_buffer(self, handle, n, append=False):
        self._append[handle] = append

    def gatts_read(self, handle):
        v = self._values[handle]
        if self._append.get(handle):
            self._values[handle] = b""
        return v

    def gatts_write(self, handle, data, send_update=False):
        self._values[handle] = bytes(data)
        if send_update:
            for c in self.conns.values():
                self.gatts_notify(c.handle, handle, data)

    def gatts_notify(self, conn_handle, value_handle, data=None):
        c = self.conns.get(conn_handle)
        if c is None or c.closing:
            raise OSError(107)  # ENOTCONN
        data = self._values[value_handle] if data is None else bytes(data)
        if len(data) > c.mtu - 3:
            world.W.write("oversize", c.central, len(data), c.mtu)
            data = data[:c.mtu - 3]
        world.W.write("notify", c.central, value_handle, _hex(data))

    def gap_advertise(self, interval_us, adv_data=None, resp_data=None, connectable=True):
        self.advertising = interval_us is not None
        world.W.write("advertise", _hex(adv_data or b""))

    def gap_disconnect(self, conn_handle):
        c = self.conns.get(conn_handle)
        if c is None:
            return False
        c.closing = True
        self.disconnects.append(conn_handle)
        world.W.write("kick", c.central)
        return True

    # -- the world: centrals acting on the node
    def _save_keys(self):
        with open(CENTRALS_FILE, "w") as f:
            json.dump(self.keys, f)

    def _conn_of(self, name):
        for c in self.conns.values():
            if c.central == name:
                return c
        return None

    def world_tick(self):
        while self.disconnects:
            self._drop(self.disconnects.pop(0), "peripheral")

    def _drop(self, handle, by):
        c = self.conns.pop(handle, None)
        if c is not None:
            world.W.write("disconnected", c.central, by)
            self._irq(IRQ_CENTRAL_DISCONNECT, (handle, 0, memoryview(bytes(6))))

    def world_event(self, action, a):
        name = a.get("central")
        c = self._conn_of(name)
        if action == "connect":
            self._connect(a)
        elif action == "disconnect" and c is not None:
            self._drop(c.handle, "central")
        elif action == "mtu" and c is not None:
            c.mtu = a["mtu"]
            self._irq(IRQ_MTU_EXCHANGED, (c.handle, a["mtu"]))
        elif action == "write" and c is not None:
            self._write(c, bytes.fromhex(a["hex"]), a)
        elif action == "pair" and c is not None:
            self._pair(c, a)
        elif action == "forget":  # the host deletes its bond
            self.keys.pop(name, None)
            self._save_keys()

    def _connect(self, a):
        if not self.advertising:
            world.W.write("refused_connect", a["central"])
            return
        identity = bytes.fromhex(a["identity"])  # 7 bytes: type, address little-endian
        irk = a["irk"]
        key = identity
        if a.get("private"):
            key = bytes.fromhex(a["rpa"])
            if irk in self.resolving:
                key = identity
        self._next_conn += 1
        c = _Conn(self._next_conn, a["central"], key)
        c.irk, c.identity = irk, identity
        self.conns[c.handle] = c
        self.advertising = False
        world.W.write("connected", c.central, "resolved" if key == identity else "unresolved")
        self._irq(IRQ_CENTRAL_CONNECT, (c.handle, key[0], memoryview(bytes(reversed(key[1:])))))
        if a.get("mtu"):
            c.mtu = a["mtu"]
            self._irq(IRQ_MTU_EXCHANGED, (c.handle, a["mtu"]))
        if c.central in self.keys:
            self._encrypt(c, a)

    def _encrypt(self, c, a):
        """A bonded central starts encryption with the LTK it holds; NimBLE asks the store."""
        v = self._irq(IRQ_GET_SECRET, (SEC_OUR, 0, memoryview(c.key)))
        if v is not None and _hex(bytes(v)[7:23]) == self.keys.get(c.central):
            c.encrypted = True
            world.W.write("encrypted", c.central, "bond")
            self._irq(IRQ_ENCRYPTION_UPDATE, (c.handle, 1, 0, 1, 16))
        else:
            world.W.write("key_missing", c.central)
            self._pair(c, a)  # every host's stack pairs afresh on "PIN or key missing"

    def _pair(self, c, a):
        """Just Works, LE Secure Connections, bonding: the central distributes its identity
        address and IRK; NimBLE persists both LTK records and reports bonded whatever the store
        said."""
        ltk = a.get("ltk") or ("%032x" % (world.W.now_us * 2654435761 % (1 << 127)))
        value = c.identity + bytes.fromhex(ltk) + bytes.fromhex(c.irk) + bytes(41)
        for sec in (SEC_OUR, SEC_PEER):
            ok = self._irq(IRQ_SET_SECRET, (sec, memoryview(c.identity), memoryview(value)))
            world.W.write("set_secret", c.central, sec, "stored" if ok else "refused")
        try:  # did the firmware write its flash inside the IRQ?
            with open("bonds.json") as f:
                saved = _hex(c.identity) in f.read()
        except OSError:
            saved = False
        world.W.write("saved_in_irq", c.central, "yes" if saved else "no")
        if c.irk not in self.resolving:
            self.resolving.append(c.irk)
        c.key = c.identity
        self.keys[c.central] = ltk
        self._save_keys()
        c.encrypted = True
        world.W.write("encrypted", c.central, "paired")
        self._irq(IRQ_ENCRYPTION_UPDATE, (c.handle, 1, 0, 1, 16))

    def _write(self, c, data, a):
        if c.closing:
            world.W.write("write_dropped", c.central)
            return
        h = a.get("handle")
        if h is None:  # the control characteristic: the first writable one
            h = [k for k in sorted(self._flags) if self._flags[k] & FLAG_WRITE][0]
        if self._flags[h] & FLAG_WRITE_ENCRYPTED and not c.encrypted:
            world.W.write("att_error", c.central, "0x0f")
            if not a.get("auto_pair", True):
                return
            if c.central in self.keys:
                self._encrypt(c, a)
            else:
                self._pair(c, a)
            if c.closing or not c.encrypted:
                world.W.write("write_dropped", c.central)
                return
        if self._append.get(h):
            self._values[h] = self._values[h] + data
        else:
            self._values[h] = data
        world.W.write("write", c.central, _hex(data))
        self._irq(IRQ_GATTS_WRITE, (c.handle, h))
