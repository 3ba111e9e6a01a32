"""Pruning masks for Prune-and-Tune children (seed 003): which weights each child keeps.

Masks cover the weight of every Conv and Linear layer except the output layer (named
explicitly by `classifier_name`, not guessed from the layer order); biases and normalization
layers are never pruned, except a pruned neuron's own bias. A mask is a dict from parameter
name to a boolean tensor (True: kept), what `lrensemble.train.WeightMask` takes.

- connection pruning: individual weights, unstructured;
- neuron pruning: whole output channels (Conv) or rows (Linear), with their biases;
- per layer (each layer loses `sparsity` of its weights or neurons), or global (`sparsity` of all
  prunable weights or neurons together, spread at random across layers);
- random: independent masks; anti-random pairs: a random half and its complement; anti-random
  partition: N children split every layer's weights (or neurons) into N disjoint parts, so each
  parent weight lives in exactly one child.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lrensemble.errors import ParameterError
from lrensemble.train.pretrained import classifier_name

Mask = dict[str, torch.Tensor]
STRATEGIES = ("random", "antirandom", "partition")
PRUNE = ("connection", "neuron")
SCOPES = ("layer", "global")
PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Conv and Linear layer but the output layer, in registration order."""
    head = classifier_name(model)
    layers = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, PRUNABLE) and name != head and not name.startswith(head + ".")
    ]
    if not layers:
        raise ParameterError(
            f"The model {type(model).__name__} has no Conv or Linear layer to prune besides its "
            "output layer."
        )
    return layers


def _units(module: nn.Module, prune: str) -> int:
    """How many units a layer has: weights (connection pruning) or output neurons."""
    return module.weight.numel() if prune == "connection" else module.weight.shape[0]


def _to_mask(module: nn.Module, name: str, keep: torch.Tensor, prune: str) -> Mask:
    """A layer's mask entries from a boolean vector over its units."""
    w = module.weight
    if prune == "connection":
        return {f"{name}.weight": keep.reshape(w.shape)}
    shape = (w.shape[0],) + (1,) * (w.ndim - 1)
    mask = {f"{name}.weight": keep.reshape(shape).expand(w.shape).clone()}
    if module.bias is not None:
        mask[f"{name}.bias"] = keep.clone()
    return mask


def _random_keep(n: int, sparsity: float, gen: torch.Generator) -> torch.Tensor:
    """Exactly round(n · sparsity) of n units dropped, at random (at least one kept)."""
    drop = min(round(n * sparsity), n - 1)
    keep = torch.ones(n, dtype=torch.bool)
    keep[torch.randperm(n, generator=gen)[:drop]] = False
    return keep


def _layer_vectors(
    layers: Sequence[tuple[str, nn.Module]], prune: str, scope: str, draw: Any
) -> list[torch.Tensor]:
    """One boolean vector per layer: `draw(n)` gives the vector over n units, per layer or
    once over all layers' units together (global)."""
    sizes = [_units(m, prune) for _, m in layers]
    if scope == "layer":
        return [draw(n) for n in sizes]
    flat = draw(sum(sizes))
    return list(torch.split(flat, sizes))


