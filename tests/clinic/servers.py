"""The clinic's real servers, one way for the tests and the clinic benchmark alike: Mosquitto and
PostgreSQL started by ``scripts/clinic_services.py`` (each server as its own unprivileged user
when we are root, on free loopback ports, in a directory only they and we may pass through), the
clinic database migrated by ``dorsimeter ingest --migrate``, and always stopped; the paths and
arguments the ``dorsimeter`` commands are given to reach them."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def services_module() -> Any:
    """``scripts/clinic_services.py``, the start script ``make`` and the README use too."""
    spec = importlib.util.spec_from_file_location("clinic_services",
                                                  ROOT / "scripts" / "clinic_services.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["clinic_services"] = mod
    spec.loader.exec_module(mod)
    return mod


def missing() -> str | None:
    """Why the servers cannot be started here, or None."""
    if not shutil.which("mosquitto"):
        return "mosquitto not installed (scripts/system-deps.sh installs it)"
    if not (shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))):
        return "PostgreSQL server not installed (scripts/system-deps.sh installs it)"
    return None


def private_tmp(prefix: str) -> Path:
    """A fresh temporary directory the servers' own users may pass through but not list
    (0711: they run as themselves when we are root; their own directories are 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(tmp, 0o711)
    return tmp


def cli_argv(argv: list[str]) -> list[str]:
    """``dorsimeter ARGV`` run by this interpreter."""
    return [sys.executable, "-c", "import sys; from dorsimeter.cli import main; "
            "sys.exit(main())", *argv]


def cli_env(*extra_path: Path) -> dict[str, str]:
    """This environment with this tree's ``src`` (then ``extra_path``) first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *map(str, extra_path),
                                         env.get("PYTHONPATH", "")])
    return env


def run_cli(argv: list[str], timeout_s: float = 240.0) -> subprocess.CompletedProcess:
    return subprocess.run(cli_argv(argv), capture_output=True, text=True, timeout=timeout_s,
                          env=cli_env())


def dsn_file(svc, role: str) -> Path:
    return svc.db.root / f"{role}.dsn"


def password_file(svc, user: str) -> Path:
    return svc.broker.root / f"{user}.password"


def broker_args(svc, user: str) -> list[str]:
    """What a clinic command is given to reach the broker as ``user``."""
    return ["--broker", f"127.0.0.1:{svc.broker.port}", "--ca", svc.broker.tls["ca"],
            "--clinic", svc.clinic, "--password-file", str(password_file(svc, user))]


def pg(svc, role: str = "clinic_owner"):
    import psycopg

    return psycopg.connect(svc.db.dsn(role), autocommit=True)


def rig_trials(home: Path) -> dict[str, float]:
    """Trial UUID -> angle of every trial of a rig's finished sessions (its SQLite history)."""
    db = sqlite3.connect(home / "history.sqlite3")
    try:
        return dict(db.execute("SELECT t.uuid, t.angle_deg FROM trials t JOIN sessions s ON "
                               "s.id = t.session_id WHERE s.ended = 1"))
    finally:
        db.close()


@contextlib.contextmanager
def clinic_services(root: Path, clinic: str, rigs: list[str]) -> Iterator[Any]:
    """Mosquitto + PostgreSQL under ``root`` for ``clinic`` and its ``rigs``, the clinic
    database migrated; stopped (by their pids) however the block ends."""
    svc = services_module().Services(root, clinic, list(rigs))
    try:
        svc.start()
        out = run_cli(["ingest", "--migrate", "--dsn-file", str(dsn_file(svc, "clinic_owner"))])
        if out.returncode != 0:
            raise RuntimeError(f"dorsimeter ingest --migrate failed: {out.stderr.strip()}")
        yield svc
    finally:
        svc.stop()
