"""The registered LR policies, exactly as in shared/reference/lr-policies.md.

Each factory checks its parameters and returns a `Policy` closing over plain floats, so calling
it every iteration costs a few float operations.
"""

from __future__ import annotations

import math
from typing import Any

from lrensemble.errors import ParameterError
from lrensemble.schedules.base import (
    Policy,
    cosine_between,
    cycle_phase,
    epochs_list,
    fractions,
    lr_range,
    non_negative,
    number,
    positive,
    reached,
    register_policy,
)

# --- the four policies of the LREnsemble paper (Table 1, appendix B) -----------------------------


@register_policy("multistep")
def multistep(*, max_lr: float, gamma: float = 0.2, milestones: Any = (0.3, 0.6, 0.8)) -> Policy:
    """max_lr · gamma^(number of milestones m with t >= m·T); torch `MultiStepLR` per epoch."""
    k0 = positive("max_lr", max_lr)
    g = positive("gamma", gamma)
    ms = fractions("milestones", milestones)

    def fn(t: float, T: float) -> float:
        return k0 * g ** sum(reached(t, m, T) for m in ms)

    return Policy("multistep", {"max_lr": k0, "gamma": g, "milestones": list(ms)}, fn)


@register_policy("onecycle")
def onecycle(
    *, max_lr: float, min_lr: float = 0.0, pct_start: float = 0.3, div_factor: float = 25.0
) -> Policy:
    """Cosine warm-up from max_lr/div_factor to max_lr over pct_start·T, then cosine down to
    min_lr at T; torch `OneCycleLR(anneal_strategy="cos")` up to its one-step peak offset."""
    k0, k1 = lr_range(max_lr, min_lr)
    p = number("pct_start", pct_start, low=0.0, high=1.0, low_open=True, high_open=True)
    div = positive("div_factor", div_factor)
    lr0 = k0 / div

    def fn(t: float, T: float) -> float:
        peak = p * T
        if t <= peak:
            return cosine_between(lr0, k0, t / peak)
        return cosine_between(k0, k1, min((t - peak) / (T - peak), 1.0))

    return Policy("onecycle", {"max_lr": k0, "min_lr": k1, "pct_start": p, "div_factor": div}, fn)


@register_policy("warmup_cosine")
def warmup_cosine(*, max_lr: float, min_lr: float = 0.0, warmup: float = 0.05) -> Policy:
    """Linear warm-up from 0 over warmup·T, then cosine from max_lr to min_lr at T."""
    k0, k1 = lr_range(max_lr, min_lr)
    w = number("warmup", warmup, low=0.0, high=1.0, high_open=True)

    def fn(t: float, T: float) -> float:
        wt = w * T
        if t < wt:
            return k0 * t / wt
        return cosine_between(k0, k1, min((t - wt) / (T - wt), 1.0))

    return Policy("warmup_cosine", {"max_lr": k0, "min_lr": k1, "warmup": w}, fn)


@register_policy("composite")
def composite(
    *,
    max_lr: float,
    min_lr: float,
    gamma: float = 0.1,
    milestones: Any = (0.45, 0.9),
    cycle_epochs: Any = (3, 2, 1),
) -> Policy:
    """Cosine annealing with restarts every cycle_epochs[s] epochs in stage s, peak and floor
    both multiplied by gamma at each milestone.

    This is our reconstruction: the paper names only the stages (l), gamma and the per-stage
    cycle length (l_cycle); we read the cycle length in epochs and the cycle shape as cosine
    with restarts (shared/reference/lr-policies.md).
    """
    k0, k1 = lr_range(max_lr, min_lr)
    g = positive("gamma", gamma)
    ms = fractions("milestones", milestones)
    cycles = epochs_list("cycle_epochs", cycle_epochs, length=len(ms) + 1)
    starts = (0.0, *ms)

    def fn(t: float, T: float) -> float:
        stage = sum(reached(t, m, T) for m in ms)
        tau = t - starts[stage] * T
        phase = cycle_phase(tau, cycles[stage])
        return g**stage * cosine_between(k0, k1, phase)

    params = {
        "max_lr": k0,
        "min_lr": k1,
        "gamma": g,
        "milestones": list(ms),
        "cycle_epochs": list(cycles),
    }
    return Policy("composite", params, fn)


# --- the further family --------------------------------------------------------------------------


@register_policy("constant")
def constant(*, max_lr: float) -> Policy:
    """The same LR throughout."""
    k0 = positive("max_lr", max_lr)
    return Policy("constant", {"max_lr": k0}, lambda t, T: k0)


