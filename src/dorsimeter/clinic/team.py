"""The coach view: a web page for a tablet at the side of the room, read from the clinic's
PostgreSQL as the ``team`` role (SELECT only). Served by the standard library's threading HTTP
server: a few routes and no templates, so nothing to add to the dependencies. With a broker
login (the ``team`` user: it may read presence and live topics only) it also relays the rigs'
live angle to the page as server-sent events, shown by one small script file (no inline script:
the CSP allows only the page's own).

A coach logs in with a per-coach token; tokens are kept hashed (scrypt, per-token salt) in an
owner-only file, compared in constant time; a login gives an HttpOnly, SameSite=Strict session
cookie (Secure over TLS). Every page but the login is refused without it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import json
import logging
import math
import queue
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import aiomqtt
import psycopg

from dorsimeter.clinic.mqtt import Broker, refused
from dorsimeter.clinic.pgschema import check
from dorsimeter.errors import DorsimeterError
from dorsimeter.paths import atomic_private_text

#: scrypt cost (RFC 7914's interactive-login figures: 16 MiB, well under 100 ms)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
SESSION_S = 12 * 3600.0
COOKIE = "dorsimeter_team"
MAX_FORM_BYTES = 4096
#: events a slow page may fall behind by before the oldest are dropped (a live view: only the
#: newest angle matters)
LIVE_BACKLOG = 256
LIVE_KEEPALIVE_S = 15.0
LOG = logging.getLogger("dorsimeter.clinic")


def live_event(rig: str, payload: bytes) -> dict | None:
    """A rig's live message as the page shows it, or None if it is not one (a rig writes only
    its own topic, but what it writes is still checked: numbers finite, side known)."""
    try:
        msg = json.loads(payload)
        event = {"rig": rig, "session_uuid": str(msg["session_uuid"]), "side": msg["side"],
                 "t_s": float(msg["t_s"]), "angle_deg": float(msg["angle_deg"])}
    except (ValueError, KeyError, TypeError):
        return None
    if event["side"] not in ("left", "right") or not (math.isfinite(event["t_s"])
                                                     and math.isfinite(event["angle_deg"])):
        return None
    return event


class LiveFeed:
    """The rigs' live angle for the page: a subscription to ``dorsimeter/<clinic>/+/live`` in a
    thread of its own (its own event loop: the HTTP server is threaded), the newest event per
    rig kept, each event handed to every open ``/live`` stream."""

    def __init__(self, broker: Broker, clinic: str, retry_s: float = 1.0) -> None:
        self.broker = broker
        self.clinic = clinic
        self.retry_s = retry_s
        self.latest: dict[str, bytes] = {}  # rig -> its newest event, encoded
        self.listeners: set[queue.Queue] = set()
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.error: str | None = None  # set when the broker refused the login (no retry)

    def start(self) -> None:
        threading.Thread(target=lambda: asyncio.run(self._run()), name="team-live",
                         daemon=True).start()

    async def _run(self) -> None:
        while True:
            try:  # a fresh client id each time: no session kept, QoS 0, a live view only
                async with self.broker.client(f"team-{self.clinic}-{secrets.token_hex(4)}"
                                              ) as client:
                    await client.subscribe(f"dorsimeter/{self.clinic}/+/live", qos=0)
                    self.subscribed.set()
                    async for message in client.messages:
                        parts = message.topic.value.split("/")
                        if len(parts) == 4:
                            self.deliver(parts[2], bytes(message.payload))  # type: ignore[arg-type]
            except aiomqtt.MqttError as e:
                if refused(e):
                    self.error = f"broker refused the team user: {e}"
                    LOG.error("%s", self.error)
                    return
                LOG.warning("broker %s:%s: %s; retrying", self.broker.host, self.broker.port, e)
                self.subscribed.clear()
                await asyncio.sleep(self.retry_s)

    def deliver(self, rig: str, payload: bytes) -> None:
        event = live_event(rig, payload)
        if event is None:
            return
        line = f"data: {json.dumps(event)}\n\n".encode()  # encoded once for every page
        with self.lock:
            self.latest[rig] = line
            for q in self.listeners:
                while True:
                    try:
                        q.put_nowait(line)
                        break
                    except queue.Full:
                        with contextlib.suppress(queue.Empty):
                            q.get_nowait()

    def listen(self) -> tuple[queue.Queue, list[bytes]]:
        """A new stream's queue, and the newest event of each rig to start it with (each an
        encoded server-sent event)."""
        q: queue.Queue = queue.Queue(LIVE_BACKLOG)
        with self.lock:
            self.listeners.add(q)
            return q, list(self.latest.values())

    def unlisten(self, q: queue.Queue) -> None:
        with self.lock:
            self.listeners.discard(q)


def hash_token(token: str, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(token.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_token(token: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, want = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(token.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p), maxmem=64 * 1024 * 1024, dklen=len(want) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), want)


def load_coaches(path: Path) -> dict[str, str]:
    """Coach name -> token hash, from the owner-only coaches file (JSON)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise DorsimeterError(f"{path}: line {getattr(e, 'lineno', 1)}: not JSON ({e})"
                              ) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise DorsimeterError(f"{path}: expected an object of coach name to token hash")
    return data


