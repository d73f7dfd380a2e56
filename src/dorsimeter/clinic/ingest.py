"""The ingest: subscribes to the clinic's topics and upserts each message into PostgreSQL with
``ON CONFLICT`` on the UUIDs, so a message delivered twice is the same rows (never a duplicate).
A message is acknowledged to the broker only after its transaction commits (paho's manual ack
under aiomqtt): killed in between, the broker delivers it again (never a loss)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable

import aiomqtt
import psycopg

from dorsimeter.clinic.mqtt import Broker, refused
from dorsimeter.clinic.outbox import FORMAT
from dorsimeter.clinic.pgschema import check
from dorsimeter.errors import DorsimeterError

LOG = logging.getLogger("dorsimeter.clinic")


class BadMessage(ValueError):
    """A message the ingest cannot store (logged and dropped: resending will not fix it)."""


def _topic_parts(topic: str, clinic: str) -> tuple[str, str]:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "dorsimeter" or parts[1] != clinic:
        raise BadMessage(f"unexpected topic {topic!r}")
    return parts[2], parts[3]


def _session(cur: psycopg.Cursor, clinic: str, rig: str, msg: dict) -> None:
    if msg.get("format") != FORMAT:
        raise BadMessage(f"format {msg.get('format')!r}, expected {FORMAT}")
    athlete = msg.get("athlete")
    if athlete is not None:
        cur.execute(
            "INSERT INTO athletes (uuid, clinic, rig, name, pseudonymous, athlete_group, "
            "updated_utc) VALUES (%s, %s, %s, %s, %s, %s, now()) ON CONFLICT (uuid) DO UPDATE "
            "SET name = EXCLUDED.name, pseudonymous = EXCLUDED.pseudonymous, "
            "athlete_group = EXCLUDED.athlete_group, updated_utc = EXCLUDED.updated_utc",
            (athlete["uuid"], clinic, rig, athlete.get("name"), bool(athlete["pseudonymous"]),
             athlete.get("group")))
    summary = msg.get("summary") or {}
    left, right = summary.get("left") or {}, summary.get("right") or {}
    asym = msg.get("asymmetry") or {}
    cur.execute(
        "INSERT INTO sessions (uuid, athlete_uuid, clinic, rig, kind, start_utc, end_utc, "
        "placement_cm, left_best_deg, left_mean_best3_deg, right_best_deg, right_mean_best3_deg, "
        "asym_diff_deg, asym_percent, asym_band, asym_beyond_mdc) VALUES (%s, %s, %s, %s, %s, "
        "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (uuid) DO UPDATE SET "
        "athlete_uuid = EXCLUDED.athlete_uuid, kind = EXCLUDED.kind, "
        "start_utc = EXCLUDED.start_utc, end_utc = EXCLUDED.end_utc, "
        "placement_cm = EXCLUDED.placement_cm, left_best_deg = EXCLUDED.left_best_deg, "
        "left_mean_best3_deg = EXCLUDED.left_mean_best3_deg, "
        "right_best_deg = EXCLUDED.right_best_deg, "
        "right_mean_best3_deg = EXCLUDED.right_mean_best3_deg, "
        "asym_diff_deg = EXCLUDED.asym_diff_deg, asym_percent = EXCLUDED.asym_percent, "
        "asym_band = EXCLUDED.asym_band, asym_beyond_mdc = EXCLUDED.asym_beyond_mdc, "
        "received_utc = now()",
        (msg["session_uuid"], athlete["uuid"] if athlete else None, clinic, rig, msg["kind"],
         msg["start_utc"], msg.get("end_utc"), msg.get("placement_cm"), left.get("best_deg"),
         left.get("mean_best3_deg"), right.get("best_deg"), right.get("mean_best3_deg"),
         asym.get("diff_deg"), asym.get("percent"), asym.get("band"), asym.get("beyond_mdc")))
    uuids = []
    for t in msg.get("trials", []):
        uuids.append(t["uuid"])
        cur.execute(
            "INSERT INTO trials (uuid, session_uuid, side, exercise, set_no, rep, angle_deg, "
            "peak_deg, valid, scored, counts, hold_s, superseded) VALUES (%s, %s, %s, %s, %s, "
            "%s, %s, %s, %s, %s, %s, %s, false) ON CONFLICT (uuid) DO UPDATE SET "
            "side = EXCLUDED.side, exercise = EXCLUDED.exercise, set_no = EXCLUDED.set_no, "
            "rep = EXCLUDED.rep, angle_deg = EXCLUDED.angle_deg, peak_deg = EXCLUDED.peak_deg, "
            "valid = EXCLUDED.valid, scored = EXCLUDED.scored, counts = EXCLUDED.counts, "
            "hold_s = EXCLUDED.hold_s, superseded = false",
            (t["uuid"], msg["session_uuid"], t["side"], t["exercise"], t.get("set_no"),
             t.get("rep"), t["angle_deg"], t.get("peak_deg"), t.get("valid"), t.get("scored"),
             bool(t["counts"]), t.get("hold_s")))
    # trials the session no longer has (re-analysed on the rig): kept, marked, not shown
    cur.execute("UPDATE trials SET superseded = true WHERE session_uuid = %s "
                "AND NOT (uuid = ANY(%s::uuid[])) AND NOT superseded",
                (msg["session_uuid"], uuids))


def _raw(conn: psycopg.Connection, topic: str, payload: bytes) -> None:
    """A raw CSV: stored only if its bytes have the SHA-256 its header (the rig's record of
    the file) says."""
    head, sep, data = payload.partition(b"\n")
    try:
        meta = json.loads(head)
        s_uuid, name, want = meta["session_uuid"], str(meta["name"]), str(meta["sha256"])
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise BadMessage(f"{topic}: bad raw-file header ({e})") from None
    if not sep or meta.get("format") != FORMAT:
        raise BadMessage(f"{topic}: bad raw-file message (format {meta.get('format')!r})")
    got = hashlib.sha256(data).hexdigest()
    if got != want:
        raise BadMessage(f"{topic}: raw file {name!r} of session {s_uuid}: SHA-256 {got}, "
                         f"the rig recorded {want} (not stored)")
    with conn.transaction():
        conn.execute("INSERT INTO raw_files (session_uuid, name, sha256, size_bytes, data, "
                     "received_utc) VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT "
                     "(session_uuid, name) DO UPDATE SET sha256 = EXCLUDED.sha256, size_bytes "
                     "= EXCLUDED.size_bytes, data = EXCLUDED.data, received_utc = now()",
                     (s_uuid, name, want, len(data), data))


def apply(conn: psycopg.Connection, clinic: str, topic: str, payload: bytes) -> str:
    """Store one message in one transaction; returns what it was (``session``, ``presence``,
    ``raw``)."""
    rig, kind = _topic_parts(topic, clinic)
    if kind == "raw":
        _raw(conn, topic, payload)
        return kind
    try:
        msg = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadMessage(f"{topic}: not JSON ({e})") from None
    with conn.transaction(), conn.cursor() as cur:
        if kind == "session":
            try:
                _session(cur, clinic, rig, msg)
            except (KeyError, TypeError) as e:
                raise BadMessage(f"{topic}: missing or bad field {e}") from None
        elif kind == "presence":
            cur.execute("INSERT INTO rigs (clinic, rig, online, seen_utc) VALUES (%s, %s, %s, "
                        "now()) ON CONFLICT (clinic, rig) DO UPDATE SET online = "
                        "EXCLUDED.online, seen_utc = EXCLUDED.seen_utc",
                        (clinic, rig, bool(msg.get("online"))))
        else:
            raise BadMessage(f"{topic}: unknown message kind {kind!r}")
    return kind


def manual_ack(client: aiomqtt.Client) -> Callable[[aiomqtt.Message], None]:
    """Turn off acknowledgement on receipt and return the function that acknowledges a message
    (after its commit). aiomqtt 2.5.1 (the newest 2.x, installed here; pyproject allows
    >=2.3,<3) has no public API for it: its ``Client`` always lets paho acknowledge on receipt.
    So this is the one place that reaches into its private paho client (``_client``), for
    paho-mqtt 2.x's public ``manual_ack_set`` and ``ack``."""
    paho = client._client
    paho.manual_ack_set(True)

    def ack(message: aiomqtt.Message) -> None:
        paho.ack(message.mid, message.qos)
    return ack


