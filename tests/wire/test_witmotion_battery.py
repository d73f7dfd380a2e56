"""WitMotion battery request and reply, and the rates each radio offers (vendor SDK
WITMOTION/WitBluetooth_BWT901BLE5_0: ``FF AA 27 64 00``, reply ``55 71 64 00`` + volts × 100)."""

from __future__ import annotations

import pytest

from dorsimeter.wire import witmotion as W


def test_battery_request_is_the_vendors_register_read():
    assert W.BATTERY_COMMAND == bytes.fromhex("ffaa276400")
    assert W.read_register_command(0x03) == bytes.fromhex("ffaa270300")
    with pytest.raises(ValueError):
        W.read_register_command(0x100)


def test_a_battery_reply_among_data_packets_and_split_notifications():
    """The SDK's example reply layout (register LE, then int16 LE values): 0x0186 = 390 -> 3.90 V;
    it arrives between data packets, cut across two notifications."""
    reply = bytes.fromhex("55716400" "8601" + "00" * 14)
    assert W.encode_register_reply(0x64, [390]) == reply
    data = W.encode_ble_packet([0, 0, 1], [0, 0, 0], [0, 0, 0])
    dec = W.WitBleDecoder(rate_hz=50)
    stream = data + reply + data
    got = dec.feed(stream[:27]) + dec.feed(stream[27:])
    assert sum(len(b) for b in got) == 2  # both data packets still decoded
    (r,) = dec.pop_replies()
    assert r.reg == 0x64 and r.values[0] == 390
    assert W.battery_volts(r) == pytest.approx(3.90)
    assert dec.pop_replies() == []
    other = W.RegisterReply(0x3A, (360, 105, 122, 0, 0, 0, 0, 0))  # magnetometer, not battery
    assert W.battery_volts(other) is None


@pytest.mark.parametrize("volts,pct", [(3.3, 0), (3.4, 0), (3.5, 5), (3.75, 25), (3.82, 50),
                                       (3.91, 70), (3.99, 100), (4.2, 100)])
def test_battery_percent_follows_the_vendor_curve(volts, pct):
    assert W.battery_percent(volts) == pct


def test_bluetooth_4_units_are_offered_50_hz_at_most():
    assert W.supported_rates("ble4") == (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
    assert W.supported_rates("ble5")[-3:] == (100.0, 125.0, 200.0)
    assert W.set_rate_command(50, "ble4") == bytes.fromhex("ffaa030800")
    with pytest.raises(ValueError, match="streams at 0.2, 0.5, 1, 2, 5, 10, 20, 50 Hz, not 100"):
        W.rate_commands(100, "ble4")
    assert W.rate_commands(200) == [W.UNLOCK, bytes.fromhex("ffaa030b00"), W.SAVE]
    assert W.COMMAND_GAP_S == 0.1