def add_coach(path: Path, name: str) -> str:
    """A new token for ``name`` (replacing any old one); only its hash is stored."""
    coaches = load_coaches(path)
    token = secrets.token_urlsafe(24)
    coaches[name] = hash_token(token)
    with atomic_private_text(path) as f:
        f.write(json.dumps(coaches, indent=2, sort_keys=True) + "\n")
    return token


@dataclass(frozen=True)
class AthleteRow:
    uuid: str
    label: str
    rig: str
    group: str | None
    sessions: int
    latest_utc: str
    latest: dict[str, float | None]   # the latest session's best per side
    best: dict[str, float | None]     # the best over all sessions, per side
    asym_percent: float | None        # the latest session's
    asym_band: str | None
    beyond_mdc: bool | None
    #: the wall-test trend: (start UTC, left best, right best) of each session, oldest first
    trend: list[tuple[str, float | None, float | None]]


@dataclass(frozen=True)
class Filter:
    """The page's filter: one group (or all), and a search in name, rig and UUID."""

    group: str | None = None
    search: str | None = None

    @classmethod
    def from_query(cls, query: str) -> Filter:
        q = parse_qs(query)
        group = (q.get("group") or [""])[0].strip()[:64] or None
        search = (q.get("q") or [""])[0].strip()[:64] or None
        return cls(group, search)


ROWS_SQL = """
SELECT a.uuid::text, a.name, a.pseudonymous, a.rig, a.athlete_group, count(s.uuid),
       max(s.start_utc),
       (array_agg(s.left_best_deg ORDER BY s.start_utc DESC))[1],
       (array_agg(s.right_best_deg ORDER BY s.start_utc DESC))[1],
       max(s.left_best_deg), max(s.right_best_deg),
       (array_agg(s.asym_percent ORDER BY s.start_utc DESC))[1],
       (array_agg(s.asym_band ORDER BY s.start_utc DESC))[1],
       (array_agg(s.asym_beyond_mdc ORDER BY s.start_utc DESC))[1],
       array_agg(s.start_utc ORDER BY s.start_utc, s.uuid),
       array_agg(s.left_best_deg ORDER BY s.start_utc, s.uuid),
       array_agg(s.right_best_deg ORDER BY s.start_utc, s.uuid)
FROM athletes a JOIN sessions s ON s.athlete_uuid = a.uuid
WHERE (%(group)s::text IS NULL OR a.athlete_group = %(group)s::text)
  AND (%(search)s::text IS NULL OR strpos(lower(coalesce(a.name, '') || ' ' || a.rig || ' '
       || a.uuid::text), lower(%(search)s::text)) > 0)
GROUP BY a.uuid ORDER BY lower(coalesce(a.name, a.uuid::text))
"""


def athlete_rows(conn: psycopg.Connection, where: Filter | None = None) -> list[AthleteRow]:
    where = where or Filter()
    out = []
    for (uuid, name, pseudo, rig, group, n, latest_utc, l_last, r_last, l_best, r_best, pct,
         band, mdc, t_utc, t_left, t_right) in conn.execute(
            ROWS_SQL, {"group": where.group, "search": where.search}):
        label = f"athlete {uuid[:8]}" if pseudo or not name else name
        trend = [(t.isoformat(timespec="seconds"), lv, rv)
                 for t, lv, rv in zip(t_utc, t_left, t_right, strict=True)]
        out.append(AthleteRow(uuid, label, rig, group, n,
                              latest_utc.isoformat(timespec="seconds"),
                              {"left": l_last, "right": r_last},
                              {"left": l_best, "right": r_best}, pct, band, mdc, trend))
    return out


