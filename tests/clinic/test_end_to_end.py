"""Rigs to PostgreSQL through the real broker and the real ingest (`dorsimeter publish` and
`dorsimeter ingest` as processes), and the faults: the broker stopped mid-session and
restarted, the ingest SIGKILLed, a rig offline for a day's sessions. After each, every trial is
in PostgreSQL exactly once: the set of trial UUIDs of the rig's finished sessions equals the set
the database shows for them, each angle equal to the stored one."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from dorsimeter.pipeline import Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.store import Store
from dorsimeter.store.recorder import SessionRecorder
from dorsimeter.store.summary import summarize
from tests.clinic.conftest import Proc, broker_args, dsn_file, pg, rig_trials, run_cli, wait_for
from tests.conftest import simulate
from tests.export.sessions import stored_session

#: the issue's outage: the broker down for a minute (real time: the broker, the publisher's
#: reconnects and the ingest's all run on the machine's clock, none of it can be simulated)
OUTAGE_S = 60.0


def ingest_argv(svc) -> list[str]:
    return ["ingest", "--dsn-file", str(dsn_file(svc, "ingest")), *broker_args(svc, "ingest")]


def publish_argv(svc, rig: str, home: Path, *extra: str) -> list[str]:
    return ["publish", "--rig", rig, "--home", str(home), *broker_args(svc, rig), *extra]


def session_uuids(home: Path) -> list[str]:
    db = sqlite3.connect(home / "history.sqlite3")
    try:
        return [r[0] for r in db.execute("SELECT uuid FROM sessions WHERE ended = 1 "
                                         "ORDER BY start_utc, id")]
    finally:
        db.close()


def clinic_trials(svc, home: Path) -> list[tuple[str, float]]:
    """(trial UUID, angle) rows the database shows for this rig history's sessions."""
    with pg(svc) as conn:
        return [(str(u), a) for u, a in conn.execute(
            "SELECT uuid, angle_deg FROM trials WHERE NOT superseded AND "
            "session_uuid = ANY(%s::uuid[])", (session_uuids(home),))]


def all_in_once(svc, home: Path) -> bool:
    want = rig_trials(home)
    rows = clinic_trials(svc, home)
    return len(rows) == len(want) and dict(rows) == want


def assert_exactly_once(svc, home: Path) -> int:
    want = rig_trials(home)
    rows = clinic_trials(svc, home)
    assert len(rows) == len({u for u, _ in rows}) == len(want)  # none doubled, none lost
    assert dict(rows) == want  # each angle the stored one
    with pg(svc) as conn:  # and each session once, the rig's summary as stored
        n = conn.execute("SELECT count(*) FROM sessions WHERE uuid = ANY(%s::uuid[])",
                         (session_uuids(home),)).fetchone()[0]
    assert n == len(session_uuids(home))
    return len(rows)


def unsent(home: Path) -> int:
    db = sqlite3.connect(home / "history.sqlite3")
    try:
        return db.execute("SELECT count(*) FROM outbox WHERE sent_utc IS NULL").fetchone()[0]
    finally:
        db.close()


def record(home: Path, n: int, athlete: str = "Ana", seed: int = 1) -> None:
    with Store.open(home) as store:
        for k in range(n):
            stored_session(store, 20.0, athlete=athlete, seeds=(seed + 2 * k, seed + 2 * k + 1))


@pytest.fixture(scope="module")
def ingest(services, tmp_path_factory):
    """One ingest for the module's tests (a test that kills it starts it again)."""

    log = tmp_path_factory.mktemp("ingest") / "ingest.log"
    box = {"proc": Proc(ingest_argv(services), log)}
    try:  # ready once its persistent subscription exists (then the broker keeps its messages)
        wait_for(lambda: "subscribed to" in box["proc"].text() or box["proc"].p.poll()
                 is not None, "the ingest to subscribe")
        assert box["proc"].p.poll() is None, box["proc"].text()
        yield box
    finally:
        box["proc"].kill()