@register_policy("pat_parent")
def pat_parent(
    *, max_lr: float, decay_start: float = 0.5, decay_end: float = 0.9, final: float = 0.01
) -> Policy:
    """The Prune-and-Tune paper's parent schedule: max_lr until decay_start·T, a straight line
    down to final·max_lr at decay_end·T, then constant."""
    k0 = positive("max_lr", max_lr)
    a, b = fractions("decay_start, decay_end", (decay_start, decay_end))
    f = number("final", final, low=0.0, high=1.0, low_open=True)

    def fn(t: float, T: float) -> float:
        if not reached(t, a, T):
            return k0
        if reached(t, b, T):
            return k0 * f
        return k0 * (1.0 + (f - 1.0) * (t / T - a) / (b - a))

    params = {"max_lr": k0, "decay_start": a, "decay_end": b, "final": f}
    return Policy("pat_parent", params, fn)


@register_policy("linear")
def linear(*, max_lr: float, min_lr: float = 0.0) -> Policy:
    """Straight line from max_lr at 0 to min_lr at T; torch `LinearLR`.

    min_lr may exceed max_lr, so a rising line serves as a warm-up stage of `piecewise`.
    """
    k0, k1 = positive("max_lr", max_lr), non_negative("min_lr", min_lr)
    return Policy(
        "linear", {"max_lr": k0, "min_lr": k1}, lambda t, T: k0 + (k1 - k0) * min(t / T, 1.0)
    )


@register_policy("exponential")
def exponential(*, max_lr: float, gamma: float) -> Policy:
    """max_lr · gamma^t, gamma per epoch; torch `ExponentialLR` stepped per epoch."""
    k0 = positive("max_lr", max_lr)
    g = positive("gamma", gamma)
    return Policy("exponential", {"max_lr": k0, "gamma": g}, lambda t, T: k0 * g**t)


@register_policy("step")
def step(*, max_lr: float, step_epochs: float, gamma: float = 0.1) -> Policy:
    """max_lr · gamma^floor(t / step_epochs); torch `StepLR` stepped per epoch."""
    k0 = positive("max_lr", max_lr)
    s = positive("step_epochs", step_epochs)
    g = positive("gamma", gamma)

    def fn(t: float, T: float) -> float:
        return k0 * g ** math.floor(t / s + 1e-9)

    return Policy("step", {"max_lr": k0, "step_epochs": s, "gamma": g}, fn)


@register_policy("inverse")
def inverse(*, max_lr: float, gamma: float, power: float) -> Policy:
    """max_lr · (1 + gamma·t)^-power (Caffe's "inv")."""
    k0 = positive("max_lr", max_lr)
    g = non_negative("gamma", gamma)
    pw = non_negative("power", power)
    return Policy(
        "inverse", {"max_lr": k0, "gamma": g, "power": pw}, lambda t, T: k0 * (1 + g * t) ** -pw
    )


@register_policy("poly")
def poly(*, max_lr: float, min_lr: float = 0.0, power: float = 1.0) -> Policy:
    """min_lr + (max_lr − min_lr)(1 − t/T)^power; torch `PolynomialLR` when min_lr = 0."""
    k0, k1 = lr_range(max_lr, min_lr)
    pw = positive("power", power)

    def fn(t: float, T: float) -> float:
        return k1 + (k0 - k1) * max(1.0 - t / T, 0.0) ** pw

    return Policy("poly", {"max_lr": k0, "min_lr": k1, "power": pw}, fn)


@register_policy("cosine")
def cosine(*, max_lr: float, min_lr: float = 0.0) -> Policy:
    """Half-cosine from max_lr to min_lr over T; torch `CosineAnnealingLR(T_max=T)`."""
    k0, k1 = lr_range(max_lr, min_lr)
    return Policy(
        "cosine", {"max_lr": k0, "min_lr": k1}, lambda t, T: cosine_between(k0, k1, min(t / T, 1))
    )


@register_policy("cosine_restarts")
def cosine_restarts(
    *, max_lr: float, cycle_epochs: float, min_lr: float = 0.0, cycle_mult: float = 1.0
) -> Policy:
    """SGDR: cosine from max_lr to min_lr, restarted after cycle_epochs, each cycle cycle_mult
    times longer; torch `CosineAnnealingWarmRestarts`."""
    k0, k1 = lr_range(max_lr, min_lr)
    p0 = positive("cycle_epochs", cycle_epochs)
    mult = number("cycle_mult", cycle_mult, low=1.0)

    def fn(t: float, T: float) -> float:
        if mult == 1.0:
            return cosine_between(k0, k1, cycle_phase(t, p0))
        n = math.floor(math.log(t / p0 * (mult - 1) + 1, mult) + 1e-12) if t > 0 else 0
        start = p0 * (mult**n - 1) / (mult - 1)
        return cosine_between(k0, k1, min(max((t - start) / (p0 * mult**n), 0.0), 1.0))

    params = {"max_lr": k0, "min_lr": k1, "cycle_epochs": p0, "cycle_mult": mult}
    return Policy("cosine_restarts", params, fn)


