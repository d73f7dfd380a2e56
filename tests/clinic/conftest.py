"""Real Mosquitto and PostgreSQL for the clinic tests, started by scripts/clinic_services.py on
free loopback ports in a temporary directory, and always stopped (a fixture's finally runs on
failure and on Ctrl-C; every process a test starts is ended by its own pid). How they are started
and reached is ``tests.clinic.servers``, shared with ``bench/bench_clinic.py``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.clinic.servers import (
    ROOT,
    broker_args,
    cli_argv,
    cli_env,
    clinic_services,
    dsn_file,
    password_file,
    pg,
    private_tmp,
    rig_trials,
    run_cli,
)
from tests.clinic.servers import missing as _missing

__all__ = ["ROOT", "broker_args", "cli_env", "dsn_file", "password_file", "pg", "rig_trials",
           "run_cli", "_missing"]  # for the tests, which import them from here
CLINIC = "c1"
RIGS = ["r1", "r2", "r3"]

try:  # the clinic extra; without it only the test that single-rig commands need none of it runs
    import aiomqtt  # noqa: F401
    import psycopg  # noqa: F401
except ImportError:
    collect_ignore = ["test_security.py", "test_end_to_end.py", "test_team.py",
                      "test_outbox.py"]


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
    tmp = private_tmp("dorsimeter-clinic-")
    try:
        with clinic_services(tmp / "svc", CLINIC, RIGS) as svc:
            yield svc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Proc:
    """A ``dorsimeter`` command in the background, in its own process group."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        self._out = open(log, "ab")
        self.p = subprocess.Popen(cli_argv(argv), stdout=self._out, stderr=self._out,
                                  env=cli_env(), start_new_session=True)

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


def ingested_trials(svc) -> dict[str, float]:
    """Trial UUID -> angle, of every trial the clinic database shows (not superseded)."""
    with pg(svc) as conn:
        return {str(u): a for u, a in conn.execute(
            "SELECT uuid, angle_deg FROM trials WHERE NOT superseded")}


def state(svc) -> dict:
    return json.loads((svc.root / "clinic.json").read_text())
