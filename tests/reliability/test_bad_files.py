"""Bad files through every command that reads one: ``analyze``, ``calibrate``, replay (``record
--sensor replay:FILE``), ``sensor-cal``, and calibration JSON given to ``analyze``.

Each must give exactly one line naming the file (and the line and column where there is one)
and exit 2; never a traceback. ``tests/io`` checks the reader's messages in detail; this checks
that every command path keeps them.
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.io.rawcsv import RAW_COLUMNS
from tests.conftest import simulate

HEADER = ",".join(RAW_COLUMNS)


def _rows(seconds: float = 12.0, acc_scale: float = 1.0, t_scale: float = 1.0) -> str:
    b = simulate(seconds, seed=2)
    body = np.column_stack([b.t_s * t_scale, b.acc_m_s2 * acc_scale, b.gyr_rad_s])
    return "\n".join(",".join(f"{v:.9g}" for v in row) for row in body) + "\n"


def _bad_files(tmp_path):
    good = _rows()
    lines = good.splitlines()
    nan_at = lines.copy()
    nan_at[700] = nan_at[700].replace(nan_at[700].split(",")[3], "NaN", 1)
    short = lines.copy()
    short[50] = ",".join(short[50].split(",")[:5])
    back = lines.copy()
    back[300], back[301] = back[301], back[300]
    files = {
        "empty": (b"", r"line 1: empty file"),
        "only newlines": (b"\n\n\n", r"line 1, column 't_s': missing column"),
        "header only": ((HEADER + "\n").encode(), r"line 2: no data rows"),
        "missing column": ((b"t_s,acc_x_m_s2,acc_y_m_s2,gyr_x_rad_s,gyr_y_rad_s,gyr_z_rad_s\n"
                            b"0,0,0,0,0,0\n"), r"line 1, column 'acc_z_m_s2': missing"),
        "bad cell": ((HEADER + "\n" + "\n".join(nan_at) + "\n").encode(),
                     r"line 702, column 'acc_z_m_s2': 'NaN' is not a finite number"),
        "short row": ((HEADER + "\n" + "\n".join(short) + "\n").encode(),
                      r"line 52: 5 fields, the header has 7"),
        "time backwards": ((HEADER + "\n" + "\n".join(back) + "\n").encode(),
                           r"line 303, column 't_s': time does not increase"),
        "acc in g": ((HEADER + "\n" + _rows(acc_scale=1 / 9.81)).encode(),
                     r"column 'acc_x_m_s2': .*looks like g"),
        "time in ms": ((HEADER + "\n" + _rows(t_scale=1000.0)).encode(),
                       r"column 't_s': .*milliseconds"),
        "binary": (bytes(range(256)) * 64, r"line 1: binary data"),
        "not utf-8": ((HEADER + "\n0,\xe9\n").encode("latin-1"), r"not UTF-8"),
        "huge line": (b"t_s," + b"1" * 5_000_000 + b"\n", r"line 1: not valid CSV"),
    }
    out = {}
    for name, (content, expect) in files.items():
        p = tmp_path / (name.replace(" ", "_") + ".csv")
        p.write_bytes(content)
        out[name] = (p, expect)
    return out


COMMANDS = {
    "analyze": lambda f, tmp: ["analyze", str(f)],
    "calibrate": lambda f, tmp: ["calibrate", str(f), "--out", str(tmp / "cal.json")],
    "replay": lambda f, tmp: ["record", "--sensor", f"replay:{f}", "--speed", "0", "--duration",
                              "1", "--out", str(tmp / "out.csv"), "--home", str(tmp / "h")],
    "sensor-cal": lambda f, tmp: ["sensor-cal", str(f), "--id", "x", "--out",
                                  str(tmp / "s.json")],
}


def _cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_refuses_every_bad_file_in_one_line(tmp_path, command):
    for name, (path, expect) in _bad_files(tmp_path).items():
        rc, out, err = _cli(COMMANDS[command](path, tmp_path))
        assert rc == 2, (command, name, err)
        assert err.count("\n") == 1 and err.startswith(f"dorsimeter: error: {path}"), (name, err)
        assert re.search(expect, err), (command, name, err)
        assert "Traceback" not in err + out
    assert not (tmp_path / "out.csv").exists()  # replay refused before anything was written


@pytest.mark.parametrize("content, expect", [
    (b"\x00\x01garbage", r"line 1: not a calibration file"),
    (b"", r"not a calibration file"),
    (b'{"left": {"x": 1}}', r"field 'format': expected 'dorsimeter-mounting-calibration'"),
    (b"[1, 2, 3]", r"calibration"),
])
def test_bad_calibration_json_is_one_line(tmp_path, content, expect):
    raw = tmp_path / "raw.csv"
    raw.write_text(HEADER + "\n" + _rows())
    cal = tmp_path / "cal.json"
    cal.write_bytes(content)
    rc, _, err = _cli(["analyze", str(raw), "--calibration", str(cal)])
    assert rc == 2 and err.count("\n") == 1 and err.startswith(f"dorsimeter: error: {cal}")
    assert re.search(expect, err), err


@pytest.mark.parametrize("path", ["/nonexistent/raw.csv", "/"])
def test_missing_file_or_a_directory_is_one_line(path):
    for command in ("analyze", "calibrate"):
        rc, _, err = _cli([command, path] + (["--out", "/tmp/x.json"] if command == "calibrate"
                                              else []))
        assert rc == 2 and err.count("\n") == 1 and path in err
