"""The coach view: a web page for a tablet at the side of the room, read from the clinic's
PostgreSQL as the ``team`` role (SELECT only). Served by the standard library's threading HTTP
server: a few routes, no templates or JavaScript, so nothing to add to the dependencies.

A coach logs in with a per-coach token; tokens are kept hashed (scrypt, per-token salt) in an
owner-only file, compared in constant time; a login gives an HttpOnly, SameSite=Strict session
cookie (Secure over TLS). Every page but the login is refused without it."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import psycopg

from dorsimeter.clinic.pgschema import check
from dorsimeter.errors import DorsimeterError
from dorsimeter.paths import atomic_private_text

#: scrypt cost (RFC 7914's interactive-login figures: 16 MiB, well under 100 ms)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
SESSION_S = 12 * 3600.0
COOKIE = "dorsimeter_team"
MAX_FORM_BYTES = 4096


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
    sessions: int
    latest_utc: str
    latest: dict[str, float | None]   # the latest session's best per side
    best: dict[str, float | None]     # the best over all sessions, per side
    asym_percent: float | None        # the latest session's
    asym_band: str | None
    beyond_mdc: bool | None


ROWS_SQL = """
SELECT a.uuid::text, a.name, a.pseudonymous, a.rig, count(s.uuid),
       max(s.start_utc),
       (array_agg(s.left_best_deg ORDER BY s.start_utc DESC))[1],
       (array_agg(s.right_best_deg ORDER BY s.start_utc DESC))[1],
       max(s.left_best_deg), max(s.right_best_deg),
       (array_agg(s.asym_percent ORDER BY s.start_utc DESC))[1],
       (array_agg(s.asym_band ORDER BY s.start_utc DESC))[1],
       (array_agg(s.asym_beyond_mdc ORDER BY s.start_utc DESC))[1]
FROM athletes a JOIN sessions s ON s.athlete_uuid = a.uuid
GROUP BY a.uuid ORDER BY lower(coalesce(a.name, a.uuid::text))
"""


def athlete_rows(conn: psycopg.Connection) -> list[AthleteRow]:
    out = []
    for (uuid, name, pseudo, rig, n, latest_utc, l_last, r_last, l_best, r_best, pct, band,
         mdc) in conn.execute(ROWS_SQL):
        label = f"athlete {uuid[:8]}" if pseudo or not name else name
        out.append(AthleteRow(uuid, label, rig, n, latest_utc.isoformat(timespec="seconds"),
                              {"left": l_last, "right": r_last},
                              {"left": l_best, "right": r_best}, pct, band, mdc))
    return out


def rigs(conn: psycopg.Connection) -> list[tuple[str, bool, str]]:
    return [(r, on, seen.isoformat(timespec="seconds")) for r, on, seen in conn.execute(
        "SELECT rig, online, seen_utc FROM rigs ORDER BY rig")]


def _deg(v: float | None, cls: str) -> str:
    if v is None:
        return f'<td class="{cls}" data-value="">–</td>'
    return f'<td class="{cls}" data-value="{v!r}">{v:.1f}°</td>'


STYLE = ("body{font:16px system-ui,sans-serif;margin:1em}table{border-collapse:collapse}"
         "td,th{padding:.3em .6em;border-bottom:1px solid #ccc;text-align:right}"
         "td.name{text-align:left}.flag{color:#b00;font-weight:bold}")


def page(rows: list[AthleteRow], rig_list: list[tuple[str, bool, str]], coach: str) -> str:
    e = html.escape
    body = []
    for r in rows:
        pct = ('<td class="asym" data-value="">–</td>' if r.asym_percent is None else
               f'<td class="asym" data-value="{r.asym_percent!r}">{r.asym_percent:.1f} %</td>')
        flag = "beyond MDC" if r.beyond_mdc else ("within MDC" if r.beyond_mdc is False else "")
        body.append(
            f'<tr class="athlete" data-uuid="{e(r.uuid)}"><td class="name">{e(r.label)}</td>'
            f'<td class="rig">{e(r.rig)}</td><td class="sessions">{r.sessions}</td>'
            + _deg(r.latest["left"], "latest-left") + _deg(r.latest["right"], "latest-right")
            + _deg(r.best["left"], "best-left") + _deg(r.best["right"], "best-right")
            + pct + f'<td class="band">{e(r.asym_band or "")}</td>'
            f'<td class="mdc{" flag" if r.beyond_mdc else ""}">{flag}</td></tr>')
    rig_items = "".join(
        f'<li class="rig-{"online" if on else "offline"}" data-rig="{e(name)}">{e(name)}: '
        f'{"online" if on else "offline"} (seen {e(seen)})</li>' for name, on, seen in rig_list)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width"><title>dorsimeter team</title>'
            f'<style>{STYLE}</style></head><body><header>Signed in as {e(coach)}</header>'
            f'<h1>Athletes</h1><table id="athletes"><thead><tr><th>Athlete</th><th>Rig</th>'
            f'<th>Sessions</th><th>Latest L</th><th>Latest R</th><th>Best L</th><th>Best R</th>'
            f'<th>Asymmetry</th><th>Band</th><th>MDC</th></tr></thead><tbody>'
            f'{"".join(body)}</tbody></table><h2>Rigs</h2><ul id="rigs">{rig_items}</ul>'
            f'</body></html>')


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

    def render(self, coach: str) -> str:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return page(athlete_rows(conn), rigs(conn), coach)


def handler_for(app: TeamApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "dorsimeter-team"

        def log_message(self, format, *args) -> None:  # noqa: A002 - quiet by default
            pass

        def _send(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", "default-src 'none'; "
                             "style-src 'unsafe-inline'; form-action 'self'")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            if path == "/login":
                self._send(200, login_page())
                return
            if path != "/":
                self._send(404, "<p>not found</p>")
                return
            coach = app.coach(self.headers.get("Cookie"))
            if coach is None:
                self._send(401, login_page("Sign in to see the team."))
                return
            self._send(200, app.render(coach))

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
                tls_cert: Path | None = None, tls_key: Path | None = None
                ) -> ThreadingHTTPServer:
    """The page's server (not yet serving). Beyond loopback it needs TLS: tokens and health
    data never cross a network in the clear."""
    if bind not in LOOPBACK and tls_cert is None:
        raise DorsimeterError(f"--bind {bind}: beyond localhost the team page needs TLS "
                              "(--tls-cert and --tls-key)")
    if not load_coaches(coaches_path):
        raise DorsimeterError(f"{coaches_path}: no coach yet (dorsimeter team --add-coach NAME)")
    with psycopg.connect(dsn, autocommit=True) as conn:
        check(conn)
    app = TeamApp(dsn, coaches_path, secure_cookie=tls_cert is not None)
    server = ThreadingHTTPServer((bind, port), handler_for(app))
    server.daemon_threads = True
    if tls_cert is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server
