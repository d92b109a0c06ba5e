"""One rich progress bar with a task per stage, fed by the ``progress(stage, done, total)``
callbacks the library's long jobs take (evaluation suites, site writers, demo streams)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console


@contextlib.contextmanager
def stage_progress(
    console: Console, *, enabled: bool = True, transient: bool = False
) -> Iterator[Callable[[str, float, float], None]]:
    """Yields ``update(stage, done, total)``: the first call of a stage adds its bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not enabled, transient=transient) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: float, total: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update