def test_three_rigs_reach_the_database_exactly_once(services, ingest, tmp_path):
    homes = {rig: tmp_path / rig for rig in ("r1", "r2", "r3")}
    for k, (rig, home) in enumerate(homes.items()):
        record(home, 2, athlete=f"Athlete {rig}", seed=10 * k + 1)
    for rig, home in homes.items():
        extra = ("--pseudonymous",) if rig == "r3" else ()
        out = run_cli(publish_argv(services, rig, home, "--once", *extra))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "sent 2 message(s), 0 waiting" in out.stdout
    for rig, home in homes.items():
        wait_for(lambda h=home: all_in_once(services, h), f"{rig}'s trials in PostgreSQL")
        assert assert_exactly_once(services, home) > 0
    with pg(services) as conn:
        names = dict(conn.execute("SELECT rig, name FROM athletes WHERE rig IN ('r1','r2','r3')"
                                  " AND clinic = 'c1'"))
        # the session summaries are the rig's own, exactly
        with Store.open(homes["r1"]) as store:
            for info in store.sessions():
                uuid = store.db.execute("SELECT uuid FROM sessions WHERE id = ?",
                                        (info.id,)).fetchone()[0]
                sides = summarize(store.trials(info.id))
                got = conn.execute("SELECT left_best_deg, right_best_deg FROM sessions "
                                   "WHERE uuid = %s", (uuid,)).fetchone()
                assert got == (sides["left"].best_valid_deg, sides["right"].best_valid_deg)
    assert names["r1"] == "Athlete r1"
    assert names["r3"] is None  # the pseudonymous rig sent no name
    # sent again (the outbox reset: as after a crash before marking): no duplicate
    db = sqlite3.connect(homes["r2"] / "history.sqlite3")
    db.execute("UPDATE outbox SET sent_utc = NULL")
    db.commit()
    db.close()
    before = clinic_trials(services, homes["r2"])
    out = run_cli(publish_argv(services, "r2", homes["r2"], "--once"))
    assert out.returncode == 0 and "sent 2 message(s)" in out.stdout, out.stderr
    marker = tmp_path / "marker"  # one more session after the resent ones: when it is in,
    record(marker, 1, athlete="Marker", seed=99)  # the resent ones were processed before it
    assert run_cli(publish_argv(services, "r2", marker, "--once")).returncode == 0
    wait_for(lambda: all_in_once(services, marker), "the marker session")
    assert sorted(clinic_trials(services, homes["r2"])) == sorted(before)
    assert_exactly_once(services, homes["r2"])


def test_broker_stopped_mid_session_then_restarted(services, ingest, procs, tmp_path):
    home = tmp_path / "r1"
    record(home, 1, seed=3)
    pub = procs(publish_argv(services, "r1", home, "--poll-s", "0.2"), tmp_path / "pub.log")
    wait_for(lambda: all_in_once(services, home), "the first session in PostgreSQL")
    services.broker.stop()
    try:
        record(home, 3, seed=5)  # recorded while the broker is down: kept in the outbox
        wait_for(lambda: unsent(home) == 3, "the publisher to queue the new sessions")
        assert pub.p.poll() is None, pub.text()  # it keeps trying, it does not give up
    finally:
        services.broker.restart()
    wait_for(lambda: all_in_once(services, home), "every session after the restart", 180)
    assert assert_exactly_once(services, home) > 0
    wait_for(lambda: unsent(home) == 0, "the outbox to empty")


