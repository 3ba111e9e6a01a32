"""The auto-LR controller: pure tensor math over the N replicas' losses and values.

No communication here: the scheduler (one rank) and the simulation (N replicas in one process)
hand it the same inputs and get the same outputs. Every input is float64; a *slot* is one
controlled quantity (a parameter group's LR, or a hyperparameter), the columns of `values`.

The update, per slot g (reference values β = 0.9, λ = 0.5):

    s_r = (mean_r L − L_r) / σ,   w = softmax(s)
    Δ_g = Σ_r w_r x_{r,g} − mean_r x_{r,g}
    v_g ← β v_g + (1 − β) Δ_g
    x̄_g ← clamp(x̄_g (1 − γ_g) + λ v_g, low_g, high_g)

The decay γ (our decision: the reference formula has the wrong sign and would grow the LR): with
K sync intervals left, pure decay must bring x̄ to the floor after K updates,
(1 − γ)^K · x̄ = floor  ⇒  γ = 1 − (floor / x̄)^(1/K)  (0 when x̄ is already at the floor).
"""

from __future__ import annotations

import torch


def replica_weights(losses: torch.Tensor, sigma: float) -> torch.Tensor:
    """w = softmax((mean L − L_r) / σ): lower loss, more weight. A replica with a non-finite
    loss (diverged) gets weight 0; if none is finite, the weights are uniform (no signal)."""
    finite = torch.isfinite(losses)
    if not bool(finite.any()):
        return torch.full_like(losses, 1.0 / losses.numel())
    mean = losses[finite].mean()
    scores = torch.where(finite, (mean - losses) / sigma, torch.full_like(losses, -torch.inf))
    return torch.softmax(scores, dim=0)


def decay_rate(base: torch.Tensor, floor: torch.Tensor, intervals_left: int) -> torch.Tensor:
    """γ per slot such that (1 − γ)^K · base = floor, K = intervals_left (at least 1); 0 where
    the base is at or below the floor."""
    k = max(int(intervals_left), 1)
    ratio = torch.where(base > floor, floor / base, torch.ones_like(base))
    return 1.0 - ratio.clamp(min=0.0) ** (1.0 / k)


def controller_update(
    losses: torch.Tensor,
    values: torch.Tensor,
    base: torch.Tensor,
    velocity: torch.Tensor,
    *,
    beta: float,
    lam: float,
    sigma: float,
    gamma: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One controller update. `losses` (N,): each replica's mean loss over the last interval;
    `values` (N, S): each replica's value per slot; `base`, `velocity`, `gamma`, `low`, `high`
    (S,). Returns the new base and velocity."""
    w = replica_weights(losses, sigma)
    delta = w @ values - values.mean(dim=0)
    velocity = beta * velocity + (1.0 - beta) * delta
    base = torch.minimum(torch.maximum(base * (1.0 - gamma) + lam * velocity, low), high)
    return base, velocity
