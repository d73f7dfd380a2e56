"""The node logic under CPython with simulated drivers: frames per link payload, commands,
bonded-only changes, heel channel, gyro zeroing, rate changes; decoded by the host decoder."""

from __future__ import annotations

import struct

import numpy as np

from dorsimeter.sim import SensorErrors, ShankSim
from dorsimeter.sim.motion import ScriptSpec
from dorsimeter.wire import frames as F
from firmware_bridge import wire
from firmware_bridge.drivers.analog import lipo_percent
from firmware_bridge.drivers.bno08x import parse_reports
from firmware_bridge.node import SensorNode
from firmware_bridge.sim_drivers import SimBattery, SimClock, SimHeel, SimImu, SimLed


class Link:
    def __init__(self, max_payload: int, trusted: bool = True) -> None:
        self.max_payload, self.trusted = max_payload, trusted
        self.sent: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.sent.append(bytes(frame))


def make(rate_hz=100.0, heel=False, quat=False, errors=None, **kw):
    clock = SimClock(offset_us=kw.pop("offset_us", 0))
    sim = ShankSim(rate_hz=rate_hz, heel_switch=heel, script=kw.pop("script", "wall"),
                   errors=errors if errors is not None else SensorErrors())
    imu = SimImu(sim, clock, has_quat=quat)
    node = SensorNode(imu, SimHeel(imu) if heel else None, SimBattery(clock), clock, SimLed(),
                      **kw)
    return node, clock, imu


def run(node, clock, seconds, tick_s=0.005):
    t0 = clock.now_s
    for k in range(1, int(round(seconds / tick_s)) + 1):
        clock.now_s = t0 + k * tick_s
        node.step()


def decode(frames_list):
    dec = F.FrameDecoder()
    out = [b for f in frames_list for b in dec.feed(f)]
    return out, dec


def test_mtu23_gets_one_compact_sample_per_notification_and_big_mtu_batches():
    node, clock, _ = make()
    small, big = Link(20), Link(244)
    node.attach(small)
    node.attach(big)
    run(node, clock, 2.0)
    assert all(len(f) <= 20 for f in small.sent)
    data_small = [f for f in small.sent if f[1] == 0x11]
    assert len(data_small) == 201 and {f[8] >> 4 for f in data_small} == {F.ENC_P12}
    data_big = [f for f in big.sent if f[1] == 0x11]
    assert max(len(f) for f in data_big) <= 244 and len(data_big) < 60  # batched
    bs, ds = decode(small.sent)
    bb, db = decode(big.sent)
    ts, tb = np.concatenate([b.t_s for b in bs]), np.concatenate([b.t_s for b in bb])
    assert np.allclose(ts, np.arange(201) / 100) and np.allclose(tb, ts[:len(tb)])
    assert len(tb) >= 201 - 4  # at most 40 ms wait in a batch
    assert ds.stats.lost == db.stats.lost == 0
    # the boot STATUS frame came first on both links
    assert ds.pop_messages()[0].node_status().booted


def test_samples_match_the_simulator_within_quantisation():
    node, clock, imu = make(errors=SensorErrors.none())
    imu.keep_truth = True
    link = Link(256)
    node.attach(link)
    run(node, clock, 3.0)
    got, _ = decode(link.sent)
    acc = np.concatenate([b.acc_m_s2 for b in got])
    ref = ShankSim(rate_hz=100.0, errors=SensorErrors.none()).generate(len(acc))
    assert np.abs(acc - ref.acc_m_s2).max() <= 0.00125 + 1e-9
    assert np.abs(np.concatenate([b.gyr_rad_s for b in got]) - ref.gyr_rad_s).max() <= 0.0005


def test_commands_from_an_unbonded_host_cannot_change_the_node():
    node, clock, imu = make()
    ble = Link(20, trusted=False)
    node.attach(ble)
    run(node, clock, 0.1)
    resp = node.handle_command(F.encode_set_rate(5, 200), ble, trusted=ble.trusted)
    (m,) = [x for x in decode(resp)[1].pop_messages()]
    assert (m.seq, m.cmd, m.status) == (5, F.CMD_SET_RATE, F.ST_NOT_ALLOWED)
    assert imu.rate_hz == 100.0 and node.commands_rejected == 1
    for cmd in (F.CMD_STOP, F.CMD_ZERO):
        r = node.handle_command(F.encode_command(6, cmd), ble, trusted=False)
        assert decode(r)[1].pop_messages()[0].status == F.ST_NOT_ALLOWED
    assert node.streaming
    # reading is allowed: battery, identify, status
    r = node.handle_command(F.encode_command(7, F.CMD_BATTERY), ble, trusted=False)
    m = decode(r)[1].pop_messages()[0]
    pct, mv = struct.unpack("<BH", m.data)
    assert m.status == F.ST_OK and pct == 86 and mv == int(3300 + 9 * (87 - 0.1 / 360))
    r = node.handle_command(F.encode_command(8, F.CMD_IDENTIFY, b"\x04"), ble, trusted=False)
    assert decode(r)[1].pop_messages()[0].status == F.ST_OK and node.led.blinks == [4]


