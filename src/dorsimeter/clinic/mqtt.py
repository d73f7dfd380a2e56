"""The rig's publisher: drains the outbox to the clinic's broker with aiomqtt at QoS 1, one
message at a time in outbox order (each waits for the broker's PUBACK before it is marked sent),
keeps a retained presence topic (a last will says offline when the rig drops) and sends a
decimated live angle (about 10 Hz, QoS 0) while the rig records. The broker
being down is normal: the outbox keeps everything and it is sent on reconnect."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from dorsimeter.clinic.outbox import RAW_TOPIC, enqueue, mark_sent, pending, raw_payload
from dorsimeter.errors import DorsimeterError
from dorsimeter.store import Store
from dorsimeter.store.db import utc_iso

LOG = logging.getLogger("dorsimeter.clinic")
#: CONNACK codes that retrying cannot fix: bad credentials, not authorised (MQTT 3.1.1's and
#: the v5 reason codes paho reports them as)
REFUSED = {4, 5, 134, 135}


@dataclass(frozen=True)
class Broker:
    """Where the broker is and how to log in to it (TLS, trusting the clinic's CA only)."""

    host: str
    port: int
    ca_path: Path
    username: str
    password: str

    def tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_path))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def client(self, identifier: str, **kw) -> aiomqtt.Client:
        return aiomqtt.Client(self.host, self.port, username=self.username,
                              password=self.password, identifier=identifier,
                              tls_context=self.tls_context(), timeout=15, keepalive=20, **kw)


def topic_base(clinic: str, rig: str) -> str:
    return f"dorsimeter/{clinic}/{rig}"


def refused(e: aiomqtt.MqttError) -> bool:
    """The broker refused our credentials (not a network fault)."""
    return isinstance(e, MqttConnectError) and getattr(e.rc, "value", e.rc) in REFUSED


def scrub_names(payload: str) -> str:
    """A pseudonymous rig sends no athlete name, even in a message enqueued before it was."""
    msg = json.loads(payload)
    if msg.get("athlete"):
        msg["athlete"]["name"] = None
        msg["athlete"]["pseudonymous"] = True
    return json.dumps(msg, sort_keys=True, ensure_ascii=False)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


#: the live angle's rate: about 10 Hz of device time, whatever the sensor's rate
LIVE_PERIOD_S = 0.1


class LiveAngle:
    """The tibia angle of the sessions being recorded (not yet ended), decimated to one sample
    per ``LIVE_PERIOD_S`` of device time per leg, read from the samples ``record`` stores as it
    goes. Starts from what is stored now: a live view, not a replay."""

    def __init__(self, store: Store, period_s: float = LIVE_PERIOD_S) -> None:
        self.store = store
        self.period_s = period_s
        self.last_rowid = int(store.db.execute("SELECT coalesce(max(rowid), 0) FROM samples"
                                               ).fetchone()[0])
        self._last_t: dict[tuple[int, str], float] = {}

    def poll(self) -> list[dict]:
        rows = self.store.db.execute(
            "SELECT m.rowid, s.uuid, m.session_id, m.side, m.t_s, m.tibia_angle_deg "
            "FROM samples m JOIN sessions s ON s.id = m.session_id "
            "WHERE m.rowid > ? AND s.ended = 0 ORDER BY m.rowid", (self.last_rowid,)).fetchall()
        out = []
        for rowid, s_uuid, sid, side, t_s, angle_deg in rows:
            self.last_rowid = max(self.last_rowid, rowid)
            last = self._last_t.get((sid, side))
            if last is not None and t_s - last < self.period_s - 1e-9:
                continue
            self._last_t[(sid, side)] = t_s
            out.append({"session_uuid": s_uuid, "side": side, "t_s": t_s,
                        "angle_deg": angle_deg})
        return out


async def _live(client: aiomqtt.Client, base: str, live: LiveAngle, stop: asyncio.Event
                ) -> None:
    """Publish the live angle at QoS 0 (a late sample is worth nothing: never queued)."""
    while not stop.is_set():
        for sample in live.poll():
            await client.publish(f"{base}/live", json.dumps(sample), qos=0)
        await _wait(stop, LIVE_PERIOD_S)


async def publish(store: Store, broker: Broker, clinic: str, rig: str, pseudonymous: bool,
                  stop: asyncio.Event, poll_s: float = 0.5, retry_s: float = 1.0,
                  on_sent: Callable[[int], None] | None = None, group: str | None = None,
                  raw: bool = False) -> int:
    """Publish until ``stop`` is set; returns how many messages the broker acknowledged.
    ``group``: the squad this rig's athletes are in, sent with each athlete; ``raw``: each
    session's verified raw CSVs are uploaded after it."""
    base = topic_base(clinic, rig)
    offline = json.dumps({"online": False})
    will = aiomqtt.Will(f"{base}/presence", offline, qos=1, retain=True)
    sent = 0
    built: dict[int, str] = {}  # each session's message built once, again only if it changed
    while not stop.is_set():
        live_task: asyncio.Future | None = None
        try:
            async with broker.client(f"rig-{clinic}-{rig}", will=will) as client:
                await client.publish(f"{base}/presence", json.dumps(
                    {"online": True, "since_utc": utc_iso()}), qos=1, retain=True)
                # the live angle from what is stored now, on every (re)connect: what was
                # recorded while the broker was away is stale for a live view (it is in the
                # session's message)
                live = LiveAngle(store)
                live_task = asyncio.ensure_future(_live(client, base, live, stop))
                while not stop.is_set():
                    if live_task.done():
                        live_task.result()  # its error (the connection lost) ends this one

                    enqueue(store, pseudonymous, group, built, raw)
                    for msg in pending(store):
                        payload: str | bytes | None = msg.payload
                        if msg.topic == RAW_TOPIC:
                            payload = raw_payload(msg.payload)
                            if payload is None:  # changed since: not the file recorded
                                LOG.warning("raw file of outbox message %d changed since it "
                                            "was recorded: not sent (kept on the rig)", msg.seq)
                        elif pseudonymous:
                            payload = scrub_names(msg.payload)
                        if payload is not None:
                            await client.publish(f"{base}/{msg.topic}", payload, qos=1)
                        mark_sent(store, msg.seq)  # after the PUBACK: resent if we die first
                        sent += 1
                        if on_sent is not None:
                            on_sent(msg.seq)
                    await _wait(stop, poll_s)
                await live_task
                await client.publish(f"{base}/presence", offline, qos=1, retain=True)
        except aiomqtt.MqttError as e:
            if live_task is not None:
                if not live_task.done():
                    live_task.cancel()
                elif not live_task.cancelled():
                    live_task.exception()  # the same lost connection: retrieved, not reported
            if refused(e):
                raise DorsimeterError(f"broker {broker.host}:{broker.port} refused rig "
                                      f"{rig!r}: {e}") from None
            LOG.warning("broker %s:%s: %s; retrying in %.0f s", broker.host, broker.port, e,
                        retry_s)
            # keep queueing what the rig records meanwhile
            enqueue(store, pseudonymous, group, built, raw)
            await _wait(stop, retry_s)
    return sent
