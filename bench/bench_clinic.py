"""The clinic under load (issue 16): many rigs publishing to the real Mosquitto, the real
``dorsimeter ingest`` writing to the real PostgreSQL, the real ``dorsimeter team`` page relaying
the live angle; then the same with the broker restarted in the middle.

Each simulated rig is a real SQLite history with the real publisher (``clinic.mqtt.publish``:
its outbox, QoS 1, presence, the live angle decimated to 10 Hz of device time), logged in with
its own broker password, all rigs in this one process (one asyncio loop, a TLS connection each).
A rig records sessions back to back: 60 s of 100 Hz samples (30 s per leg) stored as ``record``
stores them, 6 trials, then 15 s apart. Time is compressed: the rigs' device clock runs
``SPEED`` times faster than the wall clock, so a rig stores ``SPEED`` × 100 samples and the
publisher sends ``SPEED`` × 10 live angles per wall second (the broker, ingest and page see
``SPEED`` times the real message rate: a harder load than real time, not an easier one).

Measured, with anchors:
- rig → database: from the session's end committed in the rig's SQLite to its row written by
  the ingest (``sessions.received_utc``, the ingest transaction's time), p50 and p99;
- rig → page: from a sample's batch committed in the rig's SQLite to its live event read from
  the page's ``/live`` stream (logged in as a coach), p50 and p99;
- live messages per second held through broker and page, sessions per second stored;
- the ingest's CPU (``resource.getrusage`` of the ingest process, reaped at the end);
- loss and duplication counted from PostgreSQL: every trial UUID of every rig's finished
  sessions, each once.

``DORSIMETER_CLINIC_RIGS`` (50), ``DORSIMETER_CLINIC_MINUTES`` (10, simulated) and
``DORSIMETER_CLINIC_SPEED`` (4) size it; e.g. ``DORSIMETER_CLINIC_RIGS=5
DORSIMETER_CLINIC_MINUTES=1 python -m bench clinic`` while developing.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dorsimeter.clinic.mqtt import Broker, publish
from dorsimeter.store import Store
from dorsimeter.types import Readings
from tests.clinic import servers

ROOT = Path(__file__).resolve().parents[1]
CLINIC = "bench"
RATE_HZ = 100.0
SESSION_S = 60.0  # per session: 30 s per leg
GAP_S = 15.0
TRIALS_PER_LEG = 3
TICK_S = 0.1  # the rigs store a batch every 0.1 s of wall time
RESTART_DOWN_S = 5.0  # the broker's outage (wall) in the restart run

#: anchors (what "good" means; no figure in the issue): a rig polls its outbox every 1 s
#: (``publish``'s default), so a session should be in the database within ~2 s; a live view
#: should lag under a second (the publisher polls the rig's samples every 0.1 s); the live rate
#: held is the offered one (50 rigs × 10 Hz × SPEED); the ingest should use well under a core
ANCHOR_DB_P99_S = 2.0
ANCHOR_PAGE_P99_S = 1.0
ANCHOR_INGEST_CPU = 0.5


def _env() -> dict[str, str]:
    """The commands' environment: this tree's ``src``, then the tree (the page reader's process
    imports this module, and it ``tests.clinic.servers``)."""
    return servers.cli_env(ROOT)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Rig:
    """One simulated rig: its history, the session it is recording, what it stored when."""

    name: str
    home: Path
    store: Store
    offset_s: float  # where in its session cycle it starts (rigs are not in step)
    session_id: int | None = None
    session_t0: float = 0.0
    session_uuid: str = ""
    ended: dict[str, float] = field(default_factory=dict)  # session uuid -> wall end
    #: (session uuid, side) -> ([last t_s of each batch], [wall time it was committed])
    batches: dict[tuple[str, str], tuple[list[float], list[float]]] = field(
        default_factory=dict)
    first_t: dict[tuple[str, str], float] = field(default_factory=dict)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def live_expected(self) -> int:
        """Live angles its samples give: one per 0.1 s of device time per leg."""
        return sum(int(round((ts[-1] - self.first_t[key]) / 0.1)) + 1
                   for key, (ts, _) in self.batches.items() if ts)

    def advance(self, t0: float, t1: float) -> None:
        """Store what the rig records between device times ``t0`` and ``t1``."""
        cycle = SESSION_S + GAP_S
        t = t0
        while t < t1:
            phase = (t + self.offset_s) % cycle
            if phase >= SESSION_S:  # between sessions
                if self.session_id is not None:
                    self._finish()
                t = min(t1, t + cycle - phase)
                continue
            if self.session_id is None:
                self.session_id = self.store.start_session("record", athlete=f"{self.name} "
                                                           f"athlete {int(t // cycle) % 4}")
                self.session_t0 = t - phase
                self.session_uuid = self.store.db.execute(
                    "SELECT uuid FROM sessions WHERE id = ?", (self.session_id,)).fetchone()[0]
            end = min(t1, t + SESSION_S - phase)
            n0 = int(np.ceil((t - self.session_t0) * RATE_HZ))
            n1 = int(np.ceil((end - self.session_t0) * RATE_HZ))
            if n1 > n0:
                self._samples(np.arange(n0, n1) / RATE_HZ)
            t = end

    def _samples(self, ts: np.ndarray) -> None:
        assert self.session_id is not None
        for side in ("left", "right"):
            half = ts < SESSION_S / 2 if side == "left" else ts >= SESSION_S / 2
            t = ts[half]
            if not len(t):
                continue
            angle = 30.0 + 12.0 * np.sin(2 * np.pi * t / 6.0) + self.rng.normal(0, 0.2, len(t))
            r = Readings(t_s=t, tibia_angle_deg=angle, knee_track_deg=np.zeros(len(t)),
                         side=np.full(len(t), side, dtype=object))
            self.store.add_samples(self.session_id, r)
            self.first_t.setdefault((self.session_uuid, side), float(t[0]))
            got = self.batches.setdefault((self.session_uuid, side), ([], []))
            got[0].append(float(t[-1]))
            got[1].append(time.time())

    def _finish(self) -> None:
        assert self.session_id is not None
        for side in ("left", "right"):
            for k in range(TRIALS_PER_LEG):
                self.store.add_trial(self.session_id, side, float(self.rng.uniform(25, 45)),
                                     True, "shank_imu", 5.0 * k, 5.0 * k + 3.0, rep=k + 1,
                                     hold_s=2.0, scored=True)
        self.store.end_session(self.session_id)
        self.ended[self.session_uuid] = time.time()
        self.session_id = None

    def stored_at(self, session_uuid: str, side: str, t_s: float) -> float | None:
        """The wall time the batch holding sample ``t_s`` was committed."""
        got = self.batches.get((session_uuid, side))
        if not got:
            return None
        i = bisect.bisect_left(got[0], t_s - 1e-9)
        return got[1][i] if i < len(got[1]) else None


class PageReader:
    """A coach's browser, reduced to what the bench needs: a process of its own (so the rigs'
    work in this one does not delay what it reads) that logs in to the team page and reads its
    ``/live`` event stream, writing each event with its arrival time to a file."""

    def __init__(self, port: int, token: str, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen([sys.executable, __file__, "page-reader", str(port), token,
                                      str(out)], env=_env(), start_new_session=True)
        _wait(lambda: out.exists() or self.proc.poll() is not None, "the page reader", 60)

    @property
    def events(self) -> list[tuple[float, dict]]:
        out = []
        for line in self.out.read_text().splitlines():
            t, _, ev = line.partition(" ")
            if ev:
                out.append((float(t), json.loads(ev)))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def read_page(port: int, token: str, out_path: Path) -> None:
    """The page reader's process: log in, then append ``<arrival time> <event>`` lines."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/login", body=f"token={token}",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    assert r.status == 303, r.status
    cookie = (r.getheader("Set-Cookie") or "").split(";")[0]
    conn.close()
    with open(out_path, "w", buffering=1) as out:
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/live", headers={"Cookie": cookie})
                r = conn.getresponse()
                assert r.status == 200, r.status
                while line := r.fp.readline():
                    if line.startswith(b"data: "):
                        out.write(f"{time.time()!r} {line[6:].decode().strip()}\n")
            time.sleep(0.2)


