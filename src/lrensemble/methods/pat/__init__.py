"""Prune and Tune ensembles (seed 003): children pruned from one trained parent and tuned
briefly, with the paper's Table 1 baselines."""

from lrensemble.methods.pat.config import PatConfig, PatSpec, load_pat_config
from lrensemble.methods.pat.masks import child_masks, mask_stats, prunable_layers
from lrensemble.methods.pat.run import PatResult, run_pat, tuning_policy

__all__ = [
    "PatConfig",
    "PatResult",
    "PatSpec",
    "child_masks",
    "load_pat_config",
    "mask_stats",
    "prunable_layers",
    "run_pat",
    "tuning_policy",
]