async def ingest(broker: Broker, dsn: str, clinic: str, stop: asyncio.Event,
                 retry_s: float = 1.0, on_applied: Callable[[str, str], None] | None = None,
                 on_ready: Callable[[], None] | None = None) -> int:
    """Run until ``stop``; returns how many messages were stored. A persistent MQTT session
    (fixed client id, clean_session off): what arrives while the ingest is down waits at the
    broker."""
    stored = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        check(conn)
        while not stop.is_set():
            client = broker.client(f"ingest-{clinic}", clean_session=False)
            ack = manual_ack(client)
            try:
                async with client:
                    await client.subscribe(f"dorsimeter/{clinic}/+/session", qos=1)
                    await client.subscribe(f"dorsimeter/{clinic}/+/presence", qos=1)
                    await client.subscribe(f"dorsimeter/{clinic}/+/raw", qos=1)
                    if on_ready is not None:
                        on_ready()
                    stopper = asyncio.ensure_future(stop.wait())
                    while not stop.is_set():
                        nxt = asyncio.ensure_future(anext(client.messages))
                        await asyncio.wait({nxt, stopper}, return_when=asyncio.FIRST_COMPLETED)
                        if not nxt.done():
                            nxt.cancel()
                            break
                        message = nxt.result()
                        topic = message.topic.value
                        try:
                            kind = apply(conn, clinic, topic, bytes(message.payload or b""))
                            stored += 1
                            if on_applied is not None:
                                on_applied(topic, kind)
                        except BadMessage as e:
                            LOG.warning("dropped: %s", e)
                        ack(message)
            except aiomqtt.MqttError as e:
                if refused(e):
                    raise DorsimeterError(f"broker {broker.host}:{broker.port} refused the "
                                          f"ingest: {e}") from None
                LOG.warning("broker %s:%s: %s; retrying in %.0f s", broker.host, broker.port,
                            e, retry_s)
                try:
                    await asyncio.wait_for(stop.wait(), retry_s)
                except TimeoutError:
                    pass
    return stored
