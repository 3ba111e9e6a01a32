"""The on-disk model pool: members, how they were made, and their cached predictions.

Readable with numpy alone (no torch import), versioned, written atomically:

    pool.json                   format, dataset, classes, split sizes, label checksums
    labels/<split>.npy          int64 labels (N,)
    members/<id>/member.json    how the member was made, its status and metrics
    members/<id>/<split>.npy    float32 probabilities (N, C)
    members/<id>/model.safetensors   weights, when the member has them
    members/<id>/corrupt/<name>-<severity>-seed<seed>.npy   probabilities on corrupted test sets
"""

from lrensemble.pool.merge import MergeResult, merge_pools
from lrensemble.pool.store import (
    POOL_FORMAT,
    UNKNOWN_METHOD,
    WEIGHTS_FILE,
    Pool,
    import_predictions,
)

__all__ = [
    "POOL_FORMAT",
    "UNKNOWN_METHOD",
    "WEIGHTS_FILE",
    "MergeResult",
    "Pool",
    "import_predictions",
    "merge_pools",
]
