"""Our sensor node as a Bumble peripheral: the firmware's ``SensorNode`` behind its GATT service.

The node logic is the firmware's own (``firmware_bridge.node.SensorNode``) with the host's
simulated drivers (``firmware_bridge.sim_drivers``: ShankSim as the IMU, a simulated battery).
Its clock follows the event loop, so it samples in real time. :class:`GattLink` plays the part
of the firmware's ``BleLink``: attached once at power-up, DATA frames go out as notifications on
NODE_DATA, other frames on NODE_CONTROL, writes to NODE_CONTROL become commands, and ``trusted``
is True only on an encrypted (paired) link. While nobody is subscribed, frames are dropped as
the firmware drops them, so sequence numbers tell the host exactly what it missed.
"""

from __future__ import annotations

import asyncio
from collections import deque

import numpy as np
from bumble.core import AdvertisingData
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.link import LocalLink

from dorsimeter.sim import ShankSim
from dorsimeter.wire import frames, gatt
from firmware_bridge.node import SensorNode
from firmware_bridge.sim_drivers import SimBattery, SimClock, SimImu
from tests.emulators.peripheral import (
    NOTIFY,
    WRITE,
    Impairments,
    Peripheral,
    advertising_data,
    uuid128_list,
)

STEP_S = 0.004  # how often the node's main loop runs


class GattLink:
    """The node's BLE link (see ``firmware_bridge.ble.BleLink``) over Bumble."""

    def __init__(self, peripheral: NodePeripheral) -> None:
        self.p = peripheral
        self.outbox: deque[tuple[bool, bytes]] = deque()

    @property
    def max_payload(self) -> int:
        conns = list(self.p.device.connections.values())
        return gatt.att_payload(conns[0].att_mtu) if conns else gatt.DEFAULT_ATT_PAYLOAD

    @property
    def trusted(self) -> bool:
        conns = list(self.p.device.connections.values())
        return bool(conns) and bool(conns[0].is_encrypted)

    def send(self, frame: bytes) -> None:
        self.outbox.append((frame[1] & 0x0F == frames.T_DATA, bytes(frame)))


class NodePeripheral(Peripheral):
    """The emulated node, advertising as ``name``; ``rate_hz`` is its configured sample rate.

    The simulated session (standing still, then knee drives) starts at power-on, or with
    ``wait_for_host`` when a host first connects, so a late host still sees the stance.
    """

    def __init__(self, link: LocalLink, name: str = "dorsi-0001",
                 address: str = "C0:D0:57:00:00:01", impairments: Impairments | None = None,
                 rate_hz: float = 100.0, seed: int = 0, battery_pct: float = 87.0,
                 wait_for_host: bool = False) -> None:
        super().__init__(link, name, address, impairments)
        self.clock = SimClock()
        self.imu = SimImu(ShankSim(rate_hz=rate_hz, seed=seed), self.clock)
        self.imu.keep_truth = True
        self.node = SensorNode(self.imu, battery=SimBattery(self.clock, battery_pct),
                               clock=self.clock)
        self.gatt_link = GattLink(self)
        self.node.attach(self.gatt_link)
        self.data_frames_sent = 0
        self.lost_seqs: list[int] = []  # sequence numbers of DATA frames removed by injected loss
        self.sent_frames: list[bytes] = []  # DATA frames that went onto the link
        self._t0: float | None = None
        self.wait_for_host = wait_for_host
        self.ignore_commands = 0  # commands to leave unanswered from now on

    def services(self) -> list[Service]:
        def on_control(conn, value: bytes) -> None:
            self.counters.writes.append(bytes(value))
            if self.ignore_commands > 0:  # a node too busy to answer (the host's set-up fails)
                self.ignore_commands -= 1
                return
            self.node.handle_command(bytes(value), self.gatt_link, trusted=self.gatt_link.trusted)

        # as the firmware: writing a command needs an encrypted link (the host's stack pairs)
        self.control = Characteristic(gatt.NODE_CONTROL_UUID, WRITE | NOTIFY,
                                      Characteristic.WRITE_REQUIRES_ENCRYPTION,
                                      CharacteristicValue(write=on_control))
        # the firmware's Battery Service uses the Bluetooth SIG UUIDs 0x180F / 0x2A19
        return [Service(gatt.NODE_SERVICE_UUID, [self.stream(gatt.NODE_DATA_UUID), self.control]),
                self.battery_service(lambda: bytes([self.node.battery_reading()[0]]))]

    def advertisement(self) -> tuple[bytes, bytes]:
        # as the firmware does: name in the advertisement, the service UUID in the scan response
        return (advertising_data((AdvertisingData.FLAGS, b"\x06"),
                                 (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode())),
                advertising_data(uuid128_list(gatt.NODE_SERVICE_UUID)))

    async def start(self) -> NodePeripheral:
        await super().start()
        self.spawn(self._main_loop())
        return self

    def truth(self) -> tuple[np.ndarray, np.ndarray]:
        """(device time s, tibia angle deg) of every sample the node has taken."""
        if not self.imu.truth:
            return np.empty(0), np.empty(0)
        t = np.concatenate([a for a, _ in self.imu.truth])
        ang = np.concatenate([b for _, b in self.imu.truth])
        return t, ang

    async def _main_loop(self) -> None:
        """The firmware's loop: advance the clock, step the node, send what it produced."""
        loop = asyncio.get_running_loop()
        self._t0 = None if self.wait_for_host else loop.time()
        while True:
            if self._t0 is None and self.counters.connections:
                self._t0 = loop.time()  # the first host connected: the session begins
            if self._t0 is not None:
                self.clock.now_s = loop.time() - self._t0
                self.node.step()
            while self.gatt_link.outbox:
                is_data, frame = self.gatt_link.outbox.popleft()
                if is_data:
                    dropped_before = self.counters.dropped
                    if await self.notify(self.data, frame):
                        self.data_frames_sent += 1
                        self.sent_frames.append(frame)
                    elif self.counters.dropped > dropped_before:
                        self.lost_seqs.append(int.from_bytes(frame[2:4], "little"))
                elif self.connected:
                    await self.device.notify_subscribers(self.control, frame)
            await asyncio.sleep(STEP_S)


def demo(link: LocalLink, impairments: Impairments) -> tuple[NodePeripheral, int]:
    """The node ``python -m tests.emulators`` serves, and the RSSI the host sees it at."""
    return NodePeripheral(link, "dorsi-0001", "C0:D0:57:00:00:01", impairments,
                          wait_for_host=True), -55
