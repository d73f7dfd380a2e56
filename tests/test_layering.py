"""The floors of ``src/dorsimeter`` run one way: a module imports only from its own package or a
lower floor, there is no import circle, and imports inside functions are for start-up time at
the edges (cli, tui) only. Read from the import graph (ast), so the layout described in the
README's architecture section stays true."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# lowest first; packages on one floor must not import each other
FLOORS: list[tuple[str, ...]] = [
    ("dorsimeter", "dorsimeter.types", "dorsimeter.errors", "dorsimeter.text"),  # the words
    ("dorsimeter.rate", "dorsimeter.paths"),                      # clocks; the data directory
    ("dorsimeter.wire", "dorsimeter.sim"),                        # bytes on the wire; simulator
    ("dorsimeter.core",),                                         # fusion, mounting, tibia angle
    ("dorsimeter.io",),                                           # files: raw CSV, calibrations
    ("dorsimeter.detect",),                                       # reps, heel lift, clip slip
    ("dorsimeter.pipeline",),                                     # Pipeline.push, re-analysis
    ("dorsimeter.session", "dorsimeter.exercises"),               # scoring; guided exercises
    ("dorsimeter.store",),                                        # SQLite, locks, recovery
    ("dorsimeter.sources", "dorsimeter.export"),                  # devices; exports
    ("dorsimeter.session.live",),                                 # the one live loop
    ("dorsimeter.tui",),                                          # the monitor
    ("dorsimeter.clinic",),                                       # rigs to a clinic: MQTT, PG
    ("dorsimeter.cli",),                                          # commands
]

# function-level imports of our own modules: only where a command's start-up time depends on
# not loading the core (numpy, scipy, VQF, textual) before it is needed
LAZY_ALLOWED = ("dorsimeter.cli", "dorsimeter.tui")
LAZY_EXCEPTIONS = {
    # numpy (through io.rawcsv) stays out of every command's start-up: guard_output is used by
    # each CLI command's argument parsing
    ("dorsimeter.store.security", "dorsimeter.io.rawcsv"),
    # the two radio/serial stacks are imported only for the source asked for
    ("dorsimeter.sources", "dorsimeter.sources.ble"),
    ("dorsimeter.sources", "dorsimeter.sources.serial"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _floor_of(module: str) -> tuple[int, str]:
    """(floor index, the floor's package this module belongs to): the longest prefix wins."""
    best = (-1, "")
    for i, pkgs in enumerate(FLOORS):
        for pkg in pkgs:
            if (module == pkg or module.startswith(pkg + ".")) and len(pkg) > len(best[1]):
                best = (i, pkg)
    if best[0] < 0:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS in {__file__}")
    return best


MODULES = {_module_name(p) for p in (SRC / "dorsimeter").rglob("*.py")}


def import_graph() -> list[tuple[str, str, bool, int]]:
    """Every import of a ``dorsimeter`` module: (importer, imported, inside a function, line)."""
    edges = []
    for path in sorted((SRC / "dorsimeter").rglob("*.py")):
        mod = _module_name(path)
        pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_function = {id(n) for f in ast.walk(tree)
                       if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                       for n in ast.walk(f) if isinstance(n, ast.Import | ast.ImportFrom)}
        type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(node.test)
                     for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # `from pkg import submodule` imports the submodule
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target.split(".")[0] == "dorsimeter" and id(node) not in type_only:
                    edges.append((mod, target, id(node) in in_function, node.lineno))
    return edges


def upward_imports(edges) -> list[str]:
    bad = []
    for mod, target, _, line in edges:
        (fm, pm), (ft, pt) = _floor_of(mod), _floor_of(target)
        if ft > fm or (ft == fm and pm != pt):
            bad.append(f"{mod}:{line} imports {target} ({pt} is {'above' if ft > fm else 'beside'}"
                       f" {pm})")
    return bad


def circles(edges) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    modules = MODULES | {m for m, *_ in edges}
    for mod, target, _, _ in edges:
        while target not in modules and "." in target:  # `from pkg import name`: the package
            target = target.rsplit(".", 1)[0]
        if target != mod:
            graph.setdefault(mod, set()).add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def lazy_imports(edges) -> list[str]:
    return [f"{mod}:{line} imports {target} inside a function" for mod, target, lazy, line in edges
            if lazy and not mod.startswith(LAZY_ALLOWED) and (mod, target) not in LAZY_EXCEPTIONS]


def test_no_module_imports_a_higher_floor():
    assert upward_imports(import_graph()) == []


def test_there_are_no_import_circles():
    assert circles(import_graph()) == []


def test_imports_inside_functions_only_at_the_edges():
    assert lazy_imports(import_graph()) == []


@pytest.mark.parametrize("importer, imported, expect", [
    ("dorsimeter.core.mounting", "dorsimeter.io.caljson", "above"),
    ("dorsimeter.store.db", "dorsimeter.tui.app", "above"),
    ("dorsimeter.wire.frames", "dorsimeter.sim.rig", "beside"),
])
def test_the_check_catches_an_upward_import(importer, imported, expect):
    """The checks themselves fail on a made-up upward import, a circle and a lazy import."""
    bad = upward_imports([(importer, imported, False, 1)])
    assert len(bad) == 1 and expect in bad[0]
    assert circles([("dorsimeter.a", "dorsimeter.b", False, 1),
                    ("dorsimeter.b", "dorsimeter.a", True, 9)]) == [["dorsimeter.a",
                                                                      "dorsimeter.b"]]
    assert lazy_imports([("dorsimeter.export.xlsx", "dorsimeter.store.db", True, 3)])
