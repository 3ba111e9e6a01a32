"""LR tuning that keeps every model: grid, random and TPE search through Optuna, a pool member
per trial, the policy database, resumable and shareable across workers."""

from lrensemble.tuning.config import SearchConfig, StudyConfig, TuneConfig, load_tune_config
from lrensemble.tuning.database import policy_records, top_policies
from lrensemble.tuning.outcomes import trials_without_member
from lrensemble.tuning.runner import SweepResult, run_sweep
from lrensemble.tuning.space import grid_points, point_key

__all__ = [
    "SearchConfig",
    "StudyConfig",
    "SweepResult",
    "TuneConfig",
    "grid_points",
    "load_tune_config",
    "point_key",
    "policy_records",
    "run_sweep",
    "top_policies",
    "trials_without_member",
]
