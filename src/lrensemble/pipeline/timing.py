"""Inference time of a pool's members, for the report's cost table: their models rebuilt from
their records and weights, timed on random inputs of the training shape."""

from __future__ import annotations

import time

from lrensemble.pipeline.members import RebuildError, model_inputs, rebuild_model
from lrensemble.pool import Pool
from lrensemble.report.analysis import InferenceTimer


def inference_timer(pool: Pool, repeats: int = 3) -> InferenceTimer:
    """A function timing teams of `pool` (what `build_report(inference=...)` takes)."""

    def measure(ids: list[str], n: int) -> tuple[float | None, str | None]:
        return inference_seconds(pool, ids, n, repeats)

    return measure


def inference_seconds(
    pool: Pool, ids: list[str], n: int, repeats: int = 3
) -> tuple[float | None, str | None]:
    """Seconds to predict `n` samples with every model of `ids` (batch 1024, best of
    `repeats`), on random inputs of the training shape, and why not: (None, None) when a
    member has no weights or model spec (imported predictions), (None, reason) when a
    member's model cannot be rebuilt from its record and weights."""
    try:
        import torch

        from lrensemble.train.evaluate import predict_logits
    except ImportError:
        return None, None
    models, shape = [], None
    for member in ids:
        try:
            model = rebuild_model(pool, member)
        except RebuildError as exc:
            return None, exc.reason
        if model is None:
            return None, None
        models.append(model)
        shape = model_inputs(pool.member(member))[1]
    x = torch.randn(n, *shape, generator=torch.Generator().manual_seed(0))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for model in models:
            predict_logits(model, x, 1024, torch.device("cpu"))
        best = min(best, time.perf_counter() - t0)
    return best, None
