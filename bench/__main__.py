"""``python -m bench``: run every ``bench/bench_*.py`` module's ``main()`` in turn.

Each module prints its own tables. A module that fails has its error printed and the runner
goes on with the next; the exit status is non-zero if any failed. ``python -m bench accuracy
speed`` runs only the modules whose names contain one of the given words. Everything from the
first ``-``-option on goes to the modules whose ``main`` takes an argument list
(``python -m bench accuracy --athletes 2``); ``--help`` prints a module's options, and an option
a module refuses is named by its own argparse message, without a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import time
import traceback


def modules(selected: list[str], package: str = "bench") -> list[str]:
    """The package's ``bench_*`` modules, those matching ``selected`` if any are given."""
    path = importlib.import_module(package).__path__
    names = sorted(m.name for m in pkgutil.iter_modules(path) if m.name.startswith("bench_"))
    return [n for n in names if not selected or any(s in n for s in selected)]


def split_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(module words, options for the modules): options start at the first ``-`` argument."""
    first = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    return argv[:first], argv[first:]


def main(argv: list[str] | None = None, package: str = "bench") -> int:
    selected, options = split_args(list(sys.argv[1:] if argv is None else argv))
    failed = []
    for name in modules(selected, package):
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"{package}.{name}")
            takes_args = bool(inspect.signature(mod.main).parameters)
            rc = mod.main(options) if takes_args else mod.main()
            if rc not in (None, 0):
                raise RuntimeError(f"main() returned {rc}")
        except SystemExit as e:  # argparse: --help printed (0), or a bad option named (2)
            if e.code not in (None, 0):
                failed.append(name)
                print(f"{name} FAILED: its options were refused (exit {e.code})", flush=True)
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