def test_trusted_rate_change_stop_start_and_status():
    node, clock, imu = make()
    usb = Link(256)
    node.attach(usb)
    run(node, clock, 1.0)
    node.handle_command(F.encode_set_rate(1, 200), usb)
    run(node, clock, 1.0)
    node.handle_command(F.encode_command(2, F.CMD_STOP), usb)
    run(node, clock, 0.5)
    node.handle_command(F.encode_command(3, F.CMD_START) + F.encode_command(4, F.CMD_STATUS),
                        usb)
    run(node, clock, 0.5)
    node.handle_command(F.encode_command(9, 0x7E) + F.encode_set_rate(10, 123), usb)
    got, dec = decode(usb.sent)
    msgs = dec.pop_messages()
    statuses = {(m.seq, m.cmd): m.status for m in msgs if m.mtype == F.T_RESPONSE}
    assert statuses == {(1, 1): 0, (2, 3): 0, (3, 2): 0, (4, 7): 0, (9, 0x7E): F.ST_UNKNOWN,
                        (10, 1): F.ST_BAD_ARGS}
    st = [m.node_status() for m in msgs if m.mtype == F.T_STATUS]
    assert st[-1].rate_hz == 200 and st[-1].streaming and st[-1].secure
    t = np.concatenate([b.t_s for b in got])
    dt = np.diff(t)
    assert np.allclose(dt[t[1:] <= 1.0], 0.01) and np.allclose(dt[(t[1:] > 1.01) & (t[1:] < 2)],
                                                               0.005)
    assert 0.45 < dt.max() < 0.55  # stopped for half a second
    assert dec.stats.lost == 0


def test_zero_captures_the_gyro_bias():
    node, clock, _ = make(errors=SensorErrors(0.0, 0.0, (0.02, -0.01, 0.005)))
    link = Link(256)
    node.attach(link)
    run(node, clock, 0.5)
    node.handle_command(F.encode_command(1, F.CMD_ZERO), link)
    run(node, clock, 1.5)  # the sim starts with a still stance
    got, _ = decode(link.sent)
    gyr = np.concatenate([b.gyr_rad_s for b in got])
    assert np.allclose(node.gyr_bias, [0.02, -0.01, 0.005], atol=1e-6)
    assert np.abs(gyr[-20:]).max() < 0.001


def test_heel_channel_follows_the_heel_switch():
    spec = ScriptSpec(lift_prob=0.6)
    node, clock, imu = make(heel=True, script=spec)
    link = Link(244)
    node.attach(link)
    run(node, clock, 40.0, tick_s=0.03)
    got, _ = decode(link.sent)
    heel = np.concatenate([b.heel_contact for b in got])
    assert all(f[8] & F.INFO_HEEL_PRESENT for f in link.sent if f[1] == 0x11)
    ref = ShankSim(rate_hz=100.0, heel_switch=True, script=spec).generate(len(heel))
    truth = (ref.heel_contact >= 0.5).astype(float)
    assert 0 < truth.mean() < 1  # the heel did lift
    assert np.mean(heel == truth) > 0.98  # the FSR is read once per step (3 samples)


def test_quaternion_passes_through_on_a_bno08x_like_part():
    node, clock, _ = make(quat=True)
    ble, ble_small = Link(244), Link(20)
    node.attach(ble)
    node.attach(ble_small)
    run(node, clock, 0.5)
    got, _ = decode(ble.sent)
    assert all(b.quat is not None for b in got)
    small, _ = decode(ble_small.sent)
    assert all(b.quat is None for b in small)  # no room at MTU 23: the host fuses


def test_bno08x_report_parsing_and_lipo_curve():
    payload = bytes([0xFB, 0, 0, 0, 0]) + bytes([0x01, 1, 0, 0]) + struct.pack("<3h", 256, -512,
                                                                                2511)
    payload += bytes([0x02, 2, 0, 0]) + struct.pack("<3h", 512, 0, -256)
    payload += bytes([0x08, 3, 0, 0]) + struct.pack("<4h", 0, 0, 8192, 14189) + b"\0\0"
    reps = parse_reports(payload)
    assert [r for r, _ in reps] == [0x01, 0x02, 0x08]
    assert reps[0][1] == (1.0, -2.0, 2511 / 256)
    assert reps[1][1] == (1.0, 0.0, -0.5)
    assert np.allclose(reps[2][1], (14189 / 16384, 0, 0, 0.5))
    assert lipo_percent(3000) == 0 and lipo_percent(4200) == 100 and lipo_percent(3750) == 42
    assert wire.max_samples_per_frame(20, wire.ENC_P12) == 1
