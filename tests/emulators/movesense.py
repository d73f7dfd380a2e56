"""An emulated Movesense sensor running the ``gatt_sensordata_app`` firmware sample.

Written from the vendor's sample (movesense-device-lib ``samples/gatt_sensordata_app``,
``GATTSensorDataClient.cpp``) and its Python client, not from our decoder:

- GATT: the app's service ``34802252-…`` with the command characteristic ``34800001-…`` (write)
  and the data characteristic ``34800002-…`` (notify); the standard Battery Service beside it.
  It advertises its name, ``Movesense <serial number>``, and the Whiteboard service 0xFDF3.
- Commands (``command, reference, data``): HELLO answers ``01 ref 'Hello'``; SUBSCRIBE takes a
  free slot of the app's table and subscribes the resource path; a full table answers 507
  (``01 ref 01 FB``); a path that is no resource (``/Meas/IMU6/100``) fails inside Whiteboard and
  the app frees the slot, sending nothing (as the sample does); UNSUBSCRIBE frees the reference.
  Losing the connection unsubscribes everything (the app's ``COMM_BLE_PEERS`` handler).
- IMU6 data: ``02 ref``, the uint32 LE ms timestamp of the first sample, the acc array (m/s²)
  and the gyro array (°/s) as float32, rate / 13 samples per notification; a message longer
  than the 158 bytes a notification carries at the app's MTU of 161 goes on in ``03 ref``
  (DATA_PART2) notifications.

The IMU runs only while subscribed (the sensor sleeps otherwise), sampling a simulated shank
(:class:`dorsimeter.sim.ShankSim`); its clock runs from power-on. Every message and whether all
of its notifications went onto the link is kept in ``sent``.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field

import numpy as np
from bumble.core import AdvertisingData
from bumble.gatt import Service
from bumble.link import LocalLink

from dorsimeter.sim import ShankSim
from tests.emulators.peripheral import WRITE, Impairments, Peripheral, Ticker

SERVICE_UUID = "34802252-7185-4d5d-b431-630e7050e8f0"
COMMAND_UUID = "34800001-7185-4d5d-b431-630e7050e8f0"
DATA_UUID = "34800002-7185-4d5d-b431-630e7050e8f0"
WHITEBOARD_SERVICE_16 = 0xFDF3
APP_MTU = 161  # the app's buffers: "Big enough since MTU is 161"
MAX_DATASUB_COUNT = 4
IMU_RATES_HZ = (13, 26, 52, 104, 208, 416, 833, 1666)  # the meas_imu API's sample rates


@dataclass
class Subscription:
    reference: int
    path: str
    rate_hz: int
    task: asyncio.Task | None = None


@dataclass
class SentMessage:
    """One IMU6 message: its timestamp, the values in it and whether every part was sent."""

    reference: int
    timestamp_ms: int
    acc_m_s2: np.ndarray
    gyr_dps: np.ndarray
    delivered: bool


@dataclass
class Sent:
    messages: list[SentMessage] = field(default_factory=list)

    def delivered(self) -> list[SentMessage]:
        return [m for m in self.messages if m.delivered]

    def arrays(self, rate_hz: float, delivered_only: bool = True
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t_s, acc m/s², gyro °/s) of every sample sent, each sample's time from its message's
        timestamp and the rate (as the vendor's client interpolates it)."""
        msgs = self.delivered() if delivered_only else self.messages
        if not msgs:
            return np.empty(0), np.empty((0, 3)), np.empty((0, 3))
        t = np.concatenate([m.timestamp_ms / 1000.0 + np.arange(len(m.acc_m_s2)) / rate_hz
                            for m in msgs])
        return (t, np.concatenate([m.acc_m_s2 for m in msgs]),
                np.concatenate([m.gyr_dps for m in msgs]))


def imu6_message(reference: int, timestamp_ms: int, acc_m_s2: np.ndarray,
                 gyr_dps: np.ndarray) -> bytes:
    """The SBEM layout of one IMU6 notification, as the app serialises ``IMU6Data``."""
    n = len(acc_m_s2)
    body = struct.pack(f"<I{6 * n}f", timestamp_ms & 0xFFFFFFFF,
                       *np.asarray(acc_m_s2, dtype=np.float32).reshape(-1),
                       *np.asarray(gyr_dps, dtype=np.float32).reshape(-1))
    return bytes([2, reference]) + body


def split_notifications(message: bytes, payload: int) -> list[bytes]:
    """A DATA message cut into the notifications the app sends: the first ``payload`` bytes,
    then DATA_PART2 notifications (``03 ref`` + the rest)."""
    out = [message[:payload]]
    rest = message[payload:]
    while rest:
        out.append(bytes([3, message[1]]) + rest[:payload - 2])
        rest = rest[payload - 2:]
    return out


