"""The hostile-input property over the whole command line, shared by ``test_hostile_cli`` (the
``make test`` size) and ``bench/bench_fuzz.py`` (100,000 cases).

Hypothesis draws a command, its options and positionals, ``DORSIMETER_*`` environment
variables, a ``config.toml`` and damaged calibration JSON fields, each value from a pool of
hostile ones (NaN, infinities, 400-digit and negative numbers, markup, terminal escapes,
formula prefixes, undecodable bytes, the database's own path, the recording's path, deep
nesting) mixed with plain valid values. ``check`` runs ``main(argv)`` in-process against a
copy of a data directory holding a recorded session and asserts: no exception escapes (no
traceback), exit 0 or 2 (1 only with a one-line error from a real runtime failure: no BLE
adapter, a serial port that is not there), at most one error line, and nothing recorded
changed (the pre-existing files of the data directory and the raw recording byte for byte,
the stored sessions row for row; a mounting calibration outside the data directory is not a
recording: ``calibrate --out`` may replace one).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from dorsimeter.cli import main

CALLS = {"cli": 0}
SETTABLE = ["athlete", "side", "sensor", "seed", "speed", "clip_rotation", "notes",
            "tibia_length_cm", "foot_length_cm", "pseudonymous", "target_deg", "timeout",
            "calibration", "sensor_cal", "offline", "clip_axis", "format", "right_sensor"]

# placeholders resolved per example against the copied data directory
DB, RAW, CAL, SCAL, CONFIG, HOME, NEW, NEWDIR, BADCAL, BADSCAL = (
    "<db>", "<raw>", "<cal>", "<scal>", "<config>", "<home>", "<new>", "<newdir>",
    "<badcal>", "<badscal>")

HOSTILE_TEXT = ["", " ", "nan", "NaN", "inf", "-inf", "1e308", "-1e308", "1e-320", "-5", "0",
                "-0", "5", "2.5", "99999999999999999999999", "9" * 400, "0x10", "1_000",
                "[/]", "[@click=app.quit]x", "[b]x[/b]", "\x1b]0;owned\x07", "\x1b[2J",
                "bad\udcff", "\t=1+1", "=HYPERLINK(\"x\")", "+1", "@SUM(A1)", "\r=1",
                "../../x", "/", "/dev/null", "a" * 3000, "Zoë 李", "\u202eevil", "\x00",
                "1,2", "nan,0,0", "0,0,1e308", "0,0,120", "left", "right", "latest", "all",
                "-1", "1", "2", "AA:BB:CC:DD:EE:FF", "aa-bb-cc-dd-ee-ff", "sim", "sim:lunge",
                "sim:nosuch", "replay:" + RAW, "replay:/nonexistent.csv", "replay:" + CAL,
                "serial:/nonexistent", "ble:", "+x", "-z", "csv",
                DB, RAW, CAL, SCAL, CONFIG, HOME, NEW, NEWDIR, BADCAL, BADSCAL]
text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=12),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.integers(-2**80, 2**80).map(str))
small_duration = st.floats(0.2, 6.0).map(lambda v: f"{v:.2f}")
paths = st.sampled_from([DB, RAW, CAL, SCAL, CONFIG, HOME, NEW, NEW, NEW, NEWDIR, "",
                         "/dev/null", "/", "bad\udcff.csv", f"{HOME}/history.sqlite3-wal",
                         f"{HOME}/sensors.json", f"{HOME}/sensors/box.json"])
sensors = st.sampled_from(["sim", "sim:wall", "sim:lunge", "sim:nosuch", "replay:" + RAW,
                           "replay:/nonexistent.csv", "replay:" + CAL, "serial:/nonexistent",
                           "", "[/]", "ble:", "\x1b]0;x\x07", "bad\udcff"])


def _opt(name: str, values=text):
    return st.tuples(st.just(name), values)


def _options(*opts) -> st.SearchStrategy[list[str]]:
    """A few of ``opts`` (name, value strategy), each at most once, flattened."""
    return st.lists(st.one_of(*opts), max_size=4, unique_by=lambda t: t[0]).map(
        lambda pairs: [x for p in pairs for x in p])


STORE = [_opt("--athlete"), _opt("--tibia-length-cm"), _opt("--foot-length-cm"),
         _opt("--notes")]
SOURCE = [_opt("--side"), _opt("--seed"), _opt("--clip-rotation"),
          _opt("--sensor-cal", st.one_of(st.sampled_from([SCAL, BADSCAL]), text))]
FLAGS = st.lists(st.sampled_from(["--pseudonymous", "--force", "--offline"]), max_size=2,
                 unique=True)

commands = st.one_of(
    st.tuples(st.just(["record", "--speed", "0"]),
              st.tuples(st.just("--duration"), st.one_of(small_duration, small_duration,
                                                          text)).map(list),
              st.tuples(st.just("--out"), paths).map(list),
              st.tuples(st.just("--sensor"), st.one_of(st.just("sim"), sensors)).map(list),
              _options(*STORE, *SOURCE, _opt("--calibration", st.sampled_from([CAL, BADCAL])),
                       _opt("--right-sensor", sensors))),
    st.tuples(st.just(["analyze"]), st.sampled_from([[RAW], [CAL], [DB], ["/nonexistent"],
                                                     [HOME]]),
              _options(_opt("--out", paths), _opt("--calibration", st.one_of(
                  st.sampled_from([CAL, BADCAL]), paths)),
                  _opt("--sensor-cal", st.one_of(st.sampled_from([SCAL, BADSCAL]), text)),
                  _opt("--clip-axis"), _opt("--side"))),
    st.tuples(st.just(["calibrate"]), st.sampled_from([[RAW], [CAL], ["/nonexistent"]]),
              st.tuples(st.just("--out"), paths).map(list),
              _options(_opt("--sensor-cal", st.sampled_from([SCAL, BADSCAL])),
                       _opt("--record", paths), _opt("--timeout"))),
    st.tuples(st.just(["calibrate", "--speed", "0", "--timeout", "20"]),
              st.tuples(st.just("--sensor"), sensors).map(list),
              st.tuples(st.just("--out"), paths).map(list),
              _options(*SOURCE, _opt("--record", paths))),
    st.tuples(st.just(["history"]), st.lists(text, max_size=1), st.just([])),
    st.tuples(st.just(["export"]), st.lists(text, min_size=1, max_size=2),
              st.tuples(st.just("--out"), st.one_of(paths, text)).map(list),
              _options(_opt("--athlete"), _opt("--format"))),
    st.tuples(st.just(["report"]), st.lists(text, min_size=1, max_size=1),
              st.tuples(st.just("--out"), st.one_of(paths, text)).map(list)),
    st.tuples(st.just(["recover"]), st.lists(text, max_size=2),
              st.sampled_from([[], ["--list"]])),
    st.tuples(st.just(["sensors"]), st.one_of(
        st.tuples(st.just("add"), text).map(list),
        st.tuples(st.just("add"), text, st.just("--label"), text).map(list),
        st.tuples(st.just("remove"), text).map(list), st.just(["list"])), st.just([])),
    st.tuples(st.just(["sensor-cal"]), st.sampled_from([[RAW], [CAL], ["/nonexistent"]]),
              st.tuples(st.just("--id"), text).map(list),
              _options(_opt("--out", paths))),
    st.tuples(st.just(["scan", "--timeout"]), st.lists(text, min_size=1, max_size=1),
              st.just([])),
    st.tuples(st.just(["monitor", "--sensor", "replay:/nonexistent.csv"]),
              _options(_opt("--target-deg"), _opt("--record", paths), *STORE,
                       _opt("--seed"), _opt("--clip-rotation")), st.just([])),
).map(lambda parts: [x for part in parts for x in part])

toml_value = st.one_of(
    st.sampled_from(['12', '-5', 'nan', 'inf', '1e308', 'true', '"[/]"', '"\\u001b]0;x\\u0007"',
                     '"nan,0,0"', '[1, 2]', '{a = 1}', '"9999999999999999999999"', '""',
                     '"left"', '"sim"', '"replay:/nonexistent.csv"', '1979-05-27',
                     "[" * 200 + "]" * 200, '"""\nmulti\n"""']),
    st.text(max_size=10).map(json.dumps), st.integers(-2**70, 2**70).map(str))
config = st.one_of(
    st.none(), st.none(), st.none(),
    st.lists(st.tuples(st.sampled_from(SETTABLE + ["force", "duration", "bogus", "home"]),
                       toml_value), max_size=3).map(
        lambda kv: "".join(f"{k} = {v}\n" for k, v in kv)),
    st.tuples(st.sampled_from(["record", "analyze", "monitor", "nosuch", "sensor_cal"]),
              st.sampled_from(SETTABLE), toml_value).map(
        lambda t: f"[{t[0]}]\n{t[1]} = {t[2]}\n"),
    st.text(max_size=40))
ENV_NAMES = [f"DORSIMETER_{k.upper()}" for k in SETTABLE] + ["DORSIMETER_FORCE",
                                                               "DORSIMETER_BLE_SCAN_S"]
env = st.one_of(st.just({}), st.just({}), st.dictionaries(
    st.sampled_from(ENV_NAMES), text.filter(lambda s: "\x00" not in s and _encodable(s)),
    max_size=2))
json_value = st.one_of(
    st.sampled_from([None, True, "x", "[/]", [], [1, 2], [[[[[]]]]], {}, 1e308, -1e308,
                     "NaN", 0, -1, 10**30, [0.0, 0.0, 1.71], [1.0, 0.0, 0.0], [-1.0, 0, 0]]),
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-2**70, 2**70))
cal_damage = st.tuples(st.sampled_from(
    ["x_axis", "y_axis", "z_axis", "lever_arm_m", "gyr_bias_rad_s", "flexion_gyr_gain",
     "acc_offset_m_s2", "still_s", "side", "bogus", "format", "sides", "version"]), json_value)
scal_damage = st.tuples(st.sampled_from(
    ["acc_matrix", "acc_offset_m_s2", "gyr_bias_rad_s", "n_poses", "residual_m_s2",
     "sensor_id", "format", "bogus"]), json_value)


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class Template:
    """A data directory with one recorded, ended session, and the files around it."""

    root: Path
    cal_doc: dict
    scal_doc: dict


def make_template(root: Path) -> Template:
    """Record a short session into ``root/home`` (raw CSV in ``root/rec``), calibrate it, store
    a sensor calibration and an allow-list: the pre-existing data every case starts from."""
    home, rec = root / "home", root / "rec"
    rec.mkdir(parents=True)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["record", "--speed", "0", "--duration", "14", "--seed", "3", "--out",
                     str(rec / "raw.csv"), "--home", str(home), "--athlete", "Ana"]) == 0
        assert main(["calibrate", str(rec / "raw.csv"), "--out", str(rec / "cal.json")]) == 0
        assert main(["sensors", "add", "AA:BB:CC:DD:EE:01", "--label", "left",
                     "--home", str(home)]) == 0
    scal = {"format": "dorsimeter-sensor-calibration", "version": 1, "sensor_id": "box",
            "gyr_bias_rad_s": [0.001, 0.0, 0.0], "acc_offset_m_s2": [0.01, 0.0, 0.0],
            "acc_matrix": [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]], "n_poses": 6,
            "residual_m_s2": 0.01}
    (home / "sensors").mkdir(mode=0o700)
    (home / "sensors" / "box.json").write_text(json.dumps(scal))
    return Template(root, json.loads((rec / "cal.json").read_text()), scal)


def _stored(db: Path, upto: int) -> tuple:
    """The stored sessions (rows, trials, calibrations, sample counts) with id <= ``upto``."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        q = lambda sql: con.execute(sql, (upto,)).fetchall()  # noqa: E731
        return (q("SELECT * FROM sessions WHERE id <= ? ORDER BY id"),
                q("SELECT * FROM trials WHERE session_id <= ? ORDER BY id"),
                q("SELECT session_id, side, origin, json FROM calibrations WHERE session_id <= ?"
                  " ORDER BY id"),
                q("SELECT session_id, COUNT(*), SUM(t_s), SUM(tibia_angle_deg) FROM samples "
                  "WHERE session_id <= ? GROUP BY session_id"))
    finally:
        con.close()


