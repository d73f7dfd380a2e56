#!/usr/bin/env python3
"""Start and stop the clinic's services on one machine: Mosquitto (a password per rig, an ACL,
TLS with a CA generated here by openssl) and PostgreSQL (``initdb`` into a directory as an
unprivileged user, on loopback, with a role per service). Stdlib only: the tests import it and
docs/clinic.md runs it.

    python3 scripts/clinic_services.py start DIR --clinic physio1 --rigs room1,room2
    python3 scripts/clinic_services.py stop DIR

``start`` writes DIR/clinic.json (ports, users, password files, the CA) and leaves both servers
running; ``stop`` ends them (by the pids it recorded). Everything secret in DIR is owner-only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # clinic and rig names: topic-safe
PG_BIN = Path("/usr/lib/postgresql")
#: the PostgreSQL roles: the schema's owner (runs migrations), the ingest, the team page
PG_ROLES = ("clinic_owner", "ingest", "team")
DATABASE = "dorsimeter"


def free_port() -> int:
    """A TCP port free on loopback now (the servers retry with another if it is taken)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_tool(name: str) -> str:
    """A PostgreSQL server program (Debian keeps them out of PATH)."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(PG_BIN.glob("*/bin/" + name), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise SystemExit(f"{name} not found: install postgresql (scripts/system-deps.sh)")
    return str(versions[-1])


def _service_user(preferred: str) -> pwd.struct_passwd | None:
    """Servers never run as root: as root, run them as ``preferred`` (the Debian package's
    user) or ``nobody``; as anyone else, as ourselves (None)."""
    if os.geteuid() != 0:
        return None
    for name in (preferred, "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise SystemExit(f"no unprivileged user ({preferred} or nobody) to run the server as")


def _chown_tree(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is None:
        return
    for p in [path, *path.rglob("*")]:
        os.chown(p, user.pw_uid, user.pw_gid, follow_symlinks=False)


def _run(cmd: list[str], user: pwd.struct_passwd | None = None, **kw) -> str:
    kw.setdefault("timeout", 120)
    ids = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid,
                                   "extra_groups": []}
    p = subprocess.run(cmd, capture_output=True, text=True, **ids, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return p.stdout


def _secret_file(path: Path, text: str) -> Path:
    """An owner-only file, written whole."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def _wait(cond, what: str, timeout_s: float, proc: subprocess.Popen | None = None,
          log: Path | None = None) -> None:
    """Poll ``cond`` until true, the deadline passes or the process dies."""
    deadline = time.monotonic() + timeout_s
    while True:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited ({proc.returncode}): {tail}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")
        time.sleep(0.05)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def make_ca(tls_dir: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> dict:
    """A CA and the broker's certificate signed by it (P-256 keys, openssl). The rigs and the
    ingest trust ``ca.crt`` only; ``ca.key`` stays with whoever runs the setup."""
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key, ca_crt = tls_dir / "ca.key", tls_dir / "ca.crt"
    key, csr, crt = tls_dir / "server.key", tls_dir / "server.csr", tls_dir / "server.crt"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(["openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt),
          "-days", "3650", "-subj", "/CN=dorsimeter clinic CA"])
    _run(["openssl", "req", *ec, "-keyout", str(key), "-out", str(csr),
          "-subj", f"/CN={hosts[0]}"])
    san = ",".join(("IP:" if re.fullmatch(r"[0-9.]+", h) else "DNS:") + h for h in hosts)
    ext = tls_dir / "server.ext"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    _run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
          "-CAcreateserial", "-out", str(crt), "-days", "825", "-extfile", str(ext)])
    for p in (ca_key, key):
        os.chmod(p, 0o600)
    return {"ca": str(ca_crt), "cert": str(crt), "key": str(key)}


# -- Mosquitto ---------------------------------------------------------------------------------

