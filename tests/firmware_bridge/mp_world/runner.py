"""Runs the real firmware (``firmware_bridge/main.py``) under the MicroPython unix port inside the
world of ``world.py``: ``micropython runner.py SCENARIO.json`` (MicroPython only)."""

import sys

import world

w = world.make(sys.argv[1])
sys.modules["time"] = world.VirtualTime()
import imus  # noqa: E402 (after the time stand-in, as the firmware's imports must be)

OPTIONS = ("who", "quat_wxyz", "dso32", "quantum_us", "error_every", "silent")
for addr, spec in w.scenario["imus"].items():
    cls = getattr(imus, spec["model"])
    kw = {k: spec[k] for k in OPTIONS if k in spec}
    w.i2c[int(addr)] = cls(w, spec["acc_m_s2"], spec["gyr_rad_s"], **kw)
try:
    import firmware_bridge.main  # noqa: F401 (runs the firmware's main loop)
except world.Done:
    pass
except Exception as e:  # the firmware died: the test reads this from the log
    w.write("firmware_exception", repr(e))
    world.log_exc(e)
    w.log.close()
    sys.exit(3)
