"""Named grids of policies: the LREnsemble paper's 16-policy Table 1."""

from __future__ import annotations

from collections.abc import Callable

from lrensemble.errors import UnknownNameError
from lrensemble.schedules.base import Policy, create, positive


def _table1(scale: float) -> list[Policy]:
    grid: list[Policy] = []
    for lr in (0.2, 0.1, 0.05, 0.01):
        grid.append(create("multistep", max_lr=lr * scale, gamma=0.2, milestones=[0.3, 0.6, 0.8]))
    for lr in (0.4, 0.2, 0.1, 0.05):
        grid.append(create("onecycle", max_lr=lr * scale, min_lr=0.0))
    for lr in (0.2, 0.1, 0.05, 0.01):
        grid.append(create("warmup_cosine", max_lr=lr * scale, min_lr=0.0))
    for lr in (1.0, 0.5, 0.25, 0.05):
        grid.append(
            create(
                "composite",
                max_lr=lr * scale,
                min_lr=lr * scale / 5,
                gamma=0.1,
                milestones=[0.45, 0.9],
                cycle_epochs=[3, 2, 1],
            )
        )
    return grid


_GRIDS: dict[str, Callable[[float], list[Policy]]] = {"table1": _table1}


def list_grids() -> list[str]:
    """Names of the built-in policy grids."""
    return sorted(_GRIDS)


def grid(name: str = "table1", scale: float = 1.0) -> list[Policy]:
    """A named grid of policies with every LR multiplied by `scale`.

    `grid("table1")` is the paper's 16 policies for SGD from scratch; `scale=0.01` gives its
    fine-tuning rows, and about the same suits Adam-family optimizers.
    """
    if name not in _GRIDS:
        raise UnknownNameError(f"Unknown policy grid {name!r}; known: {', '.join(list_grids())}.")
    return _GRIDS[name](positive("scale", scale))