def sent_count(home: Path) -> int:
    db = sqlite3.connect(home / "history.sqlite3")
    try:
        return db.execute("SELECT count(*) FROM outbox WHERE sent_utc IS NOT NULL"
                          ).fetchone()[0]
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_broker_down_60_s_in_the_middle_of_a_session(services, ingest, procs, tmp_path):
    """The issue's fault test: the broker stops for 60 s while a rig is recording (half the
    session stored, its live angle going out), the session ends and two more are recorded
    while it is down, then it restarts: the publisher and the ingest, both left running,
    reconnect by themselves and every trial is in PostgreSQL exactly once."""
    home = tmp_path / "r1"
    record(home, 1, seed=31)
    pub = procs(publish_argv(services, "r1", home, "--poll-s", "0.2"), tmp_path / "pub.log")
    wait_for(lambda: all_in_once(services, home), "the first session in PostgreSQL")
    batch = simulate(30.0, side="left", seed=33)
    half = len(batch) // 2
    with Store.open(home) as store:
        rec = SessionRecorder(store, "record", athlete="Ana", sensor="sim", sensor_kind="sim")
        results = SessionResults()
        push = rec.tap(Pipeline(100.0, side="left").push, results)
        for i in range(0, half, 25):
            push(batch.slice(i, min(i + 25, half)))
        services.broker.stop()
        down = time.monotonic()
        try:
            for i in range(half, len(batch), 25):
                push(batch.slice(i, i + 25))
            rec.finish(results)
            assert store.trials(rec.session_id), "the session scored no trial to check"
            record(home, 2, seed=35)  # and two more while the broker is down
            wait_for(lambda: unsent(home) == 3, "the publisher to queue the three sessions")
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))
            assert pub.p.poll() is None, pub.text()  # both kept trying through the minute
            assert ingest["proc"].p.poll() is None, ingest["proc"].text()
            assert "retrying" in pub.text() and "retrying" in ingest["proc"].text()
        finally:
            services.broker.restart()
    assert time.monotonic() - down >= OUTAGE_S
    wait_for(lambda: all_in_once(services, home), "every session after the outage", 180)
    assert assert_exactly_once(services, home) >= 3
    wait_for(lambda: unsent(home) == 0, "the outbox to empty")


def test_broker_sigkilled_then_restarted(services, ingest, procs, tmp_path):
    """The broker is SIGKILLed (a crash: no clean shutdown, no final save) twice: once holding
    three sessions it acknowledged while the ingest was stopped (the rig marked them sent:
    only the broker's saved state has them), once while a rig is publishing to a running
    ingest (what was in flight is resent from the outbox at QoS 1, the ingest's upsert makes a
    redelivery the same rows). After each restart every trial is in PostgreSQL once."""
    home = tmp_path / "r2"
    assert ingest["proc"].kill() == 0  # a clean stop: its persistent session stays
    record(home, 3, seed=41)
    out = run_cli(publish_argv(services, "r2", home, "--once"))
    assert out.returncode == 0 and "sent 3 message(s), 0 waiting" in out.stdout, out.stderr
    services.broker.kill()
    services.broker.restart()
    ingest["proc"] = Proc(ingest_argv(services), tmp_path / "ingest2.log")
    wait_for(lambda: all_in_once(services, home), "the sessions the killed broker held", 180)
    assert assert_exactly_once(services, home) > 0

    pub = procs(publish_argv(services, "r2", home, "--poll-s", "0.2"), tmp_path / "pub.log")
    before = sent_count(home)
    record(home, 4, seed=45)
    wait_for(lambda: sent_count(home) > before, "the publisher to be sending")
    services.broker.kill()
    services.broker.restart()
    wait_for(lambda: all_in_once(services, home), "every session after the second kill", 180)
    assert assert_exactly_once(services, home) > 0
    wait_for(lambda: unsent(home) == 0, "the outbox to empty")
    assert pub.p.poll() is None, pub.text()


def test_ingest_sigkilled_mid_message_and_restarted(services, ingest, tmp_path):
    """The ingest is killed while it holds a message it has not committed (held there by a
    table lock), then more are sent while it is dead: each is stored once after the restart.
    Were a message acknowledged on receipt rather than after its commit, the first would be
    lost."""
    import psycopg

    home = tmp_path / "r2"
    record(home, 1, seed=7)
    assert run_cli(publish_argv(services, "r2", home, "--once")).returncode == 0
    wait_for(lambda: all_in_once(services, home), "the first session")

    def ingest_waits_on_the_lock() -> bool:
        with psycopg.connect(services.db.admin_dsn(), autocommit=True) as admin:
            return bool(admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'ingest' AND "
                "wait_event_type = 'Lock'").fetchone()[0])

    with pg(services) as owner, owner.transaction():
        owner.execute("LOCK TABLE trials IN EXCLUSIVE MODE")  # inserts wait, reads go on
        record(home, 2, seed=9)
        out = run_cli(publish_argv(services, "r2", home, "--once"))
        assert out.returncode == 0 and "sent 2 message(s), 0 waiting" in out.stdout, out.stderr
        wait_for(ingest_waits_on_the_lock, "the ingest to be mid-message")
        assert ingest["proc"].kill(signal.SIGKILL) == -signal.SIGKILL
    assert not all_in_once(services, home)  # nothing of the held message was committed
    record(home, 3, seed=13)  # published while no ingest runs: the broker keeps them for it
    out = run_cli(publish_argv(services, "r2", home, "--once"))
    assert out.returncode == 0 and "sent 3 message(s), 0 waiting" in out.stdout, out.stderr
    ingest["proc"] = Proc(ingest_argv(services), tmp_path / "ingest2.log")
    wait_for(lambda: all_in_once(services, home), "the sessions sent while it was dead", 180)
    assert assert_exactly_once(services, home) > 0


