"""The snapshot variants as trainer hooks (`lrensemble.train.hooks`): feature distance to model 1
(SSE-MSE), weight orthogonality (StarSSE-WO), prediction diversity by cross-entropy
(StarSSE-CE, versions 1 and 2) and layer freezing. Each hook's `spec()` names what it depends on
(its weight, the digests of the models it compares with), so a member's identity covers it."""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lrensemble.errors import ParameterError
from lrensemble.train.checkpoint import weights_digest
from lrensemble.train.hooks import TrainContext, TrainHook
from lrensemble.train.pretrained import classifier_name


def _frozen_copy(model: nn.Module) -> nn.Module:
    """A model used only as a reference: eval mode, no gradients."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _classifier(model: nn.Module) -> nn.Module:
    return model.get_submodule(classifier_name(model))


class FeatureDistance(TrainHook):
    """SSE-MSE: `alpha · MSE(f(x), f₁(x))`, f the current model's penultimate features (its
    classifier's input in the same forward pass) and f₁ those of a frozen model 1 in eval mode
    on the same batch."""

    def __init__(self, reference: nn.Module, alpha: float) -> None:
        self.reference, self.alpha = _frozen_copy(reference), float(alpha)
        self._features: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    def spec(self) -> dict[str, Any]:
        return {
            "hook": "FeatureDistance",
            "alpha": self.alpha,
            "reference": weights_digest(self.reference),
        }

    def _keep(self, key: str) -> Any:
        def keep(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            self._features[key] = args[0]

        return keep

    def on_train_start(self, ctx: TrainContext) -> None:
        self.reference.to(ctx.device)
        self._handles = [
            _classifier(ctx.model).register_forward_pre_hook(self._keep("own")),
            _classifier(self.reference).register_forward_pre_hook(self._keep("reference")),
        ]

    def extra_loss(self, ctx, x, y, logits):  # type: ignore[no-untyped-def]
        features = self._features.pop("own", None)
        if features is None:
            return None
        with torch.no_grad():
            self.reference(x)
        target = self._features.pop("reference")
        return self.alpha * F.mse_loss(features, target)

    def cleanup(self, ctx: TrainContext) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


class _PerBatchChoice(TrainHook):
    """Draws, per batch, one of the earlier models with a seeded generator whose state is part
    of the checkpoint (so a resumed cycle draws what an uninterrupted one would)."""

    def __init__(self, others: Sequence[nn.Module], alpha: float, seed: int) -> None:
        self.others = [_frozen_copy(m) for m in others]
        self.alpha, self.seed = float(alpha), int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def _draw(self) -> nn.Module | None:
        if not self.others:
            return None
        j = int(torch.randint(len(self.others), (1,), generator=self.generator))
        return self.others[j]

    def _spec(self, name: str, **extra: Any) -> dict[str, Any]:
        return {
            "hook": name,
            "alpha": self.alpha,
            "seed": self.seed,
            "others": [weights_digest(m) for m in self.others],
            **extra,
        }

    def on_train_start(self, ctx: TrainContext) -> None:
        for m in self.others:
            m.to(ctx.device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self.generator.set_state(state["generator"].to(torch.uint8).cpu())


class WeightOrthogonality(_PerBatchChoice):
    """StarSSE-WO: `alpha · cos²(w, w_j)`, w the current flattened parameters and w_j those of
    an earlier star member drawn per batch. The gradient flows through w (our decision: the
    reference code cut it, so the term had no effect)."""

    def spec(self) -> dict[str, Any]:
        return self._spec("WeightOrthogonality")

    def extra_loss(self, ctx, x, y, logits):  # type: ignore[no-untyped-def]
        other = self._draw()
        if other is None:
            return None
        dot = torch.zeros((), device=logits.device)
        own_sq = torch.zeros((), device=logits.device)
        other_sq = torch.zeros((), device=logits.device)
        for w, w_j in zip(ctx.model.parameters(), other.parameters(), strict=True):
            dot = dot + (w * w_j).sum()
            own_sq = own_sq + (w * w).sum()
            other_sq = other_sq + (w_j * w_j).sum()
        return self.alpha * dot.pow(2) / (own_sq * other_sq).clamp_min(1e-24)


class PredictionDiversity(_PerBatchChoice):
    """StarSSE-CE: `−alpha · CE(f(x), argmax f_j(x))`, f_j an earlier star member drawn per
    batch. Version 1 averages over the batch; version 2 counts only the samples model j gets
    wrong (their sum over the batch size: an empty mask contributes 0, never NaN)."""

    def __init__(
        self, others: Sequence[nn.Module], alpha: float, seed: int, version: int = 2
    ) -> None:
        if version not in (1, 2):
            raise ParameterError(f"The CE variant has versions 1 and 2, got {version}.")
        super().__init__(others, alpha, seed)
        self.version = version

    def spec(self) -> dict[str, Any]:
        return self._spec("PredictionDiversity", version=self.version)

    def extra_loss(self, ctx, x, y, logits):  # type: ignore[no-untyped-def]
        other = self._draw()
        if other is None:
            return None
        with torch.no_grad():
            pseudo = other(x).argmax(dim=1)
        per_sample = F.cross_entropy(logits, pseudo, reduction="none")
        if self.version == 2:
            per_sample = per_sample * (pseudo != y).to(per_sample.dtype)
        return -self.alpha * per_sample.sum() / max(len(per_sample), 1)


def model_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's blocks in order, for freezing a prefix: its top-level modules except the
    classifier, each top-level `nn.Sequential` taken layer by layer; layers without parameters
    or buffers (activations, flatten) are not counted."""
    head = classifier_name(model)
    blocks = []
    for name, child in model.named_children():
        if name == head:
            continue
        parts = (
            [(f"{name}.{n}", c) for n, c in child.named_children()]
            if isinstance(child, nn.Sequential)
            else [(name, child)]
        )
        blocks += [
            (n, c) for n, c in parts if any(True for _ in c.parameters()) or list(c.buffers())
        ]
    return blocks


def _always_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


class FreezeBlocks(TrainHook):
    """Layer freezing: the first `count` blocks (`model_blocks`) get no gradient and keep their
    normalization statistics (they stay in eval mode whatever `model.train()` says)."""

    def __init__(self, count: int) -> None:
        self.count = int(count)
        self._frozen: list[nn.Module] = []

    def spec(self) -> dict[str, Any]:
        return {"hook": "FreezeBlocks", "blocks": self.count}

    def check(self, model: nn.Module) -> list[nn.Module]:
        """The blocks to freeze, or one sentence when the model has fewer."""
        blocks = model_blocks(model)
        if self.count > len(blocks):
            raise ParameterError(
                f"freeze = {self.count}, but the model has {len(blocks)} blocks "
                f"({', '.join(n for n, _ in blocks)})."
            )
        return [module for _, module in blocks[: self.count]]

    def on_train_start(self, ctx: TrainContext) -> None:
        self._frozen = self.check(ctx.model)
        for module in self._frozen:
            for p in module.parameters():
                p.requires_grad_(False)
            module.train = types.MethodType(_always_eval, module)  # type: ignore[method-assign]
            module.eval()

    def cleanup(self, ctx: TrainContext) -> None:
        for module in self._frozen:
            for p in module.parameters():
                p.requires_grad_(True)
            del module.train  # back to nn.Module.train
        self._frozen = []
