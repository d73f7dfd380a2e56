"""Every command, option, environment variable, config key and calibration JSON field driven
with hostile values (hypothesis): no traceback, exit 0 or 2 (1 only for a runtime failure such
as no sensor), one error line at most, nothing recorded changed. See ``hostile.py``; the
``make test`` size runs in about a minute, ``bench/bench_fuzz.py`` runs 100,000 cases.

The encoding cases need a real process (its stdout's encoding is fixed at start): a sample of
hostile commands runs under ``PYTHONIOENCODING=ascii`` and ``latin-1``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings

from tests.reliability import hostile as h

CASES = int(os.environ.get("DORSIMETER_HOSTILE_CASES", "250"))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return h.make_template(tmp_path_factory.mktemp("hostile"))


def test_every_command_survives_hostile_options_env_config_and_json(template, tmp_path,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative hostile paths land here, never in the repository
    @settings(max_examples=CASES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(h.commands, h.env, h.config, h.cal_damage, h.scal_damage)
    def prop(argv, environ, config_text, cal_damage, scal_damage):
        h.check(template, argv, environ, config_text, cal_damage, scal_damage)

    prop()


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_hostile_text_in_any_locale_is_one_line_or_printed(template, tmp_path, encoding):
    home = template.root / "home"
    env = {**os.environ, "PYTHONIOENCODING": encoding, "LC_ALL": "C"}
    cases = [(["history", "Zoë 李\x1b]0;x\x07", "--home", str(home)], 2),
             (["history", "--home", str(home)], 0),
             (["analyze", str(template.root / "rec" / "raw.csv")], 0),
             (["export", "latest", "--out", str(tmp_path / "é"), "--home", str(home)], 0)]
    for argv, code in cases:
        p = subprocess.run([sys.executable, "-m", "dorsimeter.cli", *argv], env=env,
                           capture_output=True, timeout=300)
        assert p.returncode == code and b"Traceback" not in p.stderr, (argv, p.stderr)
        p.stdout.decode(encoding), p.stderr.decode(encoding)  # all of it in that encoding
        shown = (p.stdout + p.stderr).replace(b"\\x1b", b"").replace(b"\\x07", b"")
        assert b"\\x" not in shown and b"\\u" not in shown, shown  # plain words, not codes
        if code == 2:
            assert p.stderr.count(b"\n") == 1 and b"\x1b" not in p.stderr