def child_masks(
    model: nn.Module,
    count: int,
    strategy: str = "random",
    prune: str = "connection",
    sparsity: float = 0.5,
    scope: str = "layer",
    seed: int = 0,
) -> list[Mask]:
    """The masks of `count` children. `sparsity` is the fraction of weights (or neurons) each
    child loses; anti-random pairs use 0.5 (a half and its complement) and a partition
    1 − 1/count (each child keeps one part), whatever `sparsity` says."""
    for value, allowed, what in (
        (strategy, STRATEGIES, "strategy"),
        (prune, PRUNE, "prune"),
        (scope, SCOPES, "scope"),
    ):
        if value not in allowed:
            raise ParameterError(f"Unknown {what} {value!r}; use one of {', '.join(allowed)}.")
    if not 0.0 <= sparsity < 1.0:
        raise ParameterError(f"sparsity must be in [0, 1), got {sparsity}.")
    if count < 1 or (strategy == "partition" and count < 2):
        raise ParameterError(f"A {strategy} strategy needs more children, got {count}.")
    layers = prunable_layers(model)
    gen = torch.Generator().manual_seed(seed)

    def masks_of(vectors: list[torch.Tensor]) -> Mask:
        out: Mask = {}
        for (name, module), keep in zip(layers, vectors, strict=True):
            out.update(_to_mask(module, name, keep, prune))
        return out

    children: list[Mask] = []
    if strategy == "random":
        for _ in range(count):
            vectors = _layer_vectors(layers, prune, scope, lambda n: _random_keep(n, sparsity, gen))
            children.append(masks_of(vectors))
    elif strategy == "antirandom":
        while len(children) < count:
            vectors = _layer_vectors(layers, prune, scope, lambda n: _random_keep(n, 0.5, gen))
            children.append(masks_of(vectors))
            if len(children) < count:
                children.append(masks_of([~v for v in vectors]))
    else:  # partition: part k of a random permutation, per layer or over all units

        def parts(n: int) -> torch.Tensor:
            owner = torch.empty(n, dtype=torch.long)
            owner[torch.randperm(n, generator=gen)] = torch.arange(n) % count
            return owner

        owners = _layer_vectors(layers, prune, scope, parts)
        children = [masks_of([o == k for o in owners]) for k in range(count)]
    for i, mask in enumerate(children):
        dead = [n for n, m in mask.items() if n.endswith(".weight") and not m.any()]
        if dead:
            raise ParameterError(
                f"Child {i + 1} of {count} ({strategy}, {prune}, {scope}) would keep nothing of "
                f"{dead[0].removesuffix('.weight')}, which has too few units; use fewer "
                "children, a lower sparsity, per-layer scope or connection pruning."
            )
    return children


def mask_stats(model: nn.Module, mask: Mask, input_shape: Sequence[int]) -> dict[str, Any]:
    """A child's size and cost: its sparsity over the prunable weights, its non-zero parameter
    count (every parameter, pruned ones left out) and the multiply-adds of one forward pass on
    one input through Conv and Linear layers (kept weights × output positions), against the
    dense parent's."""
    positions = _output_positions(model, input_shape)
    total = sum(p.numel() for p in model.parameters())
    pruned = sum(int((~m).sum()) for m in mask.values())
    prunable = sum(_units(m, "connection") for _, m in prunable_layers(model))
    pruned_weights = sum(int((~m).sum()) for n, m in mask.items() if n.endswith(".weight"))
    flops = dense = 0
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE):
            kept = mask.get(f"{name}.weight")
            weights = module.weight.numel() if kept is None else int(kept.sum())
            flops += weights * positions[name]
            dense += module.weight.numel() * positions[name]
    return {
        "sparsity": pruned_weights / prunable,
        "nonzero_parameters": total - pruned,
        "parameters": total,
        "flops": flops,
        "dense_flops": dense,
    }


def _output_positions(model: nn.Module, input_shape: Sequence[int]) -> dict[str, int]:
    """Per Conv/Linear layer, how many output positions one input gives (1 for Linear), from a
    forward pass of a copy on the meta device (nothing is computed or allocated)."""
    probe = copy.deepcopy(model).to("meta").eval()
    positions: dict[str, int] = {}
    for name, module in probe.named_modules():
        if isinstance(module, PRUNABLE):

            def keep(_m: nn.Module, _args: Any, out: torch.Tensor, name: str = name) -> None:
                # Conv: (N, C, *spatial) -> the spatial positions; Linear: (N, *tokens, D)
                spatial = out.shape[2:] if not isinstance(_m, nn.Linear) else out.shape[1:-1]
                positions[name] = math.prod(spatial)

            module.register_forward_hook(keep)
    with torch.no_grad():
        probe(torch.empty(1, *input_shape, device="meta"))
    return positions
