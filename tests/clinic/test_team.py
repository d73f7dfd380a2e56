"""The coach page in real headless Chromium: it logs in with a coach's token, and the numbers
it shows are the clinic database's, exactly; without a login (or with a wrong token) the page
is refused and shows no athlete."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from dorsimeter.clinic.ingest import apply
from dorsimeter.clinic.outbox import session_message
from dorsimeter.clinic.team import hash_token, verify_token
from dorsimeter.store import Store
from tests.clinic.cdp import CHROMIUM, Browser
from tests.clinic.conftest import CLINIC, broker_args, dsn_file, pg, run_cli, wait_for
from tests.export.sessions import stored_session

READ_ROWS = """JSON.stringify([...document.querySelectorAll('tr.athlete')].map(tr => {
  const cell = (c) => ({text: tr.querySelector('.' + c).innerText,
                        value: tr.querySelector('.' + c).dataset.value});
  return {uuid: tr.dataset.uuid, name: tr.querySelector('.name').innerText,
          sessions: tr.querySelector('.sessions').innerText,
          band: tr.querySelector('.band').innerText,
          cells: Object.fromEntries(['latest-left', 'latest-right', 'best-left', 'best-right',
                                     'asym'].map(c => [c, cell(c)]))};
}))"""


HOSTILE = '<img src=x onerror="document.title=1">&amp;'


def test_tokens_are_hashed_with_scrypt_and_checked():
    stored = hash_token("s3cret")
    assert stored.startswith("scrypt$16384$8$1$") and "s3cret" not in stored
    assert verify_token("s3cret", stored)
    assert not verify_token("s3cret ", stored)
    assert hash_token("s3cret") != stored  # salted


@pytest.fixture(scope="module")
def team(services, tmp_path_factory):
    """Two rigs' sessions stored by the real ingest code, and `dorsimeter team` serving."""
    from tests.clinic.conftest import Proc

    tmp = tmp_path_factory.mktemp("team")
    with pg(services, "ingest") as conn:
        for rig, athlete, pseudo, group, seeds in (
                ("r1", "Ana Team", False, "squad-a", [(1, 2), (3, 4), (7, 8)]),
                ("r2", "Ben Secret", True, "squad-b", [(5, 6)]),
                ("r3", HOSTILE, False, "squad-b", [(9, 10)])):
            with Store.open(tmp / rig) as store:
                for s in seeds:
                    sid = stored_session(store, 20.0, athlete=athlete, seeds=s)
                    msg = session_message(store, sid, pseudonymous=pseudo, group=group)
                    apply(conn, CLINIC, f"dorsimeter/{CLINIC}/{rig}/session",
                          json.dumps(msg).encode())
            apply(conn, CLINIC, f"dorsimeter/{CLINIC}/{rig}/presence", b'{"online": true}')
    coaches = tmp / "coaches.json"
    out = run_cli(["team", "--coaches", str(coaches), "--add-coach", "coach1"])
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token and token not in coaches.read_text()  # only its hash is kept
    proc = Proc(["team", "--coaches", str(coaches), "--dsn-file", str(dsn_file(services, "team")),
                 "--port", "0", *broker_args(services, "team")], tmp / "team.log")
    try:
        url = wait_for(lambda: (m := re.search(r"team page on (http://\S+)", proc.text()))
                       and m.group(1) or proc.p.poll() is not None and "dead",
                       "the team page to listen")
        assert url != "dead", proc.text()
        yield url, token
    finally:
        proc.kill()


