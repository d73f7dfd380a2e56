"""The clinic's protections, each a test that fails if it is removed: a password per rig, the
ACL (a rig writes only its own topics), TLS only, PostgreSQL roles with least privilege."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from pathlib import Path

import aiomqtt
import psycopg
import pytest

from dorsimeter.clinic.mqtt import Broker, refused
from tests.clinic.conftest import CLINIC, password_file, pg


def rig_broker(svc, user: str, password: str | None = None) -> Broker:
    pw = password if password is not None else password_file(svc, user).read_text().strip()
    return Broker("127.0.0.1", svc.broker.port, Path(svc.broker.tls["ca"]), user, pw)


async def test_a_rig_with_the_wrong_password_is_refused(services):
    async with rig_broker(services, "r1").client("t-right"):
        pass  # the right password connects
    with pytest.raises(aiomqtt.MqttError) as e:
        async with rig_broker(services, "r1", "not-the-password").client("t-wrong"):
            pass
    assert refused(e.value), e.value
    with pytest.raises(aiomqtt.MqttError) as e:  # a user the broker does not know
        async with rig_broker(services, "r9", "x").client("t-unknown"):
            pass
    assert refused(e.value), e.value


async def test_a_rig_cannot_publish_into_another_rigs_topic(services):
    """r1 publishes into r2's topic, then into its own; the ingest's subscription sees the
    second only. Same client, same QoS: had the first been let through it would have arrived
    first, so when the marker arrives the refusal is settled (no waiting on a clock)."""
    got: list[tuple[str, bytes]] = []
    async with rig_broker(services, "ingest").client("t-acl-sub") as sub:
        await sub.subscribe(f"dorsimeter/{CLINIC}/#", qos=1)
        async with rig_broker(services, "r1").client("t-acl-pub") as r1:
            await r1.publish(f"dorsimeter/{CLINIC}/r2/session", b'{"forged": true}', qos=1)
            await r1.publish(f"dorsimeter/{CLINIC}/r1/acl-marker", b"marker", qos=1)

        async def until_marker() -> None:
            async for m in sub.messages:
                got.append((m.topic.value, bytes(m.payload)))  # type: ignore[arg-type]
                if m.topic.value.endswith("/acl-marker"):
                    return
        await asyncio.wait_for(until_marker(), 120)
    topics = [t for t, _ in got]
    assert f"dorsimeter/{CLINIC}/r1/acl-marker" in topics
    assert f"dorsimeter/{CLINIC}/r2/session" not in topics, got


async def test_a_rig_cannot_read_another_rigs_topics(services):
    async with rig_broker(services, "r2").client("t-read-r2") as r2:
        await r2.publish(f"dorsimeter/{CLINIC}/r2/presence",
                         json.dumps({"online": True}), qos=1, retain=True)
    got = []
    async with rig_broker(services, "r1").client("t-read-r1") as r1:
        await r1.subscribe(f"dorsimeter/{CLINIC}/#", qos=1)
        async with rig_broker(services, "r1").client("t-read-r1b") as me:
            await me.publish(f"dorsimeter/{CLINIC}/r1/read-marker", b"m", qos=1)

        async def until_marker() -> None:
            async for m in r1.messages:
                got.append(m.topic.value)
                if m.topic.value.endswith("/read-marker"):
                    return
        await asyncio.wait_for(until_marker(), 120)
    # the retained r2 presence would be delivered on subscribing, before the marker; only
    # r1's own topics (its retained presence, if another test left one) reach it
    assert got[-1] == f"dorsimeter/{CLINIC}/r1/read-marker"
    assert all(t.startswith(f"dorsimeter/{CLINIC}/r1/") for t in got), got


def test_the_broker_speaks_only_tls_with_the_clinic_ca(services):
    port = services.broker.port
    # plain MQTT CONNECT: the TLS listener gives no CONNACK (it drops the connection)
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(connect)
        try:
            reply = s.recv(4)
        except (ConnectionResetError, TimeoutError):
            reply = b""
    assert not reply.startswith(b"\x20"), reply  # 0x20: CONNACK
    # a client trusting only the system CAs refuses the broker's certificate
    ctx = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s, \
            pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(s, server_hostname="localhost")
    # with the clinic CA, the certificate checks out for the loopback name
    ctx = ssl.create_default_context(cafile=services.broker.tls["ca"])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s, \
            ctx.wrap_socket(s, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_postgres_roles_have_least_privilege(services):
    with pg(services, "team") as team:
        assert team.execute("SELECT count(*) FROM sessions").fetchone() is not None
        for sql in ("INSERT INTO rigs VALUES ('c1', 'x', true, now())",
                    "UPDATE rigs SET online = false", "DELETE FROM trials",
                    "SELECT count(*) FROM raw_files"):  # the page never needs the raw files
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                team.execute(sql)
    with pg(services, "ingest") as ingest:
        ingest.execute("INSERT INTO rigs VALUES ('c1', 'priv-test', true, now()) "
                       "ON CONFLICT (clinic, rig) DO UPDATE SET online = EXCLUDED.online")
        for sql in ("DELETE FROM trials", "DROP TABLE trials", "CREATE TABLE x (i int)",
                    "TRUNCATE sessions", "DELETE FROM raw_files"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ingest.execute(sql)
    # no password, no connection (scram over TCP)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={services.db.port} dbname=dorsimeter "
                        "user=team password=wrong", connect_timeout=30)


def test_publish_with_the_wrong_password_fails_in_one_line(services, tmp_path):
    from tests.clinic.conftest import broker_args, run_cli

    bad = tmp_path / "bad.password"
    bad.write_text("not-the-password\n")
    bad.chmod(0o600)
    args = broker_args(services, "r1")
    args[args.index("--password-file") + 1] = str(bad)
    out = run_cli(["publish", "--rig", "r1", "--home", str(tmp_path / "home"), "--once", *args])
    assert out.returncode == 0 and "nothing to send" in out.stdout  # it did not connect
    # with a session waiting it must connect, and is refused
    from dorsimeter.store import Store
    from tests.export.sessions import stored_session

    with Store.open(tmp_path / "home") as store:
        stored_session(store, 20.0, athlete="Ana", seeds=(1, 2))
    out = run_cli(["publish", "--rig", "r1", "--home", str(tmp_path / "home"), "--once", *args])
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "refused rig 'r1'" in out.stderr, out.stderr
    bad.chmod(0o644)  # a secret others can read is refused before anything is sent
    out = run_cli(["publish", "--rig", "r1", "--home", str(tmp_path / "home"), "--once", *args])
    assert out.returncode == 2 and "readable by others" in out.stderr, out.stderr
