"""The chosen ensemble as a model to ship: `export_ensemble` writes a pool's team (weights,
temperatures, input normalization) to a directory; `load_ensemble` turns that directory into
an `EnsembleModel` (an `nn.Module` returning calibrated probabilities) on any device."""

from lrensemble.export.inputs import as_batch, read_csv, read_inputs
from lrensemble.export.manifest import (
    ENSEMBLE_FORMAT,
    ENSEMBLE_JSON,
    WEIGHTS_FILE,
    read_manifest,
)
from lrensemble.export.model import EnsembleModel, load_ensemble
from lrensemble.export.output import check_output_file, save_probabilities
from lrensemble.export.team import choose_team, load_ensemble_config, read_team_file
from lrensemble.export.writer import export_ensemble

__all__ = [
    "ENSEMBLE_FORMAT",
    "ENSEMBLE_JSON",
    "WEIGHTS_FILE",
    "EnsembleModel",
    "as_batch",
    "check_output_file",
    "choose_team",
    "export_ensemble",
    "load_ensemble",
    "load_ensemble_config",
    "read_csv",
    "read_inputs",
    "read_manifest",
    "read_team_file",
    "save_probabilities",
]
