"""`make demo` installs the runtime only; `make test` adds the test toolchain (issue 12 item 12:
the demo waited 99 s for pytest, bumble, pandas ... before its first frame). Dry runs."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _plan(target: str, tmp_path) -> str:
    venv = tmp_path / "venv"  # a fresh .venv: nothing installed yet
    return subprocess.run(["make", "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=30).stdout


def test_demo_installs_the_runtime_only_and_test_adds_the_toolchain(tmp_path):
    demo = _plan("demo", tmp_path)
    assert "pip install -q -e .\n" in demo and ".[test]" not in demo
    assert demo.strip().endswith("dorsimeter demo")
    test = _plan("test", tmp_path)
    assert "pip install -q -e .\n" in test and 'pip install -q -e ".[test]"' in test