def _cyclic(
    name: str, max_lr: float, min_lr: float, half_cycle_epochs: float, gamma: float | None
) -> Policy:
    k0, k1 = lr_range(max_lr, min_lr)
    h = positive("half_cycle_epochs", half_cycle_epochs)
    g = None if gamma is None else number("gamma", gamma, low=0.0, high=1.0, low_open=True)

    def fn(t: float, T: float) -> float:
        cycle = math.floor(1 + t / (2 * h) + 1e-12)
        x = abs(t / h - 2 * cycle + 1)
        height = (k0 - k1) * max(0.0, 1.0 - x)
        if name == "triangular2":
            height /= 2.0 ** (cycle - 1)
        elif name == "exp_range":
            height *= g**t  # type: ignore[operator]
        return k1 + height

    params: dict[str, Any] = {"max_lr": k0, "min_lr": k1, "half_cycle_epochs": h}
    if g is not None:
        params["gamma"] = g
    return Policy(name, params, fn)


@register_policy("triangular")
def triangular(*, max_lr: float, min_lr: float, half_cycle_epochs: float) -> Policy:
    """CLR triangle between min_lr and max_lr, half a cycle every half_cycle_epochs; torch
    `CyclicLR(mode="triangular")`."""
    return _cyclic("triangular", max_lr, min_lr, half_cycle_epochs, None)


@register_policy("triangular2")
def triangular2(*, max_lr: float, min_lr: float, half_cycle_epochs: float) -> Policy:
    """CLR triangle whose amplitude halves every cycle; torch `CyclicLR(mode="triangular2")`."""
    return _cyclic("triangular2", max_lr, min_lr, half_cycle_epochs, None)


@register_policy("exp_range")
def exp_range(*, max_lr: float, min_lr: float, half_cycle_epochs: float, gamma: float) -> Policy:
    """CLR triangle whose amplitude decays by gamma per epoch; torch `CyclicLR(mode="exp_range")`
    with its per-iteration gamma equal to gamma^(1/steps_per_epoch)."""
    return _cyclic("exp_range", max_lr, min_lr, half_cycle_epochs, gamma)


# --- composition ---------------------------------------------------------------------------------


def _as_policy(value: Any, where: str) -> Policy:
    from lrensemble.schedules.base import from_spec

    if isinstance(value, Policy):
        return value
    if isinstance(value, dict):
        return from_spec(value)
    raise ParameterError(f"{where} must be a policy or a policy table, got {value!r}.")


@register_policy("piecewise")
def piecewise(*, stages: Any) -> Policy:
    """Run each stage's policy on its own clock, restarted at the stage's start.

    `stages` is a list of `(until_fraction, policy)`: stage i covers progress from the previous
    stage's until_fraction (0 for the first) to its own, which must increase and end at 1. The
    stage's policy sees local time t − start and total length (until − start)·T (LRBench).
    """
    if not isinstance(stages, (list, tuple)) or not stages:
        raise ParameterError("piecewise needs a non-empty list of (until_fraction, policy) stages.")
    parsed: list[tuple[float, Policy]] = []
    prev = 0.0
    for i, stage in enumerate(stages):
        if not isinstance(stage, (list, tuple)) or len(stage) != 2:
            raise ParameterError(f"piecewise stage {i} must be a pair (until_fraction, policy).")
        until = number(f"stages[{i}] until_fraction", stage[0], low=0.0, high=1.0, low_open=True)
        if until <= prev:
            raise ParameterError(
                f"piecewise stages must end at increasing fractions, got {until:g} after {prev:g}."
            )
        parsed.append((until, _as_policy(stage[1], f"piecewise stage {i}")))
        prev = until
    if abs(prev - 1.0) > 1e-12:
        raise ParameterError(f"The last piecewise stage must end at 1.0, got {prev:g}.")
    bounds = [0.0] + [u for u, _ in parsed]

    def fn(t: float, T: float) -> float:
        i = 0
        while i < len(parsed) - 1 and reached(t, bounds[i + 1], T):
            i += 1
        start = bounds[i] * T
        return parsed[i][1](max(t - start, 0.0), (bounds[i + 1] - bounds[i]) * T)

    return Policy("piecewise", {"stages": [[u, p] for u, p in parsed]}, fn)


@register_policy("scaled")
def scaled(*, policy: Any, factor: float) -> Policy:
    """Another policy's LR multiplied by a constant factor."""
    inner = _as_policy(policy, "scaled policy")
    f = positive("factor", factor)
    return Policy("scaled", {"policy": inner, "factor": f}, lambda t, T: f * inner(t, T))