def acl_text(clinic: str, rigs: list[str]) -> str:
    """Each rig reads and writes only ``dorsimeter/<clinic>/<rig>/#``; the ingest reads the
    clinic's topics and writes none; the team page reads presence and live angles."""
    lines = ["# written by scripts/clinic_services.py", ""]
    for rig in rigs:
        lines += [f"user {rig}", f"topic readwrite dorsimeter/{clinic}/{rig}/#", ""]
    lines += ["user ingest", f"topic read dorsimeter/{clinic}/#", ""]
    lines += ["user team", f"topic read dorsimeter/{clinic}/+/presence",
              f"topic read dorsimeter/{clinic}/+/live", ""]
    return "\n".join(lines)


@dataclass
class Mosquitto:
    """A Mosquitto broker on a loopback TLS listener, its state persisted in ``root/data`` (so
    a restart keeps QoS 1 messages queued for persistent sessions)."""

    root: Path
    clinic: str
    rigs: list[str]
    port: int = 0
    listen: str = "127.0.0.1"  # the listener's address (a LAN address for rigs elsewhere)
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1")  # names the certificate is valid for
    passwords: dict[str, str] = field(default_factory=dict)
    tls: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def setup(self) -> None:
        user = _service_user("mosquitto")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.root / "data").mkdir(mode=0o700, exist_ok=True)
        self.tls = make_ca(self.root / "tls", self.hosts)
        passwd = self.root / "passwd"
        passwd.touch(mode=0o600)
        for name in [*self.rigs, "ingest", "team"]:
            pw = secrets.token_urlsafe(18)
            self.passwords[name] = pw
            _secret_file(self.root / f"{name}.password", pw + "\n")
            _run(["mosquitto_passwd", "-b", str(passwd), name, pw])
        _secret_file(self.root / "acl", acl_text(self.clinic, self.rigs))
        _chown_tree(self.root, user)
        if user is not None:  # the setup's owner keeps the secrets it hands to rigs readable
            for name in [*self.rigs, "ingest", "team"]:
                os.chown(self.root / f"{name}.password", 0, 0)
            os.chown(self.root / "tls" / "ca.key", 0, 0)

    def _conf(self) -> Path:
        r = self.root
        conf = "\n".join([
            "per_listener_settings false", "allow_anonymous false",
            f"password_file {r / 'passwd'}", f"acl_file {r / 'acl'}",
            "persistence true", f"persistence_location {r / 'data'}/",
            # saved after every change (a queued or retained message) rather than once a
            # while, so a crash loses at most the last moment (session messages are few; the
            # live angle is QoS 0 and never queued); not an fsync per message: docs/clinic.md
            "autosave_interval 1", "autosave_on_changes true", "log_dest stderr",
            "log_type error", "log_type warning",
            "log_type notice", "max_queued_messages 100000",
            f"listener {self.port} {self.listen}",
            f"cafile {self.tls['ca']}", f"certfile {self.tls['cert']}",
            f"keyfile {self.tls['key']}", "tls_version tlsv1.2", ""])
        path = r / "mosquitto.conf"
        path.write_text(conf)
        return path

    def start(self, timeout_s: float = 60.0) -> None:
        user = _service_user("mosquitto")
        for attempt in range(5):
            if not self.port or attempt:
                self.port = free_port()
            conf = self._conf()
            log = self.root / "mosquitto.log"
            ids = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid,
                                           "extra_groups": []}
            with open(log, "ab") as out:
                self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=out,
                                             stderr=out, start_new_session=True, **ids)
            try:
                _wait(lambda: _port_open(self.port, self.listen), "mosquitto", timeout_s,
                      self.proc, log)
                return
            except RuntimeError:
                if "Address already in use" not in log.read_text(errors="replace"):
                    raise
        raise RuntimeError("mosquitto: no free port after 5 tries")

    def restart(self, timeout_s: float = 60.0) -> None:
        """Start again on the same port (the rigs reconnect to it)."""
        user = _service_user("mosquitto")
        log = self.root / "mosquitto.log"
        ids = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid,
                                       "extra_groups": []}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(["mosquitto", "-c", str(self._conf())], stdout=out,
                                         stderr=out, start_new_session=True, **ids)
        _wait(lambda: _port_open(self.port, self.listen), "mosquitto", timeout_s, self.proc,
              log)

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash: no final save of its state, only what it saved as it went."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def _stop(proc: subprocess.Popen | None, timeout_s: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; the process is reaped either way."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- PostgreSQL --------------------------------------------------------------------------------

