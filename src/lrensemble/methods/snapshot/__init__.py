"""Snapshot ensembles from one pre-trained checkpoint: SSE, StarSSE and their variants, Local and
Global deep ensembles (seed 002, the StarSSE thesis)."""

from lrensemble.methods.snapshot.config import SnapshotConfig, SnapshotSpec, load_snapshot_config
from lrensemble.methods.snapshot.hooks import (
    FeatureDistance,
    FreezeBlocks,
    PredictionDiversity,
    WeightOrthogonality,
    model_blocks,
)
from lrensemble.methods.snapshot.run import SnapshotResult, plan, run_snapshot

__all__ = [
    "FeatureDistance",
    "FreezeBlocks",
    "PredictionDiversity",
    "SnapshotConfig",
    "SnapshotResult",
    "SnapshotSpec",
    "WeightOrthogonality",
    "load_snapshot_config",
    "model_blocks",
    "plan",
    "run_snapshot",
]
