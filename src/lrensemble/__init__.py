"""lrensemble: deep ensembles from the training runs of learning-rate and hyperparameter
exploration."""

from lrensemble.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    LREnsembleError,
    ParameterError,
    UnknownNameError,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "LREnsembleError",
    "ParameterError",
    "UnknownNameError",
    "__version__",
]