def _rusage_children_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _wait(cond, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout_s:.0f} s")
        time.sleep(0.2)


def run(n_rigs: int, minutes: float, speed: float, restart: bool, tmp: Path) -> dict:
    """One run on fresh services; returns its figures."""
    rig_names = [f"rig{i:02d}" for i in range(n_rigs)]
    with servers.clinic_services(tmp / "svc", CLINIC, rig_names) as svc:
        return _run(svc, rig_names, minutes, speed, restart, tmp)


def _run(svc, rig_names: list[str], minutes: float, speed: float, restart: bool,
         tmp: Path) -> dict:
    procs: list[subprocess.Popen] = []
    rigs: list[Rig] = []
    try:
        coaches = tmp / "coaches.json"
        token = subprocess.run(servers.cli_argv(["team", "--coaches", str(coaches),
                                                 "--add-coach", "b"]),
                               env=_env(), capture_output=True, text=True, check=True,
                               timeout=120).stdout.strip()
        ingest_log = open(tmp / "ingest.log", "w")
        ingest = subprocess.Popen(servers.cli_argv(["ingest", "--dsn-file",
                                                    str(servers.dsn_file(svc, "ingest")),
                                                    *servers.broker_args(svc, "ingest")]),
                                  env=_env(), stdout=ingest_log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        procs.append(ingest)
        team_log = tmp / "team.log"
        with open(team_log, "w") as out:
            team = subprocess.Popen(servers.cli_argv(["team", "--coaches", str(coaches),
                                                      "--dsn-file",
                                                      str(servers.dsn_file(svc, "team")),
                                                      "--port", "0",
                                                      *servers.broker_args(svc, "team")]),
                                    env=_env(), stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        procs.append(team)
        _wait(lambda: "subscribed to" in (tmp / "ingest.log").read_text(), "the ingest", 120)
        _wait(lambda: "team page on" in team_log.read_text(), "the team page", 120)
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", team_log.read_text()).group(1))  # type: ignore[union-attr]
        page = PageReader(port, token, tmp / "page-events.txt")
        procs.append(page.proc)

        rng = np.random.default_rng(16)
        for i, name in enumerate(rig_names):
            home = tmp / "rigs" / name
            rigs.append(Rig(name, home, Store.open(home),
                            offset_s=float(rng.uniform(0, SESSION_S + GAP_S)),
                            rng=np.random.default_rng(i)))
        figures = asyncio.run(_drive(svc, rigs, minutes * 60.0, speed, restart))
        # drain: every finished session in PostgreSQL (or the deadline says it was lost)
        want = _rig_trials(rigs)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _pg_trial_count(svc, want) < len(want):
            time.sleep(0.5)
        page.stop()
        cpu0 = _rusage_children_s()
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(60)
        figures["ingest_cpu_s"] = _rusage_children_s() - cpu0
        cpu1 = _rusage_children_s()
        team.send_signal(signal.SIGTERM)
        team.wait(60)
        figures["team_cpu_s"] = _rusage_children_s() - cpu1
        ingest_log.close()
        m = re.search(r"stored (\d+) message", (tmp / "ingest.log").read_text())
        figures["ingest_stored"] = int(m.group(1)) if m else -1
        figures.update(_count(svc, rigs, want))
        figures.update(_latencies(svc, rigs, page))
        return figures
    finally:
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        for r in rigs:
            r.store.close()


async def _drive(svc, rigs: list[Rig], sim_s: float, speed: float, restart: bool) -> dict:
    """The rigs record and publish for ``sim_s`` of device time at ``speed``×; with
    ``restart``, the broker is stopped half way and started again ``RESTART_DOWN_S`` later."""
    stop = asyncio.Event()
    tasks = []
    loop = asyncio.get_running_loop()
    default_handler = loop.get_exception_handler()

    def quiet(lp: asyncio.AbstractEventLoop, ctx: dict) -> None:
        # aiomqtt schedules a socket writer after the broker closed the socket under it (the
        # restart): EBADF in add_writer, harmless, the client reconnects
        if isinstance(ctx.get("exception"), OSError) and "add_writer" in str(ctx.get("handle")):
            return
        if default_handler is None:
            lp.default_exception_handler(ctx)
        else:
            default_handler(lp, ctx)
    loop.set_exception_handler(quiet)
    for r in rigs:
        pub_store = Store.open(r.home)  # the publisher's own connection, as a separate process
        broker = Broker("127.0.0.1", svc.broker.port, Path(svc.broker.tls["ca"]), r.name,
                        servers.password_file(svc, r.name).read_text().strip())
        tasks.append((pub_store, asyncio.ensure_future(
            publish(pub_store, broker, CLINIC, r.name, False, stop, poll_s=1.0))))
    t_wall0 = time.monotonic()
    t_dev = 0.0
    restarted = not restart
    down_at: float | None = None
    lag_max_s = 0.0
    while t_dev < sim_s:
        now = time.monotonic() - t_wall0
        target = min(sim_s, now * speed)
        if target > t_dev:
            for r in rigs:
                r.advance(t_dev, target)
            t_dev = target
        lag_max_s = max(lag_max_s, (time.monotonic() - t_wall0) * speed - t_dev)
        if not restarted and down_at is None and t_dev >= sim_s / 2:
            await asyncio.to_thread(svc.broker.stop)
            down_at = time.monotonic()
        if down_at is not None and not restarted and time.monotonic() - down_at \
                >= RESTART_DOWN_S:
            await asyncio.to_thread(svc.broker.restart)
            restarted = True
        await asyncio.sleep(TICK_S)
    wall_s = time.monotonic() - t_wall0
    if down_at is not None and not restarted:  # a short run ends inside the outage: finish it
        await asyncio.sleep(max(0.0, RESTART_DOWN_S - (time.monotonic() - down_at)))
        await asyncio.to_thread(svc.broker.restart)
    for r in rigs:  # the sessions under way end with the run
        if r.session_id is not None:
            r._finish()
    # let the publishers send what is waiting, then stop them
    deadline = time.monotonic() + 120
    def waiting(s: Store) -> bool:  # a finished session not yet enqueued, or not yet sent
        return bool(s.db.execute(
            "SELECT (SELECT count(*) FROM sessions WHERE ended = 1) - (SELECT count(*) FROM "
            "outbox_sessions) + (SELECT count(*) FROM outbox WHERE sent_utc IS NULL)"
            ).fetchone()[0])
    while time.monotonic() < deadline and any(waiting(s) for s, _ in tasks):
        await asyncio.sleep(0.5)
    stop.set()
    for s, t in tasks:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(t, 60)
        s.close()
    return {"wall_s": wall_s, "sim_s": sim_s, "lag_max_s": lag_max_s,
            "outage_s": RESTART_DOWN_S if restart else 0.0}


def _rig_trials(rigs: list[Rig]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rigs:
        out.update(servers.rig_trials(r.home))
    return out


def _pg_trial_count(svc, want: dict[str, float]) -> int:
    with servers.pg(svc) as conn:
        return int(conn.execute("SELECT count(*) FROM trials WHERE uuid = ANY(%s::uuid[])",  # pyright: ignore[reportOptionalSubscript]
                                (list(want),)).fetchone()[0])


def _count(svc, rigs: list[Rig], want: dict[str, float]) -> dict:
    """Loss and duplication from PostgreSQL: the rows per trial UUID, and each angle."""
    with servers.pg(svc) as conn:
        rows = [(str(u), a) for u, a in conn.execute(
            "SELECT uuid, angle_deg FROM trials WHERE NOT superseded")]
        sessions = int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])  # pyright: ignore[reportOptionalSubscript]
    got: dict[str, float] = {}
    dup = 0
    for u, a in rows:
        dup += u in got
        got[u] = a
    lost = sum(1 for u in want if u not in got)
    wrong = sum(1 for u, a in want.items() if u in got and got[u] != a)
    extra = sum(1 for u in got if u not in want)
    n_sessions = sum(len(r.ended) for r in rigs)
    return {"trials": len(want), "trials_db": len(rows), "lost": lost, "duplicated": dup,
            "wrong": wrong, "extra": extra, "sessions": n_sessions, "sessions_db": sessions}


def _latencies(svc, rigs: list[Rig], page: PageReader) -> dict:
    ended = {u: t for r in rigs for u, t in r.ended.items()}
    with servers.pg(svc) as conn:
        received = {str(u): t.timestamp() for u, t in conn.execute(
            "SELECT uuid, received_utc FROM sessions")}
    db_lat = [received[u] - t for u, t in ended.items() if u in received]
    by_name = {r.name: r for r in rigs}
    page_lat = []
    for t_recv, ev in page.events:
        r = by_name.get(ev["rig"])
        t_stored = r.stored_at(ev["session_uuid"], ev["side"], ev["t_s"]) if r else None
        if t_stored is not None:
            page_lat.append(t_recv - t_stored)
    span = (page.events[-1][0] - page.events[0][0]) if len(page.events) > 1 else float("nan")
    return {"live_expected": sum(r.live_expected() for r in rigs),
            "db_p50_s": pct(db_lat, 50), "db_p99_s": pct(db_lat, 99),
            "page_p50_s": pct(page_lat, 50), "page_p99_s": pct(page_lat, 99),
            "live_events": len(page.events), "live_span_s": span,
            "live_per_s": len(page.events) / span if span == span and span > 0 else 0.0}


def report(name: str, f: dict, n_rigs: int, speed: float) -> None:
    offered = n_rigs * 10.0 * speed
    cpu_frac = f["ingest_cpu_s"] / f["wall_s"]
    sent_per_s = f["live_expected"] / f["wall_s"]
    print(f"\n{name}: {n_rigs} rigs, {f['sim_s'] / 60:.1f} min simulated in {f['wall_s']:.0f} s "
          f"wall (speed {speed:g}×, the rigs' clock at most {f['lag_max_s']:.1f} s behind)"
          + (f", broker down {f['outage_s']:.0f} s half way" if f["outage_s"] else ""))
    rows = [
        ("trials lost (PostgreSQL)", f"{f['lost']} of {f['trials']}", "0"),
        ("trials duplicated", f"{f['duplicated']} (rows {f['trials_db']})", "0"),
        ("trial angle differs", f"{f['wrong']}", "0"),
        ("sessions stored", f"{f['sessions_db']} of {f['sessions']}", "all"),
        ("rig → database p50 / p99", f"{f['db_p50_s']:.2f} / {f['db_p99_s']:.2f} s",
         f"p99 < {ANCHOR_DB_P99_S:g} s" + (f" (+ the {f['outage_s']:.0f} s outage for the "
                                           "sessions ended in it)" if f["outage_s"] else "")),
        ("rig → page p50 / p99", f"{f['page_p50_s']:.2f} / {f['page_p99_s']:.2f} s",
         f"p99 < {ANCHOR_PAGE_P99_S:g} s"),
        ("live angles at the page", f"{f['live_events']} of {f['live_expected']} sent "
         f"({100 * f['live_events'] / max(1, f['live_expected']):.1f} %)",
         "all (QoS 0: an outage loses its own)"),
        ("live angles held", f"{f['live_per_s']:.0f} /s", f"{sent_per_s:.0f} /s sent "
         f"({offered:.0f} /s while every rig records)"),
        ("ingest CPU", f"{f['ingest_cpu_s']:.1f} s = {100 * cpu_frac:.1f} % of a core "
         f"({f['ingest_stored']} messages stored)", f"< {100 * ANCHOR_INGEST_CPU:.0f} %"),
        ("team page CPU", f"{f['team_cpu_s']:.1f} s = "
         f"{100 * f['team_cpu_s'] / f['wall_s']:.1f} % of a core (relaying the live angle)",
         "-"),
    ]
    w = max(len(r[0]) for r in rows)
    for label, value, anchor in rows:
        print(f"  {label:<{w}}  {value:<44} anchor {anchor}")


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.getLogger("dorsimeter.clinic").setLevel(logging.ERROR)  # reconnects are expected
    n_rigs = int(os.environ.get("DORSIMETER_CLINIC_RIGS", 50))
    minutes = float(os.environ.get("DORSIMETER_CLINIC_MINUTES", 10))
    speed = float(os.environ.get("DORSIMETER_CLINIC_SPEED", 4))
    if not shutil.which("mosquitto"):
        print("skipped: mosquitto not installed (scripts/system-deps.sh)")
        return 0
    bad = 0
    for name, restart in (("steady", False), ("broker restarted", True)):
        tmp = servers.private_tmp("dorsimeter-bench-clinic-")
        try:
            f = run(n_rigs, minutes, speed, restart, tmp)
            report(name, f, n_rigs, speed)
            bad += f["lost"] + f["duplicated"] + f["wrong"]
        finally:
            if not os.environ.get("DORSIMETER_CLINIC_KEEP"):  # to read the services' logs
                shutil.rmtree(tmp, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["page-reader"]:
        read_page(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
    else:
        sys.exit(main())
