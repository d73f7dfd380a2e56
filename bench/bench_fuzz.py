"""Fuzz every decoder on more than 100,000 generated cases; prints the case count per decoder.

The properties are those of ``tests/reliability/test_fuzz.py`` (a few hundred cases each there):
hypothesis draws corruption (flipped bytes, truncated frames, inserted junk) and read splits
for each decoder; then numpy draws any bytes at all, fed to all three decoders in random
splits. Every case checks: no exception, well-formed finite batches, counters that only grow,
every intact frame decoded and every destroyed one counted. ``DORSIMETER_FUZZ_CASES`` scales
the total (default 100,000).

Then the hostile command-line property (``tests/reliability/hostile.py``: every command,
option, environment variable, config key and calibration JSON field with hostile values; no
traceback, exit 0/2 (1 for a runtime failure), one error line, nothing recorded changed) on
``DORSIMETER_CLI_FUZZ_CASES`` cases (default 100,000), each through the CLI's ``main``
in-process, and one in ``DORSIMETER_CLI_FUZZ_PROCESS_EVERY`` (default 500) also as a real
process of its own (the entry point, its own interpreter and pipes: what in-process could
hide, e.g. ``PYTHONIOENCODING``), with the same assertions, in ``DORSIMETER_CLI_FUZZ_WORKERS``
processes at once (default: one per CPU). The run is bounded in time: it stops after
``DORSIMETER_CLI_FUZZ_S`` seconds (default 600, plus the round under way: 250 cases) if the
cases are not done, and prints the cases run, cases/s and what 100,000 would take at that rate,
and every class of exit 1 seen (command and error line, paths and numbers folded) with its
count, to be read: a bad input there should be exit 2, a crash a fix. Run:
``python -m bench.bench_fuzz``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings

from tests.reliability import fuzzing as fz

DEFAULT_CASES = 100_000


def _hypothesis_run(prop, n: int) -> float:
    cfg = settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
                   suppress_health_check=list(HealthCheck))  # pyright: ignore[reportArgumentType]

    @cfg
    @given(fz.SEED, fz.OPS, fz.CUTS)
    def run(seed, ops, cuts):
        prop(seed, ops, cuts)

    t0 = time.perf_counter()
    run()  # a failing case raises (hypothesis reports it) and the bench fails
    return time.perf_counter() - t0


def _random_bytes_run(n: int, seed: int = 0) -> float:
    """Any bytes: random noise, spliced with pieces of valid frames and packets."""
    rng = np.random.default_rng(seed)
    pieces = [b"".join(fz.node_frames(k, 4)) for k in range(64)]
    t0 = time.perf_counter()
    for _ in range(n):
        size = int(rng.integers(0, 1500))
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        if rng.random() < 0.5:  # splice in a fragment of a real stream
            p = pieces[int(rng.integers(0, len(pieces)))]
            a = int(rng.integers(0, len(p)))
            b = int(rng.integers(a, len(p) + 1))
            at = int(rng.integers(0, len(data) + 1))
            data = data[:at] + p[a:b] + data[at:]
        cuts = rng.integers(0, len(data) + 1, int(rng.integers(0, 6))).tolist()
        fz.check_random(data, cuts)
    return time.perf_counter() - t0


@dataclass
class CliRun:
    """What the hostile command-line run did."""

    cases: int = 0           # in-process cases run
    processes: int = 0       # of those, also run as a process of their own
    failures: int = 0
    seconds: float = 0.0     # the cases' wall time (set-up excluded)
    codes: dict[int, int] = field(default_factory=dict)
    exit1: dict[str, int] = field(default_factory=dict)  # exit 1 by class (``exit1_class``)
    stopped_by_time: bool = False


def exit1_class(argv: list[str], stderr: str) -> str:
    """A runtime failure (exit 1) as its command and error line, paths and numbers folded
    (``scan: no Bluetooth on this computer: …``), so that every class is printed and read."""
    import re

    line = next((ln for ln in stderr.splitlines() if ": error:" in ln), stderr.strip())
    msg = line.split(": error:", 1)[-1].strip()
    msg = re.sub(r"\d+", "N", re.sub(r"(?<![\w])/[^\s:;,()'\"]+", "PATH", msg))
    return f"{argv[0] if argv else '?'}: {msg[:70]}"


def _cli_run(n: int, budget_s: float = 600.0, process_every: int = 500,
             round_size: int = 250, worker: int = 0, workers: int = 1) -> CliRun:
    """The hostile command-line property (``tests/reliability/hostile.py``) on up to ``n``
    generated cases within ``budget_s`` (rounds of ``round_size`` hypothesis examples, each
    with its own seed, until either runs out). A failing case is printed and counted, and the
    run goes on (hypothesis would stop at the first one). ``worker`` of ``workers``: the
    rounds' seeds are this worker's share (``_cli_parallel``)."""
    import tempfile
    from pathlib import Path

    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from tests.reliability import hostile as h

    root = Path(tempfile.mkdtemp(prefix="dorsimeter-fuzz-cli-"))
    template = h.make_template(root)
    scratch = root / "cwd"  # relative hostile paths land here, never in the working directory
    scratch.mkdir()
    cwd = os.getcwd()
    os.chdir(scratch)
    case = st.tuples(h.commands, h.env, h.config, h.cal_damage, h.scal_damage)
    out = CliRun()

    def one(c) -> None:
        as_process = (process_every > 0 and out.cases % process_every == 0
                      and h.can_run_as_process(c[0], c[1]))
        out.cases += 1
        try:
            rc, err = h.check(template, *c)
            out.codes[rc] = out.codes.get(rc, 0) + 1
            if rc == 1:
                key = exit1_class(c[0], err)
                out.exit1[key] = out.exit1.get(key, 0) + 1
            if as_process:
                out.processes += 1
                prc, perr = h.check(template, *c, as_process=True)
                assert prc == rc, (c[0], rc, prc, perr)  # the same answer as in-process
        except Exception as e:  # noqa: BLE001 - count it, show it, go on
            out.failures += 1
            if out.failures <= 20:  # the case too: argv, environment, config.toml
                print(f"  FAILED: {type(e).__name__}: {str(e)[:300]}\n    case: "
                      f"{c[0]!r} env={c[1]!r} config={str(c[2])[:200]!r}", flush=True)

    t0 = time.perf_counter()
    try:
        k = 0
        while out.cases < n:
            if time.perf_counter() - t0 > budget_s:
                out.stopped_by_time = True
                break
            cfg = settings(max_examples=min(round_size, n - out.cases), deadline=None,
                           database=None, phases=[Phase.generate],
                           suppress_health_check=list(HealthCheck))  # pyright: ignore[reportArgumentType]
            hypothesis_seed(k * workers + worker)(cfg(given(case)(one)))()
            k += 1
    finally:
        os.chdir(cwd)
    out.seconds = time.perf_counter() - t0
    return out


def run(total: int = DEFAULT_CASES) -> list[str]:
    props = [("node frames (hypothesis)", "node", fz.check_node, 0.05),
             ("WitMotion BLE (hypothesis)", "wit_ble", fz.check_wit_ble, 0.10),
             ("WitMotion UART (hypothesis)", "wit_uart", fz.check_wit_uart, 0.10)]
    rows = []
    for name, key, prop, share in props:
        before = fz.CALLS[key]
        dt = _hypothesis_run(prop, max(1, int(total * share)))
        rows.append((name, fz.CALLS[key] - before, dt))
    before = fz.CALLS["random"]
    dt = _random_bytes_run(max(1, total - sum(r[1] for r in rows)))
    rows.append(("any bytes, all 3 decoders", fz.CALLS["random"] - before, dt))
    lines = [f"{'property':30s} {'cases run':>10s} {'s':>7s} {'cases/s':>8s}"]
    for name, n, dt in rows:
        lines.append(f"{name:30s} {n:10d} {dt:7.1f} {n / dt:8.0f}")
    n_all, dt_all = sum(r[1] for r in rows), sum(r[2] for r in rows)
    lines.append(f"{'total':30s} {n_all:10d} {dt_all:7.1f} {n_all / dt_all:8.0f}")
    lines.append(f"fuzz: {n_all} generated cases, every property held (a failure raises)")
    return lines


def _cli_worker(args: tuple[int, float, int, int, int]) -> CliRun:
    n, budget_s, process_every, worker, workers = args
    return _cli_run(n, budget_s, process_every, worker=worker, workers=workers)


def _cli_parallel(n: int, budget_s: float, process_every: int, workers: int) -> CliRun:
    """``_cli_run`` in ``workers`` processes at once (each its own data directory and seeds),
    their counts added up; the wall time is the run's."""
    if workers <= 1:
        return _cli_run(n, budget_s, process_every)
    import multiprocessing

    t0 = time.perf_counter()
    shares = [(n // workers + (w < n % workers), budget_s, process_every, w, workers)
              for w in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        runs = pool.map(_cli_worker, shares)
    out = CliRun(seconds=time.perf_counter() - t0)
    for r in runs:
        out.cases += r.cases
        out.processes += r.processes
        out.failures += r.failures
        out.stopped_by_time |= r.stopped_by_time
        for k, v in r.codes.items():
            out.codes[k] = out.codes.get(k, 0) + v
        for k, v in r.exit1.items():
            out.exit1[k] = out.exit1.get(k, 0) + v
    return out


def cli_lines(total: int, budget_s: float = 600.0, process_every: int = 500,
              workers: int = 1) -> tuple[list[str], int]:
    """The command-line property's table, and its failure count."""
    r = _cli_parallel(total, budget_s, process_every, workers)
    rate = r.cases / r.seconds if r.seconds else 0.0
    exits = ", ".join(f"exit {k}: {v}" for k, v in sorted(r.codes.items()))
    full_s = DEFAULT_CASES / rate if rate else float("inf")
    stop = (f"; stopped by the {budget_s:g} s budget before {total} cases"
            if r.stopped_by_time else "")
    return [f"{'property':30s} {'cases run':>10s} {'s':>7s} {'cases/s':>8s} {'failures':>8s}",
            f"{f'hostile CLI (in-process, {workers}x)':30s} {r.cases:10d} {r.seconds:7.1f} "
            f"{rate:8.1f} "
            f"{r.failures:8d}",
            f"cli fuzz: {r.cases} cases ({exits}), {r.processes} of them also as a process of "
            f"their own; {r.failures} failed the property (traceback, other exit, two error "
            f"lines, or recorded data changed){stop}",
            f"cli fuzz: {DEFAULT_CASES} cases take {full_s / 60:.0f} min at this rate",
            *(f"cli fuzz: exit 1 (a runtime failure the property allows), {n} × {k}"
              for k, n in sorted(r.exit1.items(), key=lambda kv: -kv[1]))], \
        r.failures


def main() -> int:
    total = int(os.environ.get("DORSIMETER_FUZZ_CASES", DEFAULT_CASES))
    for line in run(total):
        print(line, flush=True)
    cli_total = int(os.environ.get("DORSIMETER_CLI_FUZZ_CASES", DEFAULT_CASES))
    lines, failures = cli_lines(cli_total,
                                float(os.environ.get("DORSIMETER_CLI_FUZZ_S", 600.0)),
                                int(os.environ.get("DORSIMETER_CLI_FUZZ_PROCESS_EVERY", 500)),
                                int(os.environ.get("DORSIMETER_CLI_FUZZ_WORKERS",
                                                   os.cpu_count() or 1)))
    for line in lines:
        print(line, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
