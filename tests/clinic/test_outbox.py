"""The rig side without a broker: stable UUIDs, the outbox's order and idempotence, and no
athlete name from a pseudonymous rig (real SQLite history, sessions stored as `record` does)."""

from __future__ import annotations

import json
import re
import sqlite3

from dorsimeter.clinic.mqtt import scrub_names
from dorsimeter.clinic.outbox import enqueue, mark_sent, pending, session_message, unsent_count
from dorsimeter.store import Store
from dorsimeter.store.summary import summarize
from tests.export.sessions import stored_session

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_every_row_gets_its_own_stable_uuid(tmp_path):
    with Store.open(tmp_path) as store:
        a = stored_session(store, 20.0, athlete="Ana", seeds=(1, 2))
        b = stored_session(store, 20.0, athlete="Ben", seeds=(3, 4))
        db = store.db
        for table in ("athletes", "sessions", "trials"):
            ids = [r[0] for r in db.execute(f"SELECT uuid FROM {table}")]
            assert ids and all(UUID4.match(u) for u in ids), ids
            assert len(set(ids)) == len(ids)
        before = dict(db.execute("SELECT id, uuid FROM trials"))
        first = session_message(store, a, pseudonymous=False)
    with Store.open(tmp_path) as store:  # reopened: the same identities
        assert dict(store.db.execute("SELECT id, uuid FROM trials")) == before
        again = session_message(store, a, pseudonymous=False)
        assert again == first
        assert session_message(store, b, False)["session_uuid"] != first["session_uuid"]


def test_a_migrated_history_gets_uuids_for_its_old_rows(tmp_path):
    path = tmp_path / "history.sqlite3"
    with Store(path) as store:
        stored_session(store, 20.0, athlete="Ana", seeds=(1, 2))
    db = sqlite3.connect(path)  # as a version-6 file: the columns are dropped, then migrated
    n = db.execute("SELECT count(*) FROM trials").fetchone()[0]
    for t in ("athletes", "sessions", "trials"):
        db.execute(f"DROP TRIGGER {t}_uuid")
        db.execute(f"DROP INDEX {t}_uuid")
        db.execute(f"ALTER TABLE {t} DROP COLUMN uuid")
    db.execute("DROP TABLE outbox")
    db.execute("DROP TABLE outbox_sessions")
    db.execute("PRAGMA user_version = 6")
    db.commit()
    db.close()
    with Store(path) as store:
        ids = [r[0] for r in store.db.execute("SELECT uuid FROM trials")]
        assert len(ids) == n and len(set(ids)) == n and all(UUID4.match(u) for u in ids)


def test_the_outbox_holds_each_session_once_until_it_changes(tmp_path):
    with Store.open(tmp_path) as store:
        sids = [stored_session(store, 20.0, athlete="Ana", seeds=(s, s + 1)) for s in (1, 3)]
        assert enqueue(store, False) == 2
        assert enqueue(store, False) == 0  # unchanged: nothing new
        msgs = pending(store)
        assert [json.loads(m.payload)["session_uuid"] for m in msgs] == [
            session_message(store, s, False)["session_uuid"] for s in sids]  # in order
        mark_sent(store, msgs[0].seq)
        assert unsent_count(store) == 1 and pending(store)[0].seq == msgs[1].seq
        # a session changed on the rig (an athlete renamed) is sent again, whole
        store.set_session_athlete(sids[0], "Ana B")
        assert enqueue(store, False) == 1
        last = json.loads(pending(store)[-1].payload)
        assert last["athlete"]["name"] == "Ana B"
        # the summary sent is the rig's own (store.summary), trial by trial
        sides = summarize(store.trials(sids[0]))
        assert last["summary"]["left"]["best_deg"] == sides["left"].best_valid_deg
        assert len(last["trials"]) == len(store.trials(sids[0]))


def test_a_pseudonymous_rig_sends_no_name(tmp_path):
    with Store.open(tmp_path) as store:
        stored_session(store, 20.0, athlete="Zoë Secret", seeds=(1, 2))
        enqueue(store, pseudonymous=False)  # queued before the rig was made pseudonymous
        queued = pending(store)[0].payload
        assert "Zoë Secret" in queued
        assert "Zoë Secret" not in scrub_names(queued)
        assert json.loads(scrub_names(queued))["athlete"]["pseudonymous"] is True
        assert enqueue(store, pseudonymous=True) == 1
        assert "Zoë Secret" not in pending(store)[-1].payload


def test_a_poll_of_an_unchanged_history_builds_no_message(tmp_path):
    """With the publisher's memory (``built``), each session's message is built once; a
    session changed on the rig (a trial's angle re-analysed, in SQL) is built and sent again."""
    with Store.open(tmp_path) as store:
        sids = [stored_session(store, 20.0, athlete="Ana", seeds=(s, s + 1)) for s in (1, 3)]
        built: dict[int, str] = {}
        reads: list[str] = []
        store.db.set_trace_callback(reads.append)
        assert enqueue(store, False, built=built) == 2
        per_poll = len(reads)
        reads.clear()
        assert enqueue(store, False, built=built) == 0
        # the second poll ran only the two digest queries: no message built (no trials read
        # per session, no summary)
        assert len(reads) == 2 < per_poll and not any(
            "SELECT uuid, athlete_id FROM sessions" in q for q in reads), reads
        store.db.set_trace_callback(None)
        store.db.execute("UPDATE trials SET angle_deg = angle_deg + 1 WHERE id = "
                         "(SELECT min(id) FROM trials WHERE session_id = ?)", (sids[1],))
        store.db.commit()
        assert enqueue(store, False, built=built) == 1
        last = json.loads(pending(store)[-1].payload)
        assert last["session_uuid"] == session_message(store, sids[1], False)["session_uuid"]
        assert enqueue(store, False, built=built) == 0
        # and a group given to the rig later is a change too
        assert enqueue(store, False, "squad-a", built=built) == 2


def test_a_raw_file_changed_after_it_was_enqueued_is_not_sent(tmp_path):
    from dorsimeter.clinic.outbox import RAW_TOPIC, raw_payload
    from tests.export.sessions import two_leg_session

    with Store.open(tmp_path / "home") as store:
        two_leg_session(store, tmp_path / "raw")
        assert enqueue(store, False, raw=True) == 1
        refs = [m for m in pending(store) if m.topic == RAW_TOPIC]
    assert len(refs) == 2
    left = tmp_path / "raw" / "left.csv"
    sent = raw_payload(refs[0].payload)
    assert sent is not None and sent.endswith(left.read_bytes())
    assert str(left) not in sent.decode()  # the rig's path stays on the rig
    left.write_bytes(left.read_bytes()[:-10])
    assert raw_payload(refs[0].payload) is None
