"""`make demo` installs the runtime only; `make test` adds the test toolchain (issue 12 item 12:
the demo waited 99 s for pytest, bumble, pandas ... before its first frame). Dry runs."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _plan(target: str, tmp_path) -> str:
    venv = tmp_path / "venv"  # a fresh .venv: nothing installed yet
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={venv}"],
                          cwd=ROOT, capture_output=True, text=True, check=True, timeout=30,
                          env=env).stdout  # run from `make test` too (CI): no "Entering"


def test_demo_installs_the_runtime_only_and_test_adds_the_toolchain(tmp_path):
    demo = _plan("demo", tmp_path)
    assert "pip install -q -e .\n" in demo and ".[test]" not in demo
    assert demo.strip().endswith("dorsimeter demo")
    test = _plan("test", tmp_path)
    assert "pip install -q -e .\n" in test and 'pip install -q -e ".[test]"' in test