def _damaged(doc: dict, damage, nested: bool) -> str:
    key, value = damage
    d = json.loads(json.dumps(doc))
    target = d["sides"]["left"] if nested and key not in ("format", "sides", "version") else d
    target[key] = value
    return json.dumps(d)


def _hashes(d: Path) -> dict[str, str]:
    """Every file under ``d`` (relative path -> SHA-256), lock files left out."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file() and p.parent.name != "running"}


class Workspace:
    """A working copy of the template, reused case after case and restored only when a case
    changed something in it (most hostile cases are refused before writing anything), so the
    bench runs many cases a second."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.work = Path(tempfile.mkdtemp(dir=template.root, prefix="work-"))
        self.restores = 0
        self._restore()
        self.pristine = _hashes(self.work)
        self.pristine_db = _stored(self.work / "home" / "history.sqlite3", 10**9)

    def _restore(self) -> None:
        for name in ("home", "rec", "new", "newdir"):
            shutil.rmtree(self.work / name, ignore_errors=True)
        shutil.copytree(self.template.root / "home", self.work / "home")
        shutil.copytree(self.template.root / "rec", self.work / "rec")
        (self.work / "new").mkdir()
        self.restores += 1


_WORKSPACES: dict[int, Workspace] = {}


def _run_in_process(args: list[str], environ: dict[str, str]) -> tuple[int, str]:
    """``main(args)`` here, with ``environ`` set for the call: (exit code, stderr)."""
    saved = {k: os.environ.get(k) for k in environ}
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.update(environ)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(args)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return rc, err.getvalue()


