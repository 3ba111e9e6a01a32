"""Training members: optimizers (SGD, AdamW, SAM/ASAM), the single-member trainer, the batched
trainer (many members of one architecture at once), safetensors checkpoints and hooks for extra
losses, weight masks and weight averaging."""

from lrensemble.train.batched import predict_proba_many, train_members
from lrensemble.train.checkpoint import load_state, load_weights, save_state, save_weights
from lrensemble.train.evaluate import (
    classification_metrics,
    evaluate,
    predict_logits,
    predict_proba,
)
from lrensemble.train.hooks import ExtraLoss, TrainContext, TrainHook, WeightAveraging, WeightMask
from lrensemble.train.optim import OPTIMIZERS, SAM, create_optimizer
from lrensemble.train.trainer import (
    TrainConfig,
    TrainResult,
    build_model,
    library_versions,
    train_member,
)

__all__ = [
    "OPTIMIZERS",
    "SAM",
    "ExtraLoss",
    "TrainConfig",
    "TrainContext",
    "TrainHook",
    "TrainResult",
    "WeightAveraging",
    "WeightMask",
    "build_model",
    "classification_metrics",
    "create_optimizer",
    "evaluate",
    "library_versions",
    "load_state",
    "load_weights",
    "predict_logits",
    "predict_proba",
    "predict_proba_many",
    "save_state",
    "save_weights",
    "train_member",
    "train_members",
]
