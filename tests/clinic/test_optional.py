"""A single rig needs none of the clinic: with aiomqtt and psycopg unimportable, the CLI parses,
a single-rig command runs, and a clinic command says in one line what is missing."""

from __future__ import annotations

import subprocess
import sys

from tests.clinic.conftest import cli_env

# a sitecustomize-like prelude: importing either library fails, as when not installed
BLOCK = ("import sys\n"
         "class Block:\n"
         "    def find_spec(self, name, path=None, target=None):\n"
         "        if name.split('.')[0] in ('aiomqtt', 'paho', 'psycopg'):\n"
         "            raise ImportError(f'No module named {name!r}')\n"
         "sys.meta_path.insert(0, Block())\n"
         "from dorsimeter.cli import main\n"
         "sys.exit(main(sys.argv[1:]))\n")


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK, *argv], capture_output=True, text=True,
                          timeout=240, env=cli_env())


def test_single_rig_commands_work_without_the_clinic_libraries(tmp_path):
    out = run("--help")
    assert out.returncode == 0 and "publish" in out.stdout and "team" in out.stdout
    out = run("history", "--home", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "no sessions stored yet" in out.stdout
    out = run("publish", "--help")
    assert out.returncode == 0 and "--rig" in out.stdout


def test_a_clinic_command_without_them_says_what_to_install(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    pw.chmod(0o600)
    out = run("publish", "--home", str(tmp_path), "--broker", "127.0.0.1:1", "--ca",
              str(pw), "--clinic", "c1", "--rig", "r1", "--password-file", str(pw))
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "pip install 'dorsimeter[clinic]'" in out.stderr
