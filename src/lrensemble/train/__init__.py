"""Training one member: optimizers (SGD, AdamW, SAM/ASAM), the trainer, safetensors
checkpoints and hooks for extra losses, weight masks and weight averaging."""

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
    "save_state",
    "save_weights",
    "train_member",
]