def groups(conn: psycopg.Connection) -> list[str]:
    return [g for (g,) in conn.execute("SELECT DISTINCT athlete_group FROM athletes WHERE "
                                       "athlete_group IS NOT NULL ORDER BY 1")]


def rigs(conn: psycopg.Connection) -> list[tuple[str, bool, str]]:
    return [(r, on, seen.isoformat(timespec="seconds")) for r, on, seen in conn.execute(
        "SELECT rig, online, seen_utc FROM rigs ORDER BY rig")]


def _deg(v: float | None, cls: str) -> str:
    if v is None:
        return f'<td class="{cls}" data-value="">–</td>'
    return f'<td class="{cls}" data-value="{v!r}">{v:.1f}°</td>'


TREND_W, TREND_H, TREND_PAD = 160.0, 40.0, 4.0


def trend_svg(trend: list[tuple[str, float | None, float | None]]) -> str:
    """The wall-test trend as a small inline SVG (no script): each session's best per side, in
    order, each point carrying its stored number and date (``data-value``, ``data-utc``)."""
    values = [v for _, lv, rv in trend for v in (lv, rv) if v is not None]
    if not values:
        return '<svg class="trend" width="160" height="40"></svg>'
    lo, hi = min(values), max(values)
    span = hi - lo if hi > lo else 1.0
    n = len(trend)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = TREND_PAD + (TREND_W - 2 * TREND_PAD) * (i / (n - 1) if n > 1 else 0.5)
        y = TREND_H - TREND_PAD - (TREND_H - 2 * TREND_PAD) * (v - lo) / span
        return round(x, 1), round(y, 1)
    parts = []
    for side in ("left", "right"):
        pts = [(i, utc, v) for i, (utc, lv, rv) in enumerate(trend)
               if (v := lv if side == "left" else rv) is not None]
        line = " ".join(f"{x},{y}" for x, y in (xy(i, v) for i, _, v in pts))
        parts.append(f'<polyline class="{side}" points="{line}"/>')
        parts += [f'<circle class="{side}" cx="{x}" cy="{y}" r="2" data-side="{side}" '
                  f'data-value="{v!r}" data-utc="{html.escape(utc)}"/>'
                  for i, utc, v in pts for x, y in (xy(i, v),)]
    return (f'<svg class="trend" width="{TREND_W:.0f}" height="{TREND_H:.0f}" viewBox="0 0 '
            f'{TREND_W:.0f} {TREND_H:.0f}" role="img" aria-label="wall-test trend">'
            f'{"".join(parts)}</svg>')


STYLE = ("body{font:16px system-ui,sans-serif;margin:1em}table{border-collapse:collapse}"
         "td,th{padding:.3em .6em;border-bottom:1px solid #ccc;text-align:right}"
         "td.name{text-align:left}.flag{color:#b00;font-weight:bold}"
         ".trend polyline{fill:none;stroke-width:1.5}.trend .left{stroke:#06c;fill:#06c}"
         ".trend .right{stroke:#c60;fill:#c60}.trend polyline.left,.trend polyline.right"
         "{fill:none}.live{font-weight:bold}")


