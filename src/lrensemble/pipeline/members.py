"""A pool member's model, rebuilt from its record (model spec, classes, input shape) and its
weights file: what the pipeline needs to run members again (inference time, predictions on
corrupted test sets)."""

from __future__ import annotations

from typing import Any

from lrensemble.errors import DataError, LREnsembleError
from lrensemble.pool import WEIGHTS_FILE, Pool


class RebuildError(DataError):
    """A member's model cannot be rebuilt; `reason` is the clause that says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason[:1].upper()}{reason[1:]}.")
        self.reason = reason


def model_inputs(record: dict[str, Any]) -> tuple[int, list[int]] | None:
    """(classes, input shape) recorded in a member's `dataset`, or None when either is missing
    or malformed."""
    data = record.get("dataset")
    data = data if isinstance(data, dict) else {}
    classes, shape = data.get("num_classes"), data.get("input_shape")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        return None
    if not (isinstance(shape, list) and shape and all(type(s) is int and s > 0 for s in shape)):
        return None
    return classes, shape


def has_model(pool: Pool, member_id: str) -> bool:
    """Whether the member records a model spec and has a weights file, readable or not
    (members of imported predictions have neither)."""
    spec = pool.member(member_id).get("model")
    return (
        isinstance(spec, dict)
        and isinstance(spec.get("name"), str)
        and pool.member_file(member_id, WEIGHTS_FILE).exists()
    )


def rebuild_model(pool: Pool, member_id: str, device: Any = "cpu") -> Any:
    """The member's model with its weights, in eval mode on `device`; None when it has no
    model spec or weights (imported predictions); a `RebuildError` when its record or weights
    do not make a model."""
    if not has_model(pool, member_id):
        return None
    from lrensemble.models import create_model
    from lrensemble.train.checkpoint import load_weights

    record = pool.member(member_id)
    inputs = model_inputs(record)
    if inputs is None:
        raise RebuildError(
            f"member {member_id}'s record has no valid dataset.num_classes and "
            "dataset.input_shape to rebuild its model"
        )
    classes, shape = inputs
    spec = record["model"]
    params = {k: v for k, v in spec.items() if k != "name"}
    try:
        model = create_model(spec["name"], classes, shape, **params)
        load_weights(model, pool.member_file(member_id, WEIGHTS_FILE))
    except (LREnsembleError, TypeError, ValueError) as exc:
        raise RebuildError(f"member {member_id}'s model cannot be rebuilt ({exc})") from None
    return model.to(device).eval()


__all__ = ["RebuildError", "has_model", "model_inputs", "rebuild_model"]
