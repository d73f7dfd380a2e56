"""The on-device firmware modules stay within what MicroPython offers, checked on their syntax
trees (a quick first line; ``test_on_micropython.py`` compiles and runs them on MicroPython)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FW = Path(__file__).resolve().parents[2] / "firmware_bridge"
ON_DEVICE = ["wire.py", "node.py", "ble.py", "usb.py", "main.py", "__init__.py",
             "drivers/__init__.py", "drivers/clock.py", "drivers/analog.py", "drivers/bno08x.py",
             "drivers/lsm6dso.py", "drivers/icm42688.py"]
ALLOWED_IMPORTS = {"struct", "time", "json", "os", "select", "sys", "micropython", "machine",
                   "bluetooth", "firmware_bridge"}
# CPython-only builtins/keywords MicroPython lacks or rejects
FORBIDDEN_CALL_KWARGS = {("zip", "strict"), ("int", "signed"), ("to_bytes", "signed"),
                         ("from_bytes", "signed"), ("round", "ndigits")}


@pytest.mark.parametrize("name", ON_DEVICE)
def test_module_uses_only_micropython_features(name):
    tree = ast.parse((FW / name).read_text(), filename=name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] in ALLOWED_IMPORTS, (name, alias.name)
        elif isinstance(node, ast.ImportFrom):
            assert node.module and node.module.split(".")[0] in ALLOWED_IMPORTS, (name,
                                                                                  node.module)
        elif isinstance(node, ast.Call):
            fn = node.func
            fname = fn.id if isinstance(fn, ast.Name) else (
                fn.attr if isinstance(fn, ast.Attribute) else "")
            for kw in node.keywords:
                assert (fname, kw.arg) not in FORBIDDEN_CALL_KWARGS, (name, fname, kw.arg)
        assert not isinstance(node, (ast.AsyncFor, ast.AsyncWith, ast.Match, ast.TryStar)), name
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            annotated = [a for a in args.args + args.kwonlyargs if a.annotation is not None]
            assert not annotated and node.returns is None, (name, node.name, "annotations")
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        assert not cls.decorator_list, (name, cls.name, "class decorators (dataclass)")