def _status(url: str, data: bytes | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_the_page_is_refused_without_a_login(team):
    url, token = team
    status, body = _status(url)
    assert status == 401 and "Sign in" in body and "Ana Team" not in body
    status, body = _status(url + "login", b"token=wrong-token")
    assert status == 401 and "Ana Team" not in body
    # a forged session cookie is no login either
    req = urllib.request.Request(url, headers={"Cookie": "dorsimeter_team=forged"})
    try:
        urllib.request.urlopen(req, timeout=60)
        raise AssertionError("a forged cookie was let in")
    except urllib.error.HTTPError as e:
        assert e.code == 401


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/system-deps.sh)")
def test_chromium_logs_in_and_shows_the_stored_numbers(team, services, tmp_path):
    url, token = team
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(url)
        text = browser.until("document.readyState === 'complete' && "
                             "document.querySelector('#token') && document.body.innerText",
                             "the login page")
        assert "Ana Team" not in text
        browser.eval(f"document.querySelector('#token').value = {json.dumps(token)}; "
                     "document.querySelector('#submit').click(); true")
        rows = json.loads(browser.until(
            "location.pathname === '/' && document.readyState === 'complete' && "
            f"document.querySelector('#athletes') && ({READ_ROWS})", "the team table"))
        rigs = browser.eval("[...document.querySelectorAll('#rigs li')].map(li => "
                            "li.dataset.rig + ' ' + li.className)")
    finally:
        browser.close()
    shown = {r["uuid"]: r for r in rows}
    with pg(services, "team") as conn:
        db = {str(u): (name, n, latest_l, latest_r, best_l, best_r, pct, band) for
              u, name, n, latest_l, latest_r, best_l, best_r, pct, band in conn.execute(
                  "SELECT a.uuid, a.name, count(*), "
                  "(SELECT left_best_deg FROM sessions l WHERE l.athlete_uuid = a.uuid "
                  " ORDER BY start_utc DESC LIMIT 1), "
                  "(SELECT right_best_deg FROM sessions l WHERE l.athlete_uuid = a.uuid "
                  " ORDER BY start_utc DESC LIMIT 1), max(s.left_best_deg), "
                  "max(s.right_best_deg), "
                  "(SELECT asym_percent FROM sessions l WHERE l.athlete_uuid = a.uuid "
                  " ORDER BY start_utc DESC LIMIT 1), "
                  "(SELECT asym_band FROM sessions l WHERE l.athlete_uuid = a.uuid "
                  " ORDER BY start_utc DESC LIMIT 1) "
                  "FROM athletes a JOIN sessions s ON s.athlete_uuid = a.uuid GROUP BY a.uuid")}
    assert set(shown) == set(db)  # every athlete, no other
    names = {v[0] for v in db.values()}
    assert "Ana Team" in names and "Ben Secret" not in names and None in names
    for uuid, (name, n, *values, band) in db.items():
        row = shown[uuid]
        assert row["name"] == (name if name else f"athlete {uuid[:8]}")
        assert int(row["sessions"]) == n
        for cls, v in zip(("latest-left", "latest-right", "best-left", "best-right", "asym"),
                          values, strict=True):
            cell = row["cells"][cls]
            if v is None:
                assert cell["value"] == ""
                continue
            assert float(cell["value"]) == v  # the stored number, exactly
            unit = " %" if cls == "asym" else "°"
            assert cell["text"] == f"{v:.1f}{unit}"
        assert row["band"] == (band or "")
    ana = next(r for r in rows if r["name"] == "Ana Team")
    assert int(ana["sessions"]) >= 2
    assert "r1 rig-online" in rigs and "r2 rig-online" in rigs


def test_beyond_localhost_the_page_needs_tls(services, tmp_path):
    coaches = tmp_path / "coaches.json"
    assert run_cli(["team", "--coaches", str(coaches), "--add-coach", "c"]).returncode == 0
    out = run_cli(["team", "--coaches", str(coaches), "--dsn-file",
                   str(dsn_file(services, "team")), "--bind", "0.0.0.0", "--port", "0"])
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "needs TLS" in out.stderr


