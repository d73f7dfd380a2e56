"""The Movesense GATT SensorData Protocol decoder and commands (``wire.movesense``).

Byte-exact where the vendor gives bytes: the commands of its Python client
(movesense-device-lib ``samples/gatt_sensordata_app/python_client``: ``[1, 99] +
"/Meas/IMU9/104"``, ``[2, 99]``) and the replies of ``GATTSensorDataClient.cpp``
(``{COMMAND_RESULT, reference, 'H','e','l','l','o'}``, ``{COMMAND_RESULT, reference, 0x01,
0xFB}``). Data messages are built here with ``struct`` from the layout the vendor's client reads
(timestamp uint32 at offset 2, float32 x, y, z from offset 6, the gyro array after the acc one).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dorsimeter.wire import movesense as M

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def message(ts_ms: int, acc, gyr_dps, ref: int = 99) -> bytes:
    acc, gyr = np.asarray(acc, float).reshape(-1, 3), np.asarray(gyr_dps, float).reshape(-1, 3)
    return bytes([2, ref]) + struct.pack(f"<I{6 * len(acc)}f", ts_ms, *acc.ravel(),
                                         *gyr.ravel())


def test_commands_are_the_vendor_clients_bytes():
    assert M.encode_subscribe("/Meas/IMU9/104", 99) == bytearray([1, 99]) + b"/Meas/IMU9/104"
    assert M.encode_unsubscribe(99) == bytes([2, 99])
    assert M.encode_hello(72) == bytes([0, 72])
    assert M.encode_subscribe(M.imu6_path(104.0)) == b"\x01\x63/Meas/IMU6/104"
    for bad in (0, 256):
        try:
            M.encode_hello(bad)
        except ValueError as e:
            assert "1-255" in str(e)
        else:
            raise AssertionError("reference 0 is the app's free slot")


def test_rates_offered_and_their_paths():
    assert M.BLE_RATES_HZ == (13.0, 26.0, 52.0, 104.0)
    assert [M.samples_per_notification(r) for r in M.BLE_RATES_HZ] == [1, 2, 4, 8]
    with pytest.raises(ValueError, match="13, 26, 52, 104 Hz, not 100"):
        M.imu6_path(100.0)


def test_the_apps_replies_are_parsed():
    hello = M.parse_reply(bytes([1, 72, ord("H"), ord("e"), ord("l"), ord("l"), ord("o")]))
    assert hello is not None and hello == M.Reply(72, b"Hello") and hello.status is None
    full = M.parse_reply(bytes([1, 99, 0x01, 0xFB]))
    assert full is not None and full.status == 507
    assert M.parse_reply(message(0, [0, 0, 9.8], [0, 0, 0])) is None


def test_one_imu6_message_in_si_units_with_the_sensors_time():
    acc = [[0.1 * i, -0.2 * i, 9.80665] for i in range(4)]
    gyr = [[90.0, -45.0, 0.5 * i] for i in range(4)]
    dec = M.MovesenseDecoder(52.0)
    (b,) = dec.feed(message(123_456, acc, gyr))
    assert np.allclose(b.t_s, 123.456 + np.arange(4) / 52.0)
    assert np.allclose(b.acc_m_s2, np.asarray(acc, dtype=np.float32), atol=0)
    gyr32 = np.asarray(gyr, dtype=np.float32).astype(float)
    assert np.allclose(b.gyr_rad_s, np.radians(gyr32), rtol=0, atol=1e-12)
    assert b.quat is None  # raw acc + gyro: we fuse
    assert dec.stats.samples == 4 and dec.stats.packets == 1 and dec.stats.bytes_skipped == 0


def test_a_message_split_into_data_and_data_part2_is_joined():
    acc = np.tile([0.0, 0.0, 9.81], (8, 1)) + np.arange(8)[:, None] * 0.01
    gyr = np.tile([1.0, 2.0, 3.0], (8, 1))
    msg = message(1000, acc, gyr)
    assert len(msg) == 198
    part1, part2 = msg[:158], bytes([3, 99]) + msg[158:]  # the app's MTU: 158 a notification
    dec = M.MovesenseDecoder(104.0)
    assert dec.feed(part1) == []
    (b,) = dec.feed(part2)
    assert len(b) == 8 and np.allclose(b.acc_m_s2, np.asarray(acc, dtype=np.float32))
    assert dec.stats.packets == 1 and dec.stats.bytes_skipped == 0


def test_a_missing_message_is_counted_from_the_timestamps():
    dec = M.MovesenseDecoder(52.0)
    period_ms = 4 * 1000 / 52
    got = []
    for k in (0, 1, 2, 5, 6):  # 3 and 4 never arrived
        got += dec.feed(message(int(50 + k * period_ms), np.zeros((4, 3)) + [0, 0, 9.8],
                                np.zeros((4, 3))))
    assert dec.stats.lost == 2 and dec.stats.lost_samples == 8 and dec.stats.packets == 5
    t = np.concatenate([b.t_s for b in got])
    assert np.diff(t).max() > 8 / 52  # the gap stays in device time


def test_a_clock_that_goes_back_is_a_restart_and_time_goes_on():
    dec = M.MovesenseDecoder(13.0)
    a = dec.feed(message(90_000, [0, 0, 9.8], [0, 0, 0]))
    b = dec.feed(message(15, [0, 0, 9.8], [0, 0, 0]))
    assert b[0].restart and not a[0].restart and dec.stats.restarts == 1
    assert b[0].t_s[0] > a[0].t_s[-1]
    c = dec.feed(message(15 + 77, [0, 0, 9.8], [0, 0, 0]))
    assert abs(c[0].t_s[0] - b[0].t_s[0] - 0.077) < 1e-9 and dec.stats.lost == 0


def test_replies_other_references_and_garbage_are_not_data():
    dec = M.MovesenseDecoder(13.0)
    assert dec.feed(bytes([1, 72]) + b"Hello") == []
    assert dec.pop_replies() == [M.Reply(72, b"Hello")]
    assert dec.feed(message(0, [0, 0, 9.8], [0, 0, 0], ref=100)) == []  # not our subscription
    assert dec.feed(message(0, [0, 0, 1e9], [0, 0, 0])) == []  # beyond any range: not data
    assert dec.feed(message(0, [0, 0, 9.8], [0, 0, 0])[:-3]) == []  # cut short: held for a
    assert dec.stats.bytes_skipped == 60  # DATA_PART2 that may follow; anything else ends it
    assert dec.feed(b"\xff") == []
    assert dec.stats.samples == 0 and dec.stats.bytes_skipped == 30 + 30 + 27 + 1


@FAST
@given(st.integers(0, 2**31), st.lists(st.binary(min_size=1, max_size=60), max_size=8),
       st.lists(st.integers(0, 20), max_size=4))
def test_garbage_between_messages_resynchronises_and_every_intact_one_comes_out(
        seed, junk, flips):
    rng = np.random.default_rng(seed % 10_000)
    rate = float(rng.choice(M.BLE_RATES_HZ))
    n = M.samples_per_notification(rate)
    msgs = [message(int(1000 + k * n * 1000 / rate), rng.uniform(-30, 30, (n, 3)),
                    rng.uniform(-500, 500, (n, 3))) for k in range(10)]
    notes: list[bytes] = []
    ruined = set()
    for k, m in enumerate(msgs):
        if k < len(junk):  # a notification of garbage before it (never DATA of ours)
            j = junk[k]
            notes.append(bytes([j[0] | 0x80]) + j[1:])
        parts = [m[:158], bytes([3, 99]) + m[158:]] if len(m) > 158 else [m]
        if k in flips:  # one part cut short: that message is lost, the rest come out
            parts[-1] = parts[-1][:-1]
            ruined.add(k)
        notes += parts
    notes.append(b"\x00")  # anything after the last: it is not waited for
    dec = M.MovesenseDecoder(rate)
    got = [b for note in notes for b in dec.feed(note)]
    assert sum(len(b) for b in got) == n * (10 - len(ruined))
    assert dec.stats.packets == 10 - len(ruined)
    intact = sorted(set(range(10)) - ruined)
    # lost, from the timestamps: those between the first and the last that came
    assert dec.stats.lost == len([k for k in ruined if intact and intact[0] < k < intact[-1]])
    assert dec.stats.bytes_skipped >= sum(len(j) for j in junk[:10])
