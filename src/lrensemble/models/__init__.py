"""Model registry: MLP, 1-D CNN, LeNet S/M/L, ResNet-18 and WRN-d-k for 32×32 images, and a
bridge to timm."""

from lrensemble.models import resnet as _resnet  # noqa: F401  (registers resnet18, wrn)
from lrensemble.models import simple as _simple  # noqa: F401  (registers mlp, cnn1d, lenet_*)
from lrensemble.models.base import Classifier
from lrensemble.models.registry import (
    MODELS,
    count_parameters,
    create_model,
    list_models,
    model_for_inputs,
)

__all__ = [
    "MODELS",
    "Classifier",
    "count_parameters",
    "create_model",
    "list_models",
    "model_for_inputs",
]
