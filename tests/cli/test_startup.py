"""Start-up stays short (issue 12 item 12): `--help` and `history` import neither scipy nor
textual nor bleak (scipy.signal alone was 3.0 of 3.2 s). Timings live in bench/bench_speed.py;
this checks what is imported, which does not depend on the machine's load."""

import json
import subprocess
import sys

HEAVY = ("scipy", "textual", "bleak", "vqf", "serial")

PROBE = """
import contextlib, io, json, sys
from dorsimeter.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as e:
        code = e.code
print(json.dumps({"code": code, "mods": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _imported(args, tmp_path) -> tuple[int, set[str]]:
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                       timeout=60, env={"DORSIMETER_HOME": str(tmp_path), "PATH": "/usr/bin"})
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["code"], set(out["mods"])


def test_help_and_history_import_nothing_heavy(tmp_path):
    for args in (["--help"], ["history"], ["analyze", "--help"], ["history", "--help"]):
        code, mods = _imported(args, tmp_path)
        assert code == 0, args
        assert not mods & set(HEAVY), (args, sorted(mods & set(HEAVY)))
