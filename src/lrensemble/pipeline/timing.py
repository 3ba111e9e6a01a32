"""Inference time of a pool's members, for the report's cost table: their models rebuilt from
their records and weights, timed on random inputs of the training shape."""

from __future__ import annotations

import time

from lrensemble.errors import LREnsembleError
from lrensemble.pool import WEIGHTS_FILE as WEIGHTS
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

        from lrensemble.models import create_model
        from lrensemble.train.checkpoint import load_weights
        from lrensemble.train.evaluate import predict_logits
    except ImportError:
        return None, None
    models, shape = [], None
    for member in ids:
        record = pool.member(member)
        spec, data = record.get("model"), record.get("dataset")
        weights = pool.member_file(member, WEIGHTS)
        if not isinstance(spec, dict) or "name" not in spec or not weights.exists():
            return None, None
        data = data if isinstance(data, dict) else {}
        classes, shape = data.get("num_classes"), data.get("input_shape")
        if not isinstance(classes, int) or not (
            isinstance(shape, list) and all(isinstance(s, int) and s > 0 for s in shape)
        ):
            return None, (
                f"member {member}'s record has no valid dataset.num_classes and "
                "dataset.input_shape to rebuild its model"
            )
        params = {k: v for k, v in spec.items() if k != "name"}
        try:
            model = create_model(spec["name"], classes, shape, **params)
            models.append(load_weights(model, weights).eval())
        except (LREnsembleError, TypeError, ValueError) as exc:
            return None, f"member {member}'s model cannot be rebuilt ({exc})"
    x = torch.randn(n, *shape, generator=torch.Generator().manual_seed(0))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for model in models:
            predict_logits(model, x, 1024, torch.device("cpu"))
        best = min(best, time.perf_counter() - t0)
    return best, None