def test_a_rig_offline_for_a_day_comes_back(services, ingest, tmp_path):
    home = tmp_path / "r3"
    record(home, 8, athlete="Squad 7", seed=21)  # a day of sessions, never published
    out = run_cli(publish_argv(services, "r3", home, "--once"))
    assert out.returncode == 0 and "sent 8 message(s), 0 waiting" in out.stdout, out.stderr
    wait_for(lambda: all_in_once(services, home), "the day's sessions", 180)
    assert assert_exactly_once(services, home) > 0
    with pg(services) as conn:  # stored in the order they were recorded
        order = [str(u) for (u,) in conn.execute(
            "SELECT uuid FROM sessions WHERE uuid = ANY(%s::uuid[]) ORDER BY received_utc",
            (session_uuids(home),))]
    assert order == session_uuids(home)


def test_raw_files_reach_the_clinic_byte_for_byte(services, ingest, tmp_path):
    """`publish --raw`: each session's raw CSVs reach PostgreSQL byte for byte, with the
    SHA-256 the rig recorded when the session ended; a raw file changed after its session is
    not sent (its session is); a raw message whose bytes do not match its hash is refused by
    the ingest and stores nothing."""
    import hashlib

    from dorsimeter.clinic.ingest import BadMessage, apply
    from tests.export.sessions import two_leg_session

    home = tmp_path / "r3"
    with Store.open(home) as store:
        two_leg_session(store, tmp_path / "raw-a", athlete="Raw A")
        two_leg_session(store, tmp_path / "raw-b", athlete="Raw B", seed=31)
    changed = tmp_path / "raw-b" / "left.csv"
    changed.write_bytes(changed.read_bytes() + b"0,0,0,0,0,0,0,0,left\n")  # edited since
    out = run_cli(publish_argv(services, "r3", home, "--once", "--raw"))
    assert out.returncode == 0 and "sent 5 message(s), 0 waiting" in out.stdout, out.stderr
    files = {str(p): p.read_bytes() for p in (tmp_path / "raw-a" / "left.csv",
                                               tmp_path / "raw-a" / "right.csv",
                                               tmp_path / "raw-b" / "right.csv")}
    uuids = session_uuids(home)

    def stored() -> dict[tuple[str, str], tuple[str, int, bytes]]:
        with pg(services) as conn:
            return {(str(u), n): (h, size, bytes(d)) for u, n, h, size, d in conn.execute(
                "SELECT session_uuid, name, sha256, size_bytes, data FROM raw_files WHERE "
                "session_uuid = ANY(%s::uuid[])", (uuids,))}
    got = wait_for(lambda: len(stored()) == 3 and stored(), "the three raw files")
    wait_for(lambda: all_in_once(services, home), "both sessions")
    want = {(uuids[0], "left.csv"): files[str(tmp_path / "raw-a" / "left.csv")],
            (uuids[0], "right.csv"): files[str(tmp_path / "raw-a" / "right.csv")],
            (uuids[1], "right.csv"): files[str(tmp_path / "raw-b" / "right.csv")]}
    assert set(got) == set(want)
    for key, data in want.items():
        assert got[key] == (hashlib.sha256(data).hexdigest(), len(data), data)
    # bytes that are not the ones hashed: refused, nothing stored
    header = json.dumps({"format": 1, "session_uuid": uuids[1], "name": "left.csv",
                         "sha256": hashlib.sha256(b"a,b\n").hexdigest(), "size_bytes": 4})
    with pg(services, "ingest") as conn, pytest.raises(BadMessage, match="SHA-256"):
        apply(conn, "c1", "dorsimeter/c1/r3/raw", header.encode() + b"\na,c\n")
    assert set(stored()) == set(want)