def page(rows: list[AthleteRow], rig_list: list[tuple[str, bool, str]], coach: str,
         group_list: list[str] | None = None, where: Filter | None = None,
         live: bool = False) -> str:
    e = html.escape
    where = where or Filter()
    body = []
    for r in rows:
        pct = ('<td class="asym" data-value="">–</td>' if r.asym_percent is None else
               f'<td class="asym" data-value="{r.asym_percent!r}">{r.asym_percent:.1f} %</td>')
        flag = "beyond MDC" if r.beyond_mdc else ("within MDC" if r.beyond_mdc is False else "")
        body.append(
            f'<tr class="athlete" data-uuid="{e(r.uuid)}"><td class="name">{e(r.label)}</td>'
            f'<td class="rig">{e(r.rig)}</td><td class="group">{e(r.group or "")}</td>'
            f'<td class="sessions">{r.sessions}</td>'
            + _deg(r.latest["left"], "latest-left") + _deg(r.latest["right"], "latest-right")
            + _deg(r.best["left"], "best-left") + _deg(r.best["right"], "best-right")
            + pct + f'<td class="band">{e(r.asym_band or "")}</td>'
            f'<td class="mdc{" flag" if r.beyond_mdc else ""}">{flag}</td>'
            f'<td class="trend">{trend_svg(r.trend)}</td></tr>')
    rig_items = "".join(
        f'<li class="rig-{"online" if on else "offline"}" data-rig="{e(name)}">{e(name)}: '
        f'{"online" if on else "offline"} (seen {e(seen)}) <span class="live"></span></li>'
        for name, on, seen in rig_list)
    options = "".join(f'<option value="{e(g)}"{" selected" if g == where.group else ""}>'
                      f'{e(g)}</option>' for g in (group_list or []))
    form = ('<form id="filter" method="get" action="/"><label>Group <select id="group" '
            f'name="group"><option value="">all</option>{options}</select></label> '
            f'<label>Search <input id="q" name="q" value="{e(where.search or "")}"></label> '
            '<button id="apply" type="submit">Show</button></form>')
    script = '<script src="/team.js"></script>' if live else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width"><title>dorsimeter team</title>'
            f'<style>{STYLE}</style>{script}</head><body><header>Signed in as {e(coach)}'
            f'</header><h1>Athletes</h1>{form}<table id="athletes"><thead><tr><th>Athlete</th>'
            f'<th>Rig</th><th>Group</th><th>Sessions</th><th>Latest L</th><th>Latest R</th>'
            f'<th>Best L</th><th>Best R</th><th>Asymmetry</th><th>Band</th><th>MDC</th>'
            f'<th>Trend (best L, R)</th></tr></thead><tbody>{"".join(body)}</tbody></table>'
            f'<h2>Rigs</h2><ul id="rigs">{rig_items}</ul></body></html>')


#: the page's only script: the live angle per rig from ``/live`` (server-sent events); text
#: goes in with textContent only (never as HTML)
TEAM_JS = """"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("rigs");
  const events = new EventSource("/live");
  events.onmessage = (e) => {
    const m = JSON.parse(e.data);
    let li = [...list.children].find((x) => x.dataset.rig === m.rig);
    if (!li) {
      li = document.createElement("li");
      li.dataset.rig = m.rig;
      li.textContent = m.rig + ": ";
      li.append(document.createElement("span"));
      li.lastChild.className = "live";
      list.append(li);
    }
    const span = li.querySelector(".live");
    span.dataset.value = String(m.angle_deg);
    span.dataset.side = m.side;
    span.dataset.t = String(m.t_s);
    span.dataset.session = m.session_uuid;
    span.textContent = "testing: " + m.side + " " + m.angle_deg.toFixed(1) + "°";
  };
});
"""


def login_page(message: str = "") -> str:
    msg = f'<p class="error">{html.escape(message)}</p>' if message else ""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>dorsimeter '
            f'team: sign in</title><style>{STYLE}</style></head><body><h1>Sign in</h1>{msg}'
            '<form id="login" method="post" action="/login"><label>Coach token '
            '<input id="token" name="token" type="password" autocomplete="current-password">'
            '</label> <button id="submit" type="submit">Sign in</button></form></body></html>')


