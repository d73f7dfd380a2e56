"""``micropython conformance_check.py VECTORS.json``: the firmware's encoder on every conformance
vector; prints one line per vector, ``ok NAME`` or ``DIFF NAME GOT`` (MicroPython only)."""

import json
import sys

import firmware_bridge.wire as wire


def num(x):
    return float(x)


with open(sys.argv[1]) as f:
    doc = json.load(f)
for v in doc["vectors"]:
    quats = v["quat_wxyz"]
    samples = []
    for i in range(len(v["acc_m_s2"])):
        q = [num(x) for x in quats[i]] if quats else None
        samples.append(([num(x) for x in v["acc_m_s2"][i]], [num(x) for x in v["gyr_rad_s"][i]], q))
    got = wire.encode_data(v["seq"], v["t_us"], samples, v["encoding"], v["dt_us"], v["heel"])
    print(("ok " if got.hex() == v["frame_hex"] else "DIFF ") + v["name"].replace(" ", "_")
          + ("" if got.hex() == v["frame_hex"] else " " + got.hex()))