def _run_subprocess(args: list[str], environ: dict[str, str]) -> tuple[int, str]:
    """The same case as a real process (what a shell runs: the ``dorsimeter`` entry point, its
    own interpreter, real stdout/stderr pipes): (exit code, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from dorsimeter.cli import main; sys.exit(main())",
         *args], env={**os.environ, **environ}, capture_output=True, timeout=120,
        stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stderr.decode("utf-8", "replace")


def can_run_as_process(argv: list[str], environ: dict[str, str]) -> bool:
    """Whether a shell could pass this case to a process: every argument and variable is
    bytes the OS takes (no NUL, nothing that is not a file-system encoding of bytes)."""
    for a in [*argv, *environ.keys(), *environ.values()]:
        try:
            if b"\x00" in os.fsencode(a):
                return False
        except UnicodeEncodeError:
            return False
    return True


def check(template: Template, argv: list[str], environ: dict[str, str], config_text,
          cal_damage_, scal_damage_, as_process: bool = False) -> tuple[int, str]:
    """Run one hostile case, in-process through ``main`` (or ``as_process``: in a subprocess
    of its own); returns (exit code, stderr). Raises AssertionError on a failure of the
    property (an exception from ``main`` propagates as itself: a traceback)."""
    CALLS["cli"] += 1
    ws = _WORKSPACES.get(id(template))
    if ws is None:
        ws = _WORKSPACES[id(template)] = Workspace(template)
    work = ws.work
    home, rec = work / "home", work / "rec"
    badcal, badscal = work / "new" / "badcal.json", work / "new" / "badscal.json"
    badcal.write_text(_damaged(template.cal_doc, cal_damage_, True))
    badscal.write_text(_damaged(template.scal_doc, scal_damage_, False))
    if config_text is not None:
        (home / "config.toml").write_text(config_text, encoding="utf-8",
                                          errors="surrogateescape")
    subs = {DB: str(home / "history.sqlite3"), RAW: str(rec / "raw.csv"),
            CAL: str(rec / "cal.json"), SCAL: str(home / "sensors" / "box.json"),
            CONFIG: str(home / "config.toml"), HOME: str(home),
            NEW: str(work / "new" / "out.csv"), NEWDIR: str(work / "newdir"),
            BADCAL: str(badcal), BADSCAL: str(badscal)}

    def sub(s: str) -> str:
        for k, v in subs.items():
            s = s.replace(k, v)
        return s

    args = [sub(a) for a in argv] + ["--home", str(home)]  # the sub-command's, last
    run = _run_subprocess if as_process else _run_in_process
    rc, e = run(args, {k: sub(v) for k, v in environ.items()})
    errors = [ln for ln in e.splitlines() if ": error:" in ln]
    assert "Traceback" not in e, (args, e)
    assert rc in (0, 1, 2), (args, rc, e)
    assert len(errors) <= 1, (args, e)
    if rc == 1:  # only a real runtime failure: no sensor, no adapter, a port not there
        assert errors and any(w in e for w in ("sensor", "BLE", "serial", "scan", "Errno",
                                               "No such file", "Permission", "history")), (
            args, e)
    if rc != 0:
        assert errors, (args, rc, e)
    forced = "--force" in args
    after = _hashes(work)
    for name, h in ws.pristine.items():
        if name.startswith("home/history.sqlite3") or name.startswith("new/"):
            continue  # the database is compared row by row below; new/ holds this case's input
        if name in ("home/config.toml", "rec/cal.json"):
            continue  # this case's config; a calibration output may replace a calibration
        if forced and name.startswith("rec/"):
            continue  # --force may overwrite a recording outside the data directory
        if name == "home/sensors.json" and args[0] == "sensors":
            continue  # adding and removing sensors is its job
        assert after.get(name) == h, (args, name, e)
    db = home / "history.sqlite3"
    assert _stored(db, ws.pristine_db[0][-1][0]) == ws.pristine_db, args
    changed = {k for k in after.keys() | ws.pristine.keys()
               if after.get(k) != ws.pristine.get(k) and not k.startswith("new/bad")}
    if changed - {"home/config.toml"}:
        ws._restore()
    elif (home / "config.toml").exists():
        (home / "config.toml").unlink()
    return rc, e
