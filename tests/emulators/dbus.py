"""A private D-Bus system bus: a real ``dbus-daemon`` started for a test, a benchmark or a demo.

bleak's BlueZ backend connects to the *system* bus; pointing ``DBUS_SYSTEM_BUS_ADDRESS`` at a
private daemon lets the fake ``org.bluez`` own that name without root and without touching the
machine's own Bluetooth stack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dorsimeter.errors import DorsimeterError

ENV_VAR = "DBUS_SYSTEM_BUS_ADDRESS"

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""


class PrivateBus:
    """A ``dbus-daemon`` with a permissive system-bus policy in a temporary directory."""

    def __init__(self) -> None:
        self.address: str | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> str:
        """Start the daemon; returns its address (also in ``self.address``)."""
        exe = shutil.which("dbus-daemon")
        if exe is None:
            raise DorsimeterError("dbus-daemon not found: run scripts/system-deps.sh "
                                  "(or apt-get install dbus-daemon)")
        self._dir = tempfile.TemporaryDirectory(prefix="dorsimeter-dbus-")
        conf = Path(self._dir.name) / "bus.conf"
        conf.write_text(_CONFIG.format(dir=self._dir.name))
        self._proc = subprocess.Popen(
            [exe, f"--config-file={conf}", "--nofork", "--nopidfile", "--print-address=1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line:
            self.stop()
            raise DorsimeterError("dbus-daemon started but printed no address")
        self.address = line
        return line

    def stop(self) -> None:
        """Stop the daemon (this process's child only) and remove its directory."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def env(self) -> dict[str, str]:
        """This process's environment with the system bus pointed at the private daemon."""
        assert self.address is not None
        return dict(os.environ, **{ENV_VAR: self.address})


@contextmanager
def private_system_bus() -> Iterator[PrivateBus]:
    """Start a private bus and point this process's ``DBUS_SYSTEM_BUS_ADDRESS`` at it.

    Restores the previous value afterwards. bleak reads the variable on each connection, so
    everything inside the block uses the private bus.
    """
    bus = PrivateBus()
    old = os.environ.get(ENV_VAR)
    try:
        os.environ[ENV_VAR] = bus.start()
        yield bus
    finally:
        bus.stop()
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old