def test_over_tls_the_login_cookie_is_secure(services, tmp_path):
    import http.client
    import ssl

    from tests.clinic.conftest import Proc

    coaches = tmp_path / "coaches.json"
    token = run_cli(["team", "--coaches", str(coaches), "--add-coach", "c"]).stdout.strip()
    tls = services.broker.tls  # a certificate for localhost signed by the clinic's CA
    proc = Proc(["team", "--coaches", str(coaches), "--dsn-file",
                 str(dsn_file(services, "team")), "--port", "0", "--tls-cert", tls["cert"],
                 "--tls-key", tls["key"]], tmp_path / "team.log")
    try:
        port = int(wait_for(lambda: (m := re.search(r"https://127\.0\.0\.1:(\d+)/",
                                                    proc.text())) and m.group(1)
                            or proc.p.poll() is not None and "0", "the TLS page"))
        assert port, proc.text()
        ctx = ssl.create_default_context(cafile=tls["ca"])
        conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=60)
        conn.request("GET", "/")
        r = conn.getresponse()
        assert r.status == 401 and "Ana Team" not in r.read().decode()
        conn.request("POST", "/login", body=f"token={token}",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        r.read()
        cookie = r.getheader("Set-Cookie") or ""
        assert r.status == 303 and "Secure" in cookie and "HttpOnly" in cookie
        conn.request("GET", "/", headers={"Cookie": cookie.split(";")[0]})
        r = conn.getresponse()
        assert r.status == 200 and 'id="athletes"' in r.read().decode()
        conn.close()
    finally:
        proc.kill()


def _signed_in(browser: Browser, url: str, token: str) -> None:
    browser.open(url)
    browser.until("document.readyState === 'complete' && !!document.querySelector('#token')",
                  "the login page")
    browser.eval(f"document.querySelector('#token').value = {json.dumps(token)}; "
                 "document.querySelector('#submit').click(); true")
    browser.until("location.pathname === '/' && document.readyState === 'complete' && "
                  "!!document.querySelector('#athletes')", "the team table")


READ_TRENDS = """JSON.stringify(Object.fromEntries([...document.querySelectorAll('tr.athlete')]
  .map(tr => [tr.dataset.uuid, {group: tr.querySelector('.group').innerText,
    name: tr.querySelector('.name').innerText,
    left: [...tr.querySelectorAll('circle.left')].map(c => [c.dataset.utc, c.dataset.value]),
    right: [...tr.querySelectorAll('circle.right')].map(c => [c.dataset.utc, c.dataset.value])
  }])))"""


def _stored_trends(services) -> dict[str, dict]:
    with pg(services, "team") as conn:
        out: dict[str, dict] = {}
        for u, group, start, left, right in conn.execute(
                "SELECT a.uuid, a.athlete_group, s.start_utc, s.left_best_deg, s.right_best_deg "
                "FROM athletes a JOIN sessions s ON s.athlete_uuid = a.uuid "
                "ORDER BY s.start_utc, s.uuid"):
            row = out.setdefault(str(u), {"group": group or "", "left": [], "right": []})
            utc = start.isoformat(timespec="seconds")
            for side, v in (("left", left), ("right", right)):
                if v is not None:
                    row[side].append((utc, v))
        return out


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/system-deps.sh)")
def test_chromium_shows_trends_groups_and_filters(team, services, tmp_path):
    """Each athlete's wall-test trend is every session's stored best per side, in order; the
    group filter and the search show only the matching athletes; a hostile name is text."""
    url, token = team
    want = _stored_trends(services)
    browser = Browser(tmp_path / "profile")
    try:
        _signed_in(browser, url, token)
        shown = json.loads(browser.eval(READ_TRENDS))
        hostile = [r for r in shown.values() if r["name"] == HOSTILE]
        n_scripts = browser.eval("document.scripts.length")
        title = browser.eval("document.title")
        browser.eval("document.querySelector('#group').value = 'squad-b'; "
                     "document.querySelector('#apply').click(); true")
        squad_b = json.loads(browser.until(
            "location.search.includes('group=squad-b') && document.readyState === 'complete' "
            f"&& document.querySelector('#athletes') && ({READ_TRENDS})", "the squad-b rows"))
        browser.eval("document.querySelector('#group').value = ''; "
                     "document.querySelector('#q').value = 'ANA team'; "
                     "document.querySelector('#apply').click(); true")
        found = json.loads(browser.until(
            "location.search.includes('q=ANA+team') && document.readyState === 'complete' "
            f"&& document.querySelector('#athletes') && ({READ_TRENDS})", "the search rows"))
    finally:
        browser.close()
    assert set(shown) == set(want)
    for uuid, row in want.items():
        assert shown[uuid]["group"] == row["group"]
        for side in ("left", "right"):  # the stored numbers, exactly, in session order
            assert [(u, float(v)) for u, v in shown[uuid][side]] == row[side]
    ana = next(r for r in shown.values() if r["name"] == "Ana Team")
    assert len(ana["left"]) == 3  # three sessions: three points
    assert len(hostile) == 1 and n_scripts == 1 and title == "dorsimeter team"  # inert text
    assert set(squad_b) == {u for u, r in want.items() if r["group"] == "squad-b"}
    assert len(squad_b) == 2 and all(r["group"] == "squad-b" for r in squad_b.values())
    assert [r["name"] for r in found.values()] == ["Ana Team"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/system-deps.sh)")
async def test_chromium_shows_each_rigs_live_angle(team, services, tmp_path):
    """Two rigs send live angles through the real broker; the page (its script, the /live
    stream) shows each rig's newest value, exactly as sent."""
    import asyncio

    from tests.clinic.test_live import user_broker

    url, token = team
    browser = Browser(tmp_path / "profile")
    sent = {"r1": ("left", 12.345678901234567), "r2": ("right", -3.0000000000000004)}
    read = ("JSON.stringify(Object.fromEntries([...document.querySelectorAll('#rigs li')]"
            ".map(li => [li.dataset.rig, li.querySelector('.live') && "
            "[li.querySelector('.live').dataset.side, li.querySelector('.live').dataset.value,"
            " li.querySelector('.live').innerText]])))")
    try:
        await asyncio.to_thread(_signed_in, browser, url, token)
        got: dict = {}
        for _ in range(600):  # QoS 0: sent again until the page's subscription has them
            for rig, (side, angle) in sent.items():
                async with user_broker(services, rig).client(f"t-page-{rig}") as c:
                    await c.publish(f"dorsimeter/{CLINIC}/{rig}/live", json.dumps(
                        {"session_uuid": "s-" + rig, "side": side, "t_s": 1.5,
                         "angle_deg": angle}), qos=0)
            got = json.loads(await asyncio.to_thread(browser.eval, read))
            if all((got.get(r) or [None, None])[1] is not None for r in sent):
                break
            await asyncio.sleep(0.2)
    finally:
        browser.close()
    for rig, (side, angle) in sent.items():
        assert got[rig][0] == side and float(got[rig][1]) == angle, got
        assert got[rig][2] == f"testing: {side} {angle:.1f}°"


def test_the_live_stream_needs_a_login(team):
    url, _ = team
    status, body = _status(url + "live")
    assert status == 401 and "data:" not in body
