"""The rig's outbox: what a rig will publish, in its SQLite history, in order.

A finished session becomes one message (its athlete, summary and trials, each with its stable
UUID); a session changed since (re-analysed, renamed) is enqueued again, and the ingest's upsert
makes the newest win. Messages leave the outbox only when the broker has acknowledged them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from dorsimeter.store import Store
from dorsimeter.store.db import file_sha256, utc_iso
from dorsimeter.store.summary import asymmetry, geometry, summarize

#: the message format's version (the ingest refuses others)
FORMAT = 1
SESSION_TOPIC = "session"
#: a session's raw CSV: the outbox keeps a reference (path, SHA-256 at the session's end), the
#: publisher reads the file when it sends it and sends it only if it is still that file
RAW_TOPIC = "raw"


@dataclass(frozen=True)
class Pending:
    seq: int
    topic: str  # below dorsimeter/<clinic>/<rig>/
    payload: str


def session_message(store: Store, session_id: int, pseudonymous: bool,
                    group: str | None = None) -> dict:
    """A finished session as the rig publishes it. No athlete name when the rig or the athlete
    is pseudonymous: the athlete is then known by its UUID only. ``group``: the squad the
    rig's athletes are in (``publish --group``), for the coach page's filter."""
    db = store.db
    info = store.session(session_id)
    s_uuid, a_id = db.execute("SELECT uuid, athlete_id FROM sessions WHERE id = ?",
                              (session_id,)).fetchone()
    athlete = None
    geo = None
    if a_id is not None:
        a_uuid, name, pseudo, tibia_m, foot_m = db.execute(
            "SELECT uuid, name, pseudonymous, tibia_length_m, foot_length_m FROM athletes "
            "WHERE id = ?", (a_id,)).fetchone()
        hide = pseudonymous or bool(pseudo)
        athlete = {"uuid": a_uuid, "name": None if hide else name, "pseudonymous": hide,
                   "group": group}
        geo = geometry(tibia_m, foot_m)
    trials = store.trials(session_id)
    uuids = dict(db.execute("SELECT id, uuid FROM trials WHERE session_id = ?", (session_id,)))
    sides = summarize(trials)
    asym = asymmetry(sides, athlete=geo)
    return {
        "format": FORMAT, "session_uuid": s_uuid, "athlete": athlete, "kind": info.kind,
        "start_utc": info.start_utc, "end_utc": info.end_utc,
        "placement_cm": info.placement_cm,
        "summary": {side: {"best_deg": s.best_valid_deg, "mean_best3_deg": s.mean_best3_deg,
                           "n_trials": s.n_trials, "n_scored": s.n_scored}
                    for side, s in sides.items()},
        "asymmetry": None if asym is None else {
            "diff_deg": asym.diff_deg, "percent": asym.percent, "band": asym.band,
            "beyond_mdc": asym.beyond_mdc, "mdc_deg": asym.mdc_deg},
        "trials": [{"uuid": uuids[t.id], "side": t.side, "exercise": t.exercise,
                    "set_no": t.set_no, "rep": t.rep, "angle_deg": t.angle_deg,
                    "peak_deg": t.peak_deg, "valid": t.valid, "scored": t.scored,
                    "counts": t.counts, "hold_s": t.hold_s}
                   for t in trials],
    }


def raw_refs(store: Store, session_id: int) -> list[dict]:
    """The session's raw CSVs that are still the files it recorded (their SHA-256 now is the
    one stored when the session ended); a file replaced, changed or gone is not sent."""
    s_uuid = store.db.execute("SELECT uuid FROM sessions WHERE id = ?",
                              (session_id,)).fetchone()[0]
    return [{"session_uuid": s_uuid, "name": Path(p).name, "sha256": h, "path": p}
            for p, h in sorted(store.raw_identity(session_id).items()) if file_sha256(p) == h]


def raw_payload(ref_json: str) -> bytes | None:
    """What the publisher sends for a raw reference: a JSON header line (session, file name,
    SHA-256, size; not the rig's path) and the file's bytes; None if the file is no longer the
    one recorded (checked on the bytes sent, not only when it was enqueued)."""
    ref = json.loads(ref_json)
    try:
        data = Path(ref["path"]).read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != ref["sha256"]:
        return None
    header = {"format": FORMAT, "session_uuid": ref["session_uuid"], "name": ref["name"],
              "sha256": ref["sha256"], "size_bytes": len(data)}
    return _encode(header).encode() + b"\n" + data


def _encode(message: dict) -> str:
    return json.dumps(message, sort_keys=True, ensure_ascii=False, allow_nan=False)


def source_digests(store: Store, pseudonymous: bool, group: str | None, raw: bool = False
                   ) -> dict[int, str]:
    """Per finished session, a digest of every row its message is built from (the session,
    its athlete, its trials) and of how it is sent, read in two queries without building any
    message. In the order the sessions started."""
    db = store.db
    how = repr((pseudonymous, group, raw)).encode()
    rows: dict[int, list[str]] = {}
    for row in db.execute("SELECT s.*, a.* FROM sessions s LEFT JOIN athletes a ON "
                          "a.id = s.athlete_id WHERE s.ended = 1 ORDER BY s.start_utc, s.id"):
        rows[row[0]] = [repr(row)]
    for row in db.execute("SELECT t.session_id, t.* FROM trials t JOIN sessions s ON "
                          "s.id = t.session_id WHERE s.ended = 1 ORDER BY t.session_id, t.id"):
        if row[0] in rows:
            rows[row[0]].append(repr(row))
    return {sid: hashlib.sha256(how + "\n".join(r).encode()).hexdigest()
            for sid, r in rows.items()}


def enqueue(store: Store, pseudonymous: bool, group: str | None = None,
            built: dict[int, str] | None = None, raw: bool = False) -> int:
    """Put every finished session not yet enqueued, or changed since, into the outbox (in the
    order the sessions started); returns how many were added. One transaction per session, so
    a crash never leaves a session marked enqueued without its message.

    ``built``: the publisher's memory across polls, session id -> the digest of its rows when
    its message was last built (``source_digests``); a session whose rows are unchanged is not
    built again, so a poll of an unchanged history builds no message at all. ``raw``: each
    session's verified raw CSVs follow its message (``raw_refs``)."""
    db = store.db
    sources = source_digests(store, pseudonymous, group, raw)
    added = 0
    for sid, source in sources.items():
        if built is not None:
            if built.get(sid) == source:
                continue
            built[sid] = source
        payload = _encode(session_message(store, sid, pseudonymous, group))
        refs = [_encode(ref) for ref in raw_refs(store, sid)] if raw else []
        # the digest of everything enqueued for the session (its raw files too: turning raw
        # upload on sends the sessions sent without)
        digest = hashlib.sha256("\n".join([payload, *refs]).encode()).hexdigest()
        s_uuid = db.execute("SELECT uuid FROM sessions WHERE id = ?", (sid,)).fetchone()[0]
        row = db.execute("SELECT payload_sha256 FROM outbox_sessions WHERE session_uuid = ?",
                         (s_uuid,)).fetchone()
        if row is not None and row[0] == digest:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("INSERT INTO outbox (topic, payload, created_utc) VALUES (?, ?, ?)",
                       (SESSION_TOPIC, payload, utc_iso()))
            for ref in refs:
                db.execute("INSERT INTO outbox (topic, payload, created_utc) VALUES (?, ?, ?)",
                           (RAW_TOPIC, ref, utc_iso()))
            db.execute("INSERT INTO outbox_sessions (session_uuid, payload_sha256) "
                       "VALUES (?, ?) ON CONFLICT (session_uuid) DO UPDATE SET "
                       "payload_sha256 = excluded.payload_sha256", (s_uuid, digest))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        added += 1
    return added


def pending(store: Store, limit: int = 100) -> list[Pending]:
    """The oldest unsent messages, in order."""
    return [Pending(*r) for r in store.db.execute(
        "SELECT seq, topic, payload FROM outbox WHERE sent_utc IS NULL ORDER BY seq LIMIT ?",
        (limit,))]


def mark_sent(store: Store, seq: int) -> None:
    store.db.execute("UPDATE outbox SET sent_utc = ? WHERE seq = ?", (utc_iso(), seq))


def unsent_count(store: Store) -> int:
    return int(store.db.execute("SELECT count(*) FROM outbox WHERE sent_utc IS NULL"
                                ).fetchone()[0])
