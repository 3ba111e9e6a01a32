"""The base schedule η(t): torch's `OneCycleLR` (two phases, cosine annealing), step for step.

Written as a function of the step so that the scheduler can read the base LR of any step, and
the controller can take over from it, without a second scheduler object on the optimizer.
"""

from __future__ import annotations

import math


def onecycle_lr(
    step: int,
    total_steps: int,
    max_lr: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> float:
    """`OneCycleLR(anneal_strategy="cos", three_phase=False)`'s LR after `step` calls of
    `step()`: cosine from max_lr / div_factor up to max_lr at step pct_start·T − 1, then cosine
    down to the floor `onecycle_floor(...)` at step T − 1.

    >>> round(onecycle_lr(0, 100, 1.0), 6), round(onecycle_lr(29, 100, 1.0), 6)
    (0.04, 1.0)
    """
    initial = max_lr / div_factor
    peak_step = float(pct_start * total_steps) - 1
    if step <= peak_step:
        return _cos(initial, max_lr, step / peak_step if peak_step > 0 else 1.0)
    span = (total_steps - 1) - peak_step
    floor = onecycle_floor(max_lr, div_factor, final_div_factor)
    return _cos(max_lr, floor, (step - peak_step) / span if span > 0 else 1.0)


def onecycle_floor(max_lr: float, div_factor: float, final_div_factor: float) -> float:
    """The LR one-cycle ends at: max_lr / div_factor / final_div_factor."""
    return max_lr / div_factor / final_div_factor


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
