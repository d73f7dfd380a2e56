"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages, NUL-terminated, on the child's fds 3 and 4), so a test can type into a page,
click and read what the browser shows, with nothing but the standard library."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium"
                                         if os.path.exists("/usr/bin/chromium") else None)


class Browser:
    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        cmd_r, self._cmd_w = os.pipe()
        self._ev_r, ev_w = os.pipe()

        def child_fds() -> None:  # fds 3 and 4, whatever numbers the pipes got
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(ev_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--password-store=basic", f"--user-data-dir={profile}",
             "about:blank"], pass_fds=(3, 4), preexec_fn=child_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(cmd_r)
        os.close(ev_w)
        self._next = 0
        self._replies: dict[int, queue.Queue] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session: str | None = None

    def _read(self) -> None:
        buf = b""
        with open(self._ev_r, "rb", buffering=0) as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    return
                buf += chunk
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    msg = json.loads(raw)
                    if "id" in msg:
                        with self._lock:
                            q = self._replies.get(msg["id"])
                        if q is not None:
                            q.put(msg)

    def send(self, method: str, timeout_s: float = 60.0, session: bool = True, **params):
        with self._lock:
            self._next += 1
            mid = self._next
            q: queue.Queue = queue.Queue()
            self._replies[mid] = q
        msg = {"id": mid, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        try:
            reply = q.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"chromium: no reply to {method} in {timeout_s:.0f} s") from None
        if "error" in reply:
            raise AssertionError(f"chromium: {method}: {reply['error']}")
        return reply["result"]

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", session=False, url="about:blank")
        self.session = self.send("Target.attachToTarget", session=False,
                                 targetId=target["targetId"], flatten=True)["sessionId"]
        self.send("Page.enable")
        self.send("Page.navigate", url=url)

    def eval(self, expression: str):
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def until(self, expression: str, what: str, timeout_s: float = 120.0):
        """Poll a script until it gives something true (the page loads on its own time)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(AssertionError):  # mid-navigation: no context yet
                got = self.eval(expression)
                if got:
                    return got
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._cmd_w)  # chromium exits when its pipe closes
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
            self.proc.wait()