@dataclass
class Postgres:
    """A PostgreSQL cluster in ``root/data``, listening on 127.0.0.1 only (passwords, SCRAM)
    and on a Unix socket in ``root/run`` for its administrator (``clinic_admin``)."""

    root: Path
    port: int = 0
    passwords: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    def dsn(self, role: str) -> str:
        """The libpq connection string a service uses (over TCP loopback, by password)."""
        return (f"host=127.0.0.1 port={self.port} dbname={DATABASE} user={role} "
                f"password={self.passwords[role]}")

    def admin_dsn(self) -> str:
        return f"host={self.socket_dir} port={self.port} dbname={DATABASE} user=clinic_admin"

    def setup(self) -> None:
        user = _service_user("postgres")
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        _chown_tree(self.root, user)
        _run([pg_tool("initdb"), "-D", str(self.root / "data"), "-U", "clinic_admin",
              "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
              "--locale=C", "--no-sync"], user)
        with open(self.root / "data" / "postgresql.conf", "a") as f:
            f.write("\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.socket_dir}'\n"
                    "password_encryption = 'scram-sha-256'\nfsync = on\n"
                    "shared_buffers = 16MB\nmax_connections = 40\n")
        for role in PG_ROLES:
            self.passwords[role] = secrets.token_urlsafe(18)
        if user is not None:
            os.chown(self.root / "data" / "postgresql.conf", user.pw_uid, user.pw_gid)

    def start(self, timeout_s: float = 90.0) -> None:
        user = _service_user("postgres")
        ids = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid,
                                       "extra_groups": []}
        log = self.root / "postgres.log"
        for attempt in range(5):
            if not self.port or attempt:
                self.port = free_port()
            with open(log, "ab") as out:
                self.proc = subprocess.Popen(
                    [pg_tool("postgres"), "-D", str(self.root / "data"), "-p", str(self.port)],
                    stdout=out, stderr=out, start_new_session=True, **ids)
            try:
                _wait(lambda: (self.socket_dir / f".s.PGSQL.{self.port}").exists()
                      and _port_open(self.port), "postgres", timeout_s, self.proc, log)
                break
            except RuntimeError:
                if "already in use" not in log.read_text(errors="replace"):
                    raise
        else:
            raise RuntimeError("postgres: no free port after 5 tries")
        self._ready(timeout_s)

    def _psql(self, sql: str, db: str = DATABASE) -> str:
        return _run([pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h",
                     str(self.socket_dir), "-p", str(self.port), "-U", "clinic_admin",
                     "-d", db, "-c", sql])

    def _ready(self, timeout_s: float) -> None:
        def accepting() -> bool:
            p = subprocess.run([pg_tool("pg_isready"), "-q", "-U", "clinic_admin", "-h",
                                str(self.socket_dir), "-p", str(self.port)],
                               capture_output=True)
            return p.returncode == 0
        _wait(accepting, "postgres", timeout_s, self.proc, self.root / "postgres.log")

    def create_roles(self) -> None:
        """The database, owned by ``clinic_owner``; ``ingest`` and ``team`` log in and get
        their table privileges from the migrations (grants follow the tables)."""
        pw = self.passwords
        self._psql(f"CREATE ROLE clinic_owner LOGIN PASSWORD '{pw['clinic_owner']}'",
                   db="postgres")
        self._psql(f"CREATE DATABASE {DATABASE} OWNER clinic_owner", db="postgres")
        for role in ("ingest", "team"):
            self._psql(f"CREATE ROLE {role} LOGIN PASSWORD '{pw[role]}' NOSUPERUSER "
                       "NOCREATEDB NOCREATEROLE", db="postgres")
        self._psql(f"REVOKE ALL ON DATABASE {DATABASE} FROM PUBLIC; "
                   f"GRANT CONNECT ON DATABASE {DATABASE} TO clinic_owner, ingest, team; "
                   "REVOKE CREATE ON SCHEMA public FROM PUBLIC; "
                   "ALTER SCHEMA public OWNER TO clinic_owner")
        for role in PG_ROLES:
            _secret_file(self.root / f"{role}.dsn", self.dsn(role) + "\n")

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


