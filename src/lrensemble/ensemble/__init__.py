"""Ensembles from cached predictions, with numpy alone: consensus (soft and plurality voting),
metrics (accuracy, NLL, ECE, Brier), diversity (BD, QS, CK, KW, GD, FK and their focal
versions), team enumeration and selection (random, brute force, greedy, focal, hierarchical;
built and checked by `make_selector`, `fit` returns a `Selection`, `Selection.apply` votes the
team), temperature scaling, and the choice of the ensemble to ship (`choose_ensemble`).

Arrays: `probs` (M members, N samples, C classes), `labels` (N,); teams are tuples of member
indices or bitmasks (bit m set = member m in the team).
"""

from lrensemble.arrays import ShapeError, check_probs, softmax
from lrensemble.ensemble.calibration import apply_temperature, fit_temperature
from lrensemble.ensemble.choice import (
    ChosenEnsemble,
    EnsembleConfig,
    choose_ensemble,
    ensemble_selector,
    validation_warnings,
)
from lrensemble.ensemble.comparison import compare_by_size, team_distribution
from lrensemble.ensemble.consensus import VOTING, combine, plurality_vote, soft_vote
from lrensemble.ensemble.diversity import (
    METRICS,
    diversity,
    focal_diversity,
    focal_diversity_all,
    focal_diversity_parity,
    parameter_cosine_similarity,
    prediction_diversity,
)
from lrensemble.ensemble.metrics import (
    accuracy,
    brier,
    ece,
    member_metrics,
    nll,
    prediction_metrics,
    team_metrics,
)
from lrensemble.ensemble.selection import (
    DEFAULT_METHOD,
    DEFAULT_OBJECTIVE,
    OBJECTIVES,
    SELECTORS,
    BruteForceSelector,
    FocalSelector,
    GreedySelector,
    HierarchicalSelector,
    RandomSelector,
    Selection,
    Selector,
    list_selectors,
    make_selector,
    select,
)
from lrensemble.ensemble.teams import (
    mask_of,
    members_of,
    team_accuracies,
    team_accuracy,
    team_nlls,
    team_sizes,
)

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_OBJECTIVE",
    "METRICS",
    "OBJECTIVES",
    "SELECTORS",
    "VOTING",
    "BruteForceSelector",
    "ChosenEnsemble",
    "EnsembleConfig",
    "FocalSelector",
    "GreedySelector",
    "HierarchicalSelector",
    "RandomSelector",
    "Selection",
    "Selector",
    "ShapeError",
    "accuracy",
    "apply_temperature",
    "brier",
    "check_probs",
    "choose_ensemble",
    "combine",
    "compare_by_size",
    "diversity",
    "ece",
    "ensemble_selector",
    "fit_temperature",
    "focal_diversity",
    "focal_diversity_all",
    "focal_diversity_parity",
    "list_selectors",
    "make_selector",
    "mask_of",
    "member_metrics",
    "members_of",
    "nll",
    "parameter_cosine_similarity",
    "plurality_vote",
    "prediction_diversity",
    "prediction_metrics",
    "select",
    "soft_vote",
    "softmax",
    "team_accuracies",
    "team_accuracy",
    "team_distribution",
    "team_metrics",
    "team_nlls",
    "team_sizes",
    "validation_warnings",
]
