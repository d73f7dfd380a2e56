"""GATT identifiers of our sensor node, the standard Battery Service and the ATT payload size.

Other families' UUIDs are declared in their ``SensorKind`` (``sources.registry``).

The node's 128-bit UUIDs share one random base (``d057a1xx-6a2f-4c8e-9b3e-1f2a3c4d5e60``):

=====================  ====================  =============================================
characteristic         properties            content
=====================  ====================  =============================================
NODE_DATA_UUID         notify                data frames (``protocol.frames``), one per
                                             notification, as many samples as the MTU allows
NODE_CONTROL_UUID      write, notify         command frames in; response/status frames out
BATTERY_LEVEL_UUID     read, notify          uint8 percent (standard Battery Service)
=====================  ====================  =============================================

Writes to NODE_CONTROL that change the node (rate, start/stop, zero) are accepted only over an
encrypted link from a bonded host (LE Secure Connections); see ``hardware_docs/gatt.md``.
"""

from __future__ import annotations

NODE_NAME_PREFIX = "dorsi-"  # advertised name: dorsi-XXXX (last 2 bytes of the MAC, hex)

NODE_SERVICE_UUID = "d057a100-6a2f-4c8e-9b3e-1f2a3c4d5e60"
NODE_DATA_UUID = "d057a101-6a2f-4c8e-9b3e-1f2a3c4d5e60"
NODE_CONTROL_UUID = "d057a102-6a2f-4c8e-9b3e-1f2a3c4d5e60"

BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"  # Bluetooth base UUID
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"

#: ATT payload of one notification at the default MTU of 23 (MTU - 3).
DEFAULT_ATT_PAYLOAD = 20


def att_payload(mtu: int) -> int:
    """Bytes one notification can carry at ``mtu`` (ATT opcode and handle take 3)."""
    return max(DEFAULT_ATT_PAYLOAD, int(mtu) - 3)

