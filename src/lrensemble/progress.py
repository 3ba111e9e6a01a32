"""Progress bars on a terminal, silence in CI and pipes."""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any


def progress_enabled(requested: bool | None = None) -> bool:
    """Explicit choice wins; otherwise bars only when stderr is a terminal and CI is unset."""
    if requested is not None:
        return requested
    return sys.stderr.isatty() and not os.environ.get("CI")


class Bars:
    """Thin wrapper around `rich.progress` that does nothing when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None

    def __enter__(self) -> Bars:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def add(self, description: str, total: int, completed: int = 0) -> Any:
        if self._progress is None:
            return None
        return self._progress.add_task(description, total=total, completed=completed, info="")

    def update(self, task: Any, **kwargs: Any) -> None:
        if self._progress is not None and task is not None:
            self._progress.update(task, **kwargs)


def maybe(enabled: bool) -> AbstractContextManager[Bars]:
    return Bars(enabled) if enabled else nullcontext(Bars(False))
