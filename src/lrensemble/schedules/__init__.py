"""LR policies as pure functions `lr = policy(t, T)`, their registry, named grids, the torch
`LRScheduler` adapter and curve plots.

Example:
    >>> from lrensemble import schedules
    >>> p = schedules.create("multistep", max_lr=0.1)
    >>> round(p(35, 100), 6), round(p(85, 100), 6)
    (0.02, 0.0008)
    >>> len(schedules.grid("table1"))
    16
"""

from lrensemble.schedules import policies as _policies  # noqa: F401  (registers the policies)
from lrensemble.schedules.base import POLICIES, Policy, create, from_spec, list_policies
from lrensemble.schedules.grids import grid, list_grids
from lrensemble.schedules.plot import plot_policies
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
