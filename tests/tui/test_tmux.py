"""The real ``dorsimeter demo`` (the .venv console script) in a real terminal (tmux): the angle
is on the screen, it changes as the simulated athlete drives the knee, q quits cleanly and the
session is stored."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dorsimeter.store import Store
from tests.conftest import end_tmux_server, tmux_socket

TMUX = shutil.which("tmux")
SCRIPT = Path(sys.executable).with_name("dorsimeter")


def tmux(*args: str, socket: str) -> str:
    return subprocess.run([TMUX, "-L", socket, *args], check=True, capture_output=True,
                          text=True, timeout=20).stdout


@pytest.fixture
def socket(request):
    """A private tmux server for one test, killed with its panes' process groups afterwards
    (also when the test fails or is interrupted; tests/conftest.py is the backstop)."""
    name = tmux_socket(request.node.name[:40])
    yield name
    end_tmux_server(name)


def poll(cond, timeout_s: float, step_s: float = 0.25) -> bool:
    """Whether ``cond()`` came true before the deadline (checked once more at it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step_s)
    return bool(cond())


def angle_on_screen(screen: str) -> str | None:
    """The per-side row of the current leg and the gauge prove the monitor is up; the angle
    itself is drawn in block digits, so read it back from the block glyph rows."""
    from dorsimeter.tui.widgets import _GLYPHS

    lines = screen.splitlines()
    for i in range(len(lines) - 4):
        rows = lines[i:i + 5]
        text = decode_big(rows, _GLYPHS)
        if text and re.fullmatch(r"-?\d+\.\d°", text):
            return text
    return None


def decode_big(rows: list[str], glyphs: dict) -> str | None:
    """Read block-font text (scale 1, glyphs one column apart) back from five screen rows."""
    width = max(len(r) for r in rows)
    rows = [r.ljust(width + 1) for r in rows]
    col, out = 0, ""
    while col < width:
        for ch, g in glyphs.items():
            w = len(g[0])
            if ch != " " and all(rows[k][col:col + w] == g[k] for k in range(5)) and all(
                    r[col + w] == " " for r in rows):
                out += ch
                col += w + 1
                break
        else:
            if out or any(r[col] != " " for r in rows):
                break
            col += 1  # blank columns before the text
    return out or None


@pytest.mark.slow  # the real console script in a terminal, ~25 s each
@pytest.mark.skipif(TMUX is None, reason="tmux not installed (make system-deps)")
def test_demo_in_tmux_shows_a_moving_angle_and_quits(tmp_path, socket):
    assert SCRIPT.exists(), f"console script missing: {SCRIPT}"
    env_home = tmp_path / "home"
    done = tmp_path / "exit-code"
    cmd = (f"cd {tmp_path} && DORSIMETER_HOME={env_home} {SCRIPT} demo; "
           f"echo $? > {done}; sleep 60")
    tmux("new-session", "-d", "-s", "demo", "-x", "100", "-y", "30", cmd, socket=socket)
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 90  # a deadline, not a count: the machine may be busy
        while time.monotonic() < deadline:
            screen = tmux("capture-pane", "-p", "-t", "demo", socket=socket)
            angle = angle_on_screen(screen)
            if angle is not None and (not seen or angle != seen[-1]):
                seen.append(angle)
            if len(set(seen)) >= 3:
                break
            time.sleep(0.5)
        assert "tibia angle" in screen and "per side" in screen and "q Quit" in screen, screen
        assert len(set(seen)) >= 3, (seen, screen)  # the angle is shown and changes
        values = [float(a.rstrip("°")) for a in seen]
        assert all(-5 < v < 50 for v in values) and max(values) - min(values) > 1.0
        tmux("send-keys", "-t", "demo", "q", socket=socket)
        # quitting stores the session first
        assert poll(done.exists, 60), tmux("capture-pane", "-p", "-t", "demo", socket=socket)
        out = tmux("capture-pane", "-p", "-t", "demo", socket=socket)
        assert done.read_text().strip() == "0", out
        sid = int(re.search(r"stored session (\d+)", out).group(1))
        with Store.open(env_home) as db:
            assert db.session(sid).ended and db.count_samples(sid) > 0
    finally:
        end_tmux_server(socket)


def both_angles_on_screen(screen: str) -> dict[str, str | None]:
    """The two-sensor monitor's two big angles: the screen cut at the right leg's panel."""
    lines = screen.splitlines()
    label = next((ln for ln in lines if "LEFT" in ln and "RIGHT" in ln and "Hz" not in ln), None)
    if label is None:
        return {"left": None, "right": None}
    cut = label.index("RIGHT") - (3 if "▶ RIGHT" in label else 1)
    return {"left": angle_on_screen("\n".join(ln[:cut] for ln in lines)),
            "right": angle_on_screen("\n".join(ln[cut:] for ln in lines))}


@pytest.mark.slow  # the real console script in a terminal, ~25 s each
@pytest.mark.skipif(TMUX is None, reason="tmux not installed (make system-deps)")
def test_demo_both_in_tmux_shows_two_moving_angles_and_stores_both_legs(tmp_path, socket):
    env_home = tmp_path / "home"
    done = tmp_path / "exit-code"
    cmd = (f"cd {tmp_path} && DORSIMETER_HOME={env_home} {SCRIPT} demo --both; "
           f"echo $? > {done}; sleep 60")
    tmux("new-session", "-d", "-s", "demo", "-x", "100", "-y", "30", cmd, socket=socket)
    try:
        seen: dict[str, list[str]] = {"left": [], "right": []}
        deadline = time.monotonic() + 90  # a deadline, not a count: the machine may be busy
        while time.monotonic() < deadline:
            screen = tmux("capture-pane", "-p", "-t", "demo", socket=socket)
            for side, angle in both_angles_on_screen(screen).items():
                if angle is not None and (not seen[side] or angle != seen[side][-1]):
                    seen[side].append(angle)
            if all(len(set(v)) >= 3 for v in seen.values()):
                break
            time.sleep(0.5)
        assert "both legs" in screen and "per side" in screen and "q Quit" in screen, screen
        assert screen.count(" Hz ") == 2, screen  # a line per sensor
        for side, values in seen.items():  # each leg's angle is shown and changes on its own
            assert len(set(values)) >= 3, (side, seen, screen)
            deg = [float(a.rstrip("°")) for a in values]
            assert all(-5 < v < 50 for v in deg) and max(deg) - min(deg) > 1.0, (side, seen)
        tmux("send-keys", "-t", "demo", "q", socket=socket)
        poll(done.exists, 60)
        out = tmux("capture-pane", "-p", "-t", "demo", socket=socket)
        assert done.exists() and done.read_text().strip() == "0", out
        sid = int(re.search(r"stored session (\d+)", out).group(1))
        with Store.open(env_home) as db:
            assert db.session(sid).ended
            assert set(db.samples(sid).side) == {"left", "right"}
    finally:
        end_tmux_server(socket)