@dataclass
class TeamApp:
    dsn: str
    coaches_path: Path
    secure_cookie: bool = False
    live: LiveFeed | None = None
    sessions: dict[str, tuple[str, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def login(self, token: str) -> str | None:
        """A new session id for a valid token, else None (every coach's hash is tried, so
        the time taken does not say which coach nearly matched)."""
        who = None
        for name, stored in load_coaches(self.coaches_path).items():
            if verify_token(token, stored) and who is None:
                who = name
        if who is None:
            return None
        sid = secrets.token_urlsafe(32)
        with self.lock:
            self.sessions[sid] = (who, time.monotonic() + SESSION_S)
        return sid

    def coach(self, cookie_header: str | None) -> str | None:
        if not cookie_header:
            return None
        c = SimpleCookie()
        try:
            c.load(cookie_header)
        except Exception:  # a malformed header is no login
            return None
        if COOKIE not in c:
            return None
        with self.lock:
            got = self.sessions.get(c[COOKIE].value)
            if got is None or got[1] < time.monotonic():
                self.sessions.pop(c[COOKIE].value, None)
                return None
            return got[0]

    def render(self, coach: str, where: Filter | None = None) -> str:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return page(athlete_rows(conn, where), rigs(conn), coach, groups(conn), where,
                        live=self.live is not None)


def handler_for(app: TeamApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "dorsimeter-team"

        def log_message(self, format, *args) -> None:  # noqa: A002 - quiet by default
            pass

        def _head(self, status: int, content_type: str, length: int | None,
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            # scripts and connections only from the page's own origin (its one script file
            # and its /live stream): no inline script, nothing from elsewhere
            self.send_header("Content-Security-Policy", "default-src 'none'; "
                             "style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; "
                             "form-action 'self'; frame-ancestors 'none'")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()

        def _send(self, status: int, body: str, headers: dict[str, str] | None = None,
                  content_type: str = "text/html; charset=utf-8") -> None:
            data = body.encode()
            self._head(status, content_type, len(data), headers)
            self.wfile.write(data)

        def _live(self, feed: LiveFeed) -> None:
            """Server-sent events: the newest angle of each rig, then each new one."""
            self._head(200, "text/event-stream; charset=utf-8", None)
            q, first = feed.listen()
            try:
                self.wfile.write(b"".join(first) or b": start\n\n")
                while True:
                    try:  # what has come since, in one write (one send for many rigs' events)
                        batch = [q.get(timeout=LIVE_KEEPALIVE_S)]
                        with contextlib.suppress(queue.Empty):
                            while len(batch) < LIVE_BACKLOG:
                                batch.append(q.get_nowait())
                        self.wfile.write(b"".join(batch))
                    except queue.Empty:
                        self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
            except OSError:  # the page went away
                pass
            finally:
                feed.unlisten(q)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path, _, query = self.path.partition("?")
            if path == "/login":
                self._send(200, login_page())
                return
            if path == "/team.js" and app.live is not None:
                self._send(200, TEAM_JS, content_type="text/javascript; charset=utf-8")
                return
            if path not in ("/", "/live") or (path == "/live" and app.live is None):
                self._send(404, "<p>not found</p>")
                return
            coach = app.coach(self.headers.get("Cookie"))
            if coach is None:
                self._send(401, login_page("Sign in to see the team."))
                return
            if path == "/live" and app.live is not None:
                self._live(app.live)
                return
            self._send(200, app.render(coach, Filter.from_query(query)))

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/login":
                self._send(404, "<p>not found</p>")
                return
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_FORM_BYTES:
                self._send(413, login_page("Too long."))
                return
            form = parse_qs(self.rfile.read(n).decode("utf-8", "replace"))
            sid = app.login((form.get("token") or [""])[0])
            if sid is None:
                self._send(401, login_page("Unknown token."))
                return
            flags = "; Secure" if app.secure_cookie else ""
            self._send(303, "", {"Location": "/", "Set-Cookie": f"{COOKIE}={sid}; HttpOnly; "
                                 f"SameSite=Strict; Path=/; Max-Age={int(SESSION_S)}{flags}"})

    return Handler


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def make_server(bind: str, port: int, dsn: str, coaches_path: Path,
                tls_cert: Path | None = None, tls_key: Path | None = None,
                live: LiveFeed | None = None) -> ThreadingHTTPServer:
    """The page's server (not yet serving). Beyond loopback it needs TLS: tokens and health
    data never cross a network in the clear. ``live``: the rigs' live angle (started here)."""
    if bind not in LOOPBACK and tls_cert is None:
        raise DorsimeterError(f"--bind {bind}: beyond localhost the team page needs TLS "
                              "(--tls-cert and --tls-key)")
    if not load_coaches(coaches_path):
        raise DorsimeterError(f"{coaches_path}: no coach yet (dorsimeter team --add-coach NAME)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        check(conn)
    app = TeamApp(dsn, coaches_path, secure_cookie=tls_cert is not None, live=live)
    if live is not None:
        live.start()
    server = ThreadingHTTPServer((bind, port), handler_for(app))
    server.daemon_threads = True
    if tls_cert is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server
