"""The live angle: while a rig records, `dorsimeter publish` sends the tibia angle decimated to
about 10 Hz of device time (QoS 0), each value the one the rig stores; the team user may read it,
no other rig may."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from dorsimeter.clinic.mqtt import LIVE_PERIOD_S, Broker
from dorsimeter.pipeline import Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.store import Store
from dorsimeter.store.recorder import SessionRecorder
from tests.clinic.conftest import CLINIC, password_file
from tests.clinic.test_end_to_end import publish_argv
from tests.conftest import simulate

RATE_HZ = 100.0


def user_broker(svc, user: str) -> Broker:
    return Broker("127.0.0.1", svc.broker.port, Path(svc.broker.tls["ca"]), user,
                  password_file(svc, user).read_text().strip())


async def test_the_live_angle_is_the_stored_one_at_10_hz(services, procs, tmp_path):
    home = tmp_path / "r1"
    Store.open(home).close()
    live: list[dict] = []
    async with user_broker(services, "team").client("t-live") as sub:
        await sub.subscribe(f"dorsimeter/{CLINIC}/r1/live", qos=0)
        await sub.subscribe(f"dorsimeter/{CLINIC}/r1/presence", qos=1)
        pub = procs(publish_argv(services, "r1", home, "--poll-s", "0.2"), tmp_path / "pub.log")

        async def until(cond) -> None:
            async for m in sub.messages:
                msg = json.loads(bytes(m.payload))  # type: ignore[arg-type]
                if m.topic.value.endswith("/live"):
                    live.append(msg)
                if cond(m.topic.value, msg):
                    return
        # the publisher is connected once its presence says online (retained: maybe an old
        # one first, so wait for a fresh "since")
        await asyncio.wait_for(until(lambda t, m: t.endswith("/presence") and m["online"]
                                     and pub.p.poll() is None), 120)
        store = Store.open(home)
        rec = SessionRecorder(store, "record", athlete="Live", sensor="sim", sensor_kind="sim")
        results = SessionResults()
        batch = simulate(12.0, rate_hz=RATE_HZ, side="left", seed=4)
        push = rec.tap(Pipeline(RATE_HZ, side="left").push, results)

        def feed() -> None:
            for i in range(0, len(batch), 25):
                push(batch.slice(i, i + 25))
        await asyncio.to_thread(feed)
        t_end = float(store.db.execute("SELECT max(t_s) FROM samples WHERE session_id = ?",
                                       (rec.session_id,)).fetchone()[0])
        await asyncio.wait_for(until(lambda t, m: t.endswith("/live") and m["t_s"]
                                     >= t_end - LIVE_PERIOD_S), 120)
        stored = dict(((side, t), a) for side, t, a in store.db.execute(
            "SELECT side, t_s, tibia_angle_deg FROM samples WHERE session_id = ?",
            (rec.session_id,)))
        s_uuid = store.db.execute("SELECT uuid FROM sessions WHERE id = ?",
                                  (rec.session_id,)).fetchone()[0]
        rec.finish(results)
        store.close()
    mine = [m for m in live if m["session_uuid"] == s_uuid]
    assert mine, live[:3]
    for m in mine:  # each value is the stored sample's, exactly
        assert stored[(m["side"], m["t_s"])] == m["angle_deg"]
    t = [m["t_s"] for m in mine]
    gaps = [b - a for a, b in zip(t, t[1:], strict=False)]
    # one per 0.1 s of device time: never closer, and none skipped (at most a sample late)
    assert min(gaps) >= LIVE_PERIOD_S - 1e-9
    assert max(gaps) <= LIVE_PERIOD_S + 1.0 / RATE_HZ + 1e-6
    span = t[-1] - t[0]
    assert abs(len(mine) - span / LIVE_PERIOD_S) <= 0.1 * span / LIVE_PERIOD_S + 1
    assert "name" not in json.dumps(mine)  # the live topic carries no athlete at all


async def test_another_rig_cannot_read_the_live_angle(services):
    got = []
    async with user_broker(services, "r2").client("t-live-r2") as r2:
        await r2.subscribe(f"dorsimeter/{CLINIC}/r1/live", qos=0)
        await r2.subscribe(f"dorsimeter/{CLINIC}/r2/live-marker", qos=1)
        async with user_broker(services, "r1").client("t-live-r1") as r1:
            await r1.publish(f"dorsimeter/{CLINIC}/r1/live", b'{"t_s": 1}', qos=1)
        async with user_broker(services, "r2").client("t-live-r2b") as me:
            await me.publish(f"dorsimeter/{CLINIC}/r2/live-marker", b"m", qos=1)

        async def until_marker() -> None:
            async for m in r2.messages:
                got.append(m.topic.value)
                if m.topic.value.endswith("/live-marker"):
                    return
        await asyncio.wait_for(until_marker(), 120)
    assert got == [f"dorsimeter/{CLINIC}/r2/live-marker"], got
