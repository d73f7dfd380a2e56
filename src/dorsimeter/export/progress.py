"""A progress bar on stderr for long work (export of a long session, many sessions)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

# below this many steps the work is quick and a bar would only flicker
MIN_STEPS_FOR_BAR = 20_000

_active: Progress | None = None  # the bar on screen; nested work adds a line to it


@contextmanager
def progress_bar(description: str, total: int, min_total: int | None = None) -> Iterator:
    """Yields ``advance(n)``; a bar on stderr when ``total`` is large and stderr is a terminal."""
    global _active
    if _active is not None:  # inside another bar (one session of many): a line of its own
        bar = _active
        task = bar.add_task(description, total=total)
        try:
            yield lambda n=1: bar.advance(task, n)
        finally:
            bar.remove_task(task)
        return
    console = Console(file=sys.stderr)
    show = total >= (MIN_STEPS_FOR_BAR if min_total is None else min_total) and console.is_terminal
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True,
                  disable=not show) as bar:
        task = bar.add_task(description, total=total)
        _active = bar if show else None
        try:
            yield lambda n=1: bar.advance(task, n)
        finally:
            _active = None
