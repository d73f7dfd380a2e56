"""``python -m bench``: run every ``bench/bench_*.py`` module's ``main()`` in turn.

Each module prints its own tables. A module that fails has its error printed and the runner
goes on with the next; the exit status is non-zero if any failed. ``python -m bench accuracy
speed`` runs only the modules whose names contain one of the given words.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback


def modules(selected: list[str], package: str = "bench") -> list[str]:
    """The package's ``bench_*`` modules, those matching ``selected`` if any are given."""
    path = importlib.import_module(package).__path__
    names = sorted(m.name for m in pkgutil.iter_modules(path) if m.name.startswith("bench_"))
    return [n for n in names if not selected or any(s in n for s in selected)]


def main(argv: list[str] | None = None, package: str = "bench") -> int:
    selected = list(sys.argv[1:] if argv is None else argv)
    failed = []
    for name in modules(selected, package):
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"{package}.{name}")
            rc = mod.main()
            if rc not in (None, 0):
                raise RuntimeError(f"main() returned {rc}")
        except BaseException as e:  # noqa: BLE001 - report and carry on with the next module
            if isinstance(e, KeyboardInterrupt):
                raise
            failed.append(name)
            print(f"{name} FAILED: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(limit=3)
        print(f"({name}: {time.perf_counter() - t0:.1f} s)", flush=True)
    if failed:
        print(f"\nbenchmarks failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
