"""Real Mosquitto and PostgreSQL for the clinic tests, started by scripts/clinic_services.py on
free loopback ports in a temporary directory, and always stopped (a fixture's finally runs on
failure and on Ctrl-C; every process a test starts is ended by its own pid)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLINIC = "c1"
RIGS = ["r1", "r2", "r3"]

try:  # the clinic extra; without it only the test that single-rig commands need none of it runs
    import aiomqtt  # noqa: F401
    import psycopg  # noqa: F401
except ImportError:
    collect_ignore = ["test_security.py", "test_end_to_end.py", "test_team.py",
                      "test_outbox.py"]


def _services_module():
    spec = importlib.util.spec_from_file_location("clinic_services",
                                                  ROOT / "scripts" / "clinic_services.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["clinic_services"] = mod
    spec.loader.exec_module(mod)
    return mod


def _missing() -> str | None:
    if not shutil.which("mosquitto"):
        return "mosquitto not installed (scripts/system-deps.sh installs it)"
    if not (shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))):
        return "PostgreSQL server not installed (scripts/system-deps.sh installs it)"
    return None


def wait_for(cond, what: str, timeout_s: float = 120.0, every_s: float = 0.1):
    """Poll ``cond`` until it returns something true; fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


@pytest.fixture(scope="package")
def services():
    """Mosquitto + PostgreSQL, the clinic database migrated by ``dorsimeter ingest --migrate``."""
    why = _missing()
    if why:
        pytest.skip(why)
    mod = _services_module()
    tmp = Path(tempfile.mkdtemp(prefix="dorsimeter-clinic-"))
    os.chmod(tmp, 0o711)  # the servers run as their own users when we are root
    svc = mod.Services(tmp / "svc", CLINIC, list(RIGS))
    try:
        svc.start()
        out = run_cli(["ingest", "--migrate", "--dsn-file", str(dsn_file(svc, "clinic_owner"))])
        assert out.returncode == 0, out.stderr
        yield svc
    finally:
        svc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def dsn_file(svc, role: str) -> Path:
    return svc.db.root / f"{role}.dsn"


def password_file(svc, user: str) -> Path:
    return svc.broker.root / f"{user}.password"


def broker_args(svc, user: str) -> list[str]:
    return ["--broker", f"127.0.0.1:{svc.broker.port}", "--ca", svc.broker.tls["ca"],
            "--clinic", CLINIC, "--password-file", str(password_file(svc, user))]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def run_cli(argv: list[str], timeout_s: float = 240.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from dorsimeter.cli import main; "
                           "sys.exit(main())", *argv], capture_output=True, text=True,
                          timeout=timeout_s, env=cli_env())


class Proc:
    """A ``dorsimeter`` command in the background, in its own process group."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        self._out = open(log, "ab")
        self.p = subprocess.Popen([sys.executable, "-c", "import sys; from dorsimeter.cli "
                                   "import main; sys.exit(main())", *argv],
                                  stdout=self._out, stderr=self._out, env=cli_env(),
                                  start_new_session=True)

    def kill(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, sig)
            try:
                self.p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self._out.close()
        return self.p.returncode

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def procs():
    """Start background commands with ``procs(argv, log)``; all are ended after the test."""
    started: list[Proc] = []

    def start(argv: list[str], log: Path) -> Proc:
        p = Proc(argv, log)
        started.append(p)
        return p
    try:
        yield start
    finally:
        for p in started:
            p.kill()


def pg(svc, role: str = "clinic_owner"):
    import psycopg

    return psycopg.connect(svc.db.dsn(role), autocommit=True)


def ingested_trials(svc) -> dict[str, float]:
    """Trial UUID -> angle, of every trial the clinic database shows (not superseded)."""
    with pg(svc) as conn:
        return {str(u): a for u, a in conn.execute(
            "SELECT uuid, angle_deg FROM trials WHERE NOT superseded")}


def rig_trials(home: Path) -> dict[str, float]:
    """Trial UUID -> angle of every trial of a rig's finished sessions (its SQLite history)."""
    import sqlite3

    db = sqlite3.connect(home / "history.sqlite3")
    try:
        return dict(db.execute("SELECT t.uuid, t.angle_deg FROM trials t JOIN sessions s ON "
                               "s.id = t.session_id WHERE s.ended = 1"))
    finally:
        db.close()


def state(svc) -> dict:
    return json.loads((svc.root / "clinic.json").read_text())