class MovesensePeripheral(Peripheral):
    """The emulated sensor; ``battery_pct`` is what its Battery Service reads."""

    def __init__(self, link: LocalLink, name: str = "Movesense 174630000192",
                 address: str = "0C:8C:DC:00:00:01", impairments: Impairments | None = None,
                 seed: int = 0, battery_pct: int = 87) -> None:
        super().__init__(link, name, address, impairments)
        self.seed = seed
        self.battery_pct = battery_pct
        self.sent = Sent()
        self.subscriptions: dict[int, Subscription] = {}
        self.replies: list[bytes] = []
        self.refused: list[bytes] = []  # commands that started nothing
        self.subscribe_count = 0
        self._boot = time.monotonic()
        self.sim: ShankSim | None = None
        self.device.on("connection", self._watch_disconnection)

    def services(self) -> list[Service]:
        command = self.writable(COMMAND_UUID, self._on_command, WRITE)
        return [Service(SERVICE_UUID, [command, self.stream(DATA_UUID)]),
                self.battery_service(lambda: bytes([self.battery_pct]))]

    def advertisement(self) -> tuple[bytes, bytes]:
        return self.named_advertisement(
            (AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
             struct.pack("<H", WHITEBOARD_SERVICE_16)))

    def clock_ms(self) -> float:
        """The sensor's clock: ms since power-on."""
        return (time.monotonic() - self._boot) * 1000.0

    # --- the app's command handler
    def _reply(self, value: bytes) -> None:
        self.replies.append(value)
        self.spawn(self.notify(self.data, value))

    def _on_command(self, value: bytes) -> None:
        if len(value) < 2:
            self.refused.append(value)
            return
        cmd, ref, data = value[0], value[1], value[2:]
        if cmd == 0:  # HELLO
            self._reply(bytes([1, ref]) + b"Hello")
        elif cmd == 1:  # SUBSCRIBE
            if len(self.subscriptions) >= MAX_DATASUB_COUNT:
                self._reply(bytes([1, ref, 0x01, 0xFB]))  # 507 Insufficient Storage
                return
            path = data.decode("ascii", "replace")
            rate = self._imu6_rate(path)
            if rate is None or ref == 0:  # no such resource: Whiteboard 404, slot freed
                self.refused.append(value)
                return
            sub = Subscription(ref, path, rate)
            self.subscriptions[ref] = sub
            self.subscribe_count += 1
            sub.task = self.spawn(self._stream(sub))
        elif cmd == 2:  # UNSUBSCRIBE
            sub = self.subscriptions.pop(ref, None)
            if sub is not None and sub.task is not None:
                sub.task.cancel()
        else:
            self.refused.append(value)

    @staticmethod
    def _imu6_rate(path: str) -> int | None:
        prefix = "/Meas/IMU6/"
        if not path.startswith(prefix) or not path[len(prefix):].isdigit():
            return None
        rate = int(path[len(prefix):])
        return rate if rate in IMU_RATES_HZ else None

    def _watch_disconnection(self, connection) -> None:
        connection.on("disconnection", lambda reason: self._unsubscribe_all())

    def _unsubscribe_all(self) -> None:
        for sub in self.subscriptions.values():
            if sub.task is not None:
                sub.task.cancel()
        self.subscriptions.clear()

    # --- data
    def _payload(self) -> int:
        conns = list(self.device.connections.values())
        mtu = min(APP_MTU, conns[0].att_mtu) if conns else 23
        return mtu - 3

    async def _stream(self, sub: Subscription) -> None:
        """The IMU from the subscription on: rate / 13 samples a notification."""
        n = max(1, round(sub.rate_hz / 13))
        self.sim = sim = ShankSim(rate_hz=float(sub.rate_hz), seed=self.seed)
        start_ms = self.clock_ms()
        ticker = Ticker(sub.rate_hz / n)
        k = 0
        while True:
            due = ticker.due()
            for _ in range(due):
                b = sim.generate(n)
                ts = int(start_ms + k * 1000.0 / sub.rate_hz)  # the first sample's time, in ms
                acc = b.acc_m_s2.astype(np.float32)
                gyr = np.degrees(b.gyr_rad_s).astype(np.float32)
                msg = imu6_message(sub.reference, ts, acc, gyr)
                ok = True
                for part in split_notifications(msg, self._payload()):
                    ok = await self.notify(self.data, part) and ok
                self.sent.messages.append(SentMessage(sub.reference, ts, acc.astype(float),
                                                      gyr.astype(float), ok))
                k += n
            ticker.advance(due)
            await ticker.sleep()


def demo(link: LocalLink, impairments: Impairments) -> tuple[MovesensePeripheral, int]:
    """The Movesense ``python -m tests.emulators`` serves, and the RSSI the host sees it at."""
    return MovesensePeripheral(link, "Movesense 174630000192", "0C:8C:DC:00:00:01",
                               impairments), -62