# -- both, as the tests and the docs use them --------------------------------------------------

@dataclass
class Services:
    root: Path
    clinic: str
    rigs: list[str]
    broker: Mosquitto | None = None
    db: Postgres | None = None
    listen: str = "127.0.0.1"
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1")

    def start(self, broker: bool = True, database: bool = True) -> Services:
        for name in [self.clinic, *self.rigs]:
            if not NAME_RE.match(name) or name in ("ingest", "team"):
                raise SystemExit(f"bad name {name!r}: expected lowercase letters, digits, - _ "
                                 "(ingest and team are taken)")
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)  # the servers' users pass through; their dirs are 0700
        try:
            if broker:
                self.broker = Mosquitto(self.root / "mosquitto", self.clinic, self.rigs,
                                        listen=self.listen, hosts=self.hosts)
                self.broker.setup()
                self.broker.start()
            if database:
                self.db = Postgres(self.root / "postgres")
                self.db.setup()
                self.db.start()
                self.db.create_roles()
        except BaseException:
            self.stop()
            raise
        self._write_state()
        return self

    def _write_state(self) -> None:
        state = {"clinic": self.clinic, "rigs": self.rigs}
        if self.broker is not None:
            state["mqtt"] = {"host": self.listen, "port": self.broker.port,
                             "ca": self.broker.tls["ca"],
                             "password_files": {u: str(self.broker.root / f"{u}.password")
                                                for u in self.broker.passwords},
                             "pid": self.broker.proc.pid if self.broker.proc else None}
        if self.db is not None:
            state["postgres"] = {"port": self.db.port,
                                 "dsn_files": {r: str(self.db.root / f"{r}.dsn")
                                               for r in PG_ROLES},
                                 "pid": self.db.proc.pid if self.db.proc else None}
        _secret_file(self.root / "clinic.json", json.dumps(state, indent=2) + "\n")

    def stop(self) -> None:
        for svc in (self.broker, self.db):
            if svc is not None:
                svc.stop()


def stop_from_state(root: Path) -> None:
    """``stop``: end the servers ``start`` recorded in ROOT/clinic.json, by their pids."""
    state = json.loads((root / "clinic.json").read_text())
    for key in ("mqtt", "postgres"):
        pid = state.get(key, {}).get("pid")
        if not pid:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="set up and start Mosquitto and PostgreSQL in DIR")
    s.add_argument("dir", type=Path)
    s.add_argument("--clinic", required=True)
    s.add_argument("--rigs", required=True, help="comma-separated rig names")
    s.add_argument("--listen", default="127.0.0.1",
                   help="the broker's address (default loopback; a LAN address for rigs on "
                        "other machines; the database stays on loopback)")
    s.add_argument("--hosts", default="localhost,127.0.0.1",
                   help="comma-separated names and addresses the broker's certificate is for")
    t = sub.add_parser("stop", help="stop what `start DIR` started")
    t.add_argument("dir", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "start":
        if (a.dir / "clinic.json").exists():
            print(f"{a.dir}: already set up (stop it, or choose another directory)",
                  file=sys.stderr)
            return 2
        svc = Services(a.dir.resolve(), a.clinic, [r for r in a.rigs.split(",") if r],
                       listen=a.listen, hosts=tuple(h for h in a.hosts.split(",") if h))
        svc.start()
        # detach: the servers outlive this script; `stop` ends them by pid
        print(json.dumps(json.loads((a.dir / "clinic.json").read_text()), indent=2))
        return 0
    stop_from_state(a.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
