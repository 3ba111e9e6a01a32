"""LR policies as pure functions `lr = policy(t, T)`, their registry, named grids, the torch
`LRScheduler` adapter and curve plots.

Importing this package imports neither torch nor matplotlib: `PolicyScheduler` (torch) loads on
first use and `plot_policies` imports matplotlib when it draws, so the policies stay cheap to use
in a command-line tool or a worker process that never trains.

Example:
    >>> from lrensemble import schedules
    >>> p = schedules.create("multistep", max_lr=0.1)
    >>> round(p(35, 100), 6), round(p(85, 100), 6)
    (0.02, 0.0008)
    >>> len(schedules.grid("table1"))
    16
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lrensemble.schedules import policies as _policies  # noqa: F401  (registers the policies)
from lrensemble.schedules.base import POLICIES, Policy, create, from_spec, list_policies
from lrensemble.schedules.grids import grid, list_grids
from lrensemble.schedules.plot import plot_policies

if TYPE_CHECKING:
    from lrensemble.schedules.torch_scheduler import PolicyScheduler

__all__ = [
    "POLICIES",
    "Policy",
    "PolicyScheduler",
    "create",
    "from_spec",
    "grid",
    "list_grids",
    "list_policies",
    "plot_policies",
]


def __getattr__(name: str) -> Any:
    """Load `PolicyScheduler`, and with it torch, only when it is asked for."""
    if name == "PolicyScheduler":
        from lrensemble.schedules.torch_scheduler import PolicyScheduler

        return PolicyScheduler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
