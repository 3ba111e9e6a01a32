"""Ensemble selection on validation predictions: random, brute force, greedy (fixed size, or
free with replacement), focal diversity and hierarchical pruning.

One contract for every method, as scikit-learn estimators have: `make_selector(method, size,
**options)` (or a selector class) checks every parameter when the selector is built;
`selector.fit(probs, labels)` returns the `Selection` (also kept as `selection_`, with
`members_`, `weights_`, `score_`); `selection.apply(probs)` gives the team's probabilities.
`select(method, probs, labels, size=None, **options)` does both steps in one call.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from lrensemble.arrays import check_probs
from lrensemble.ensemble.checks import check_size
from lrensemble.ensemble.consensus import VOTING, combine
from lrensemble.ensemble.diversity import (
    FAST_FOCAL,
    closed_form_focal,
    cofailure_counts,
    focal_diversity_all,
    focal_diversity_of,
    focal_diversity_parity,
    focal_score,
    metric_name,
)
from lrensemble.ensemble.metrics import NLL_CLIP
from lrensemble.ensemble.teams import (
    MAX_ENUMERATION_MEMBERS,
    MAX_ENUMERATION_WORK,
    check_enumerable,
    check_enumerable_work,
    combinations_array,
    mask_of,
    masks_of_rows,
    members_of,
    team_accuracies,
    team_accuracies_of,
    team_count,
    team_nlls,
    team_nlls_of,
    team_sizes,
)
from lrensemble.errors import ParameterError
from lrensemble.registry import check_parameters

OBJECTIVES = ("accuracy", "nll")
# The method and objective every command uses unless told otherwise (README, "How the ensemble
# is chosen", gives the measurements behind them).
DEFAULT_METHOD = "greedy"
DEFAULT_OBJECTIVE = "nll"


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ParameterError(
            f"Unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}."
        )
    return objective


def objective_key(objective: str, accuracy: float, nll: float) -> tuple[float, float]:
    """Sort key (smaller is better) of a team under `objective`; the other metric breaks ties."""
    return (-accuracy, nll) if objective == "accuracy" else (nll, -accuracy)


def _count(name: str, value: Any, low: int = 1) -> int:
    """An integer parameter of at least `low`, checked when a selector is built."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ParameterError(f"{name} must be an integer of at least {low}, got {value!r}.")
    return int(value)


def _team_size(size: Any, low: int = 1) -> int | None:
    """A team size (None: the method's own choice); whether the pool is large enough waits
    for `fit`."""
    return None if size is None else _count("team size", size, low)


def _fraction(name: str, value: Any, *, below_one: bool = False) -> float:
    """A number in [0, 1] (or [0, 1) with `below_one`)."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    inside = real and math.isfinite(value) and 0 <= value <= 1 and not (below_one and value == 1)
    if not inside:
        interval = "[0, 1)" if below_one else "[0, 1]"
        raise ParameterError(f"{name} must be a number in {interval}, got {value!r}.")
    return float(value)


def _flag(name: str, value: Any, *, optional: bool = False) -> bool | None:
    """True or false (or None, with `optional`: decided at fit)."""
    if optional and value is None:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name} must be true or false, got {value!r}.")
    return bool(value)


@dataclass(frozen=True)
class Selection:
    """A chosen team: member indices into the pool it was chosen from (`pool_size` members),
    their weights (summing to 1), the validation accuracy of the weighted soft vote, and how
    `apply` combines the team (`voting`: soft, or plurality); `details` holds method-specific
    extras (among them `val_nll`, the soft vote's validation NLL, and the `objective`)."""

    method: str
    members: tuple[int, ...]
    weights: tuple[float, ...]
    score: float
    details: dict[str, Any] = field(default_factory=dict)
    pool_size: int | None = None
    voting: str = "soft"

    def __post_init__(self) -> None:
        if self.voting not in VOTING:
            raise ParameterError(f"Unknown voting {self.voting!r}; use one of {', '.join(VOTING)}.")

    @property
    def size(self) -> int:
        return len(self.members)

    def apply(self, probs: Any) -> np.ndarray:
        """The team's probabilities (N, C) from predictions (M, N, C) of the pool it was chosen
        from (same members, same order): the weighted soft vote, or for plurality voting the
        one-hot of the weighted vote (`consensus.combine`)."""
        p, _ = check_probs(probs)
        if self.pool_size is not None and len(p) != self.pool_size:
            raise ParameterError(
                f"The selection was chosen from a pool of M = {self.pool_size}; got predictions "
                f"with M = {len(p)} (give the pool's members, in the order it was chosen from)."
            )
        return combine(p, self.members, self.weights, self.voting)


def soft_vote_scores(
    p: np.ndarray, y: np.ndarray, members: Sequence[int], weights: Sequence[float] | None = None
) -> tuple[float, float]:
    """(accuracy, NLL) of the (weighted) soft vote of `members` on checked arrays."""
    sub = p[list(members)]
    mean = sub.mean(axis=0) if weights is None else np.tensordot(np.asarray(weights), sub, 1)
    acc = float(np.mean(mean.argmax(axis=1) == y))
    nll = float(-np.mean(np.log(np.clip(mean[np.arange(len(y)), y], NLL_CLIP, None))))
    return acc, nll


def best_accuracy_team(
    p: np.ndarray, y: np.ndarray, masks: np.ndarray, accs: np.ndarray
) -> tuple[int, float]:
    """Among team bitmasks `masks` with accuracies `accs`, the best: highest accuracy, then
    lowest NLL of the soft vote, then smallest team, then lowest bitmask."""
    best = accs.max()
    tied = masks[accs == best]
    if len(tied) == 1:
        return int(tied[0]), float(best)
    keyed = [
        (soft_vote_scores(p, y, members_of(int(t)))[1], bin(int(t)).count("1"), int(t))
        for t in tied
    ]
    return min(keyed)[2], float(best)


def bitmask_rank(rows: np.ndarray) -> np.ndarray:
    """Rank of each team of one size, member rows (T, S) ascending, in bitmask order (the
    highest member decides first), for any pool size."""
    order = np.lexsort(rows.T)  # the last key, the highest member, is the primary one
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows))
    return rank


def most_diverse_team(masks: np.ndarray, diversity: np.ndarray, accs: np.ndarray) -> int:
    """Among team bitmasks `masks`, the highest diversity, then accuracy, then lowest bitmask."""
    order = np.lexsort((masks, -accs[masks], -diversity[masks]))
    return int(masks[order[0]])


class Selector(abc.ABC):
    """Base class: parameters checked in `__init__` (a bad one is a `ParameterError` before any
    prediction is read); `fit(probs, labels)` on validation predictions returns the
    `Selection`."""

    name: ClassVar[str] = ""

    def fit(self, probs: Any, labels: Any) -> Selection:
        """Choose a team from validation probabilities (M, N, C) and labels (N,); the selection
        is also kept as `selection_` (and `members_`, `weights_`, `score_`)."""
        p, y = check_probs(probs, labels)
        selection = self._select(p, y)
        self.selection_ = selection
        self.members_ = selection.members
        self.weights_ = selection.weights
        self.score_ = selection.score
        return selection

    @abc.abstractmethod
    def _select(self, p: np.ndarray, y: np.ndarray) -> Selection:
        """Choose a team from checked validation arrays."""

    def _result(
        self,
        p: np.ndarray,
        y: np.ndarray,
        members: Sequence[int],
        weights: Sequence[float] | None = None,
        **details: Any,
    ) -> Selection:
        members = tuple(int(m) for m in members)
        w = (1.0 / len(members),) * len(members) if weights is None else tuple(weights)
        acc, val_nll = soft_vote_scores(p, y, members, w)
        objective = getattr(self, "objective", "accuracy")
        details = {"objective": objective, "val_nll": val_nll, **details}
        weights = tuple(float(v) for v in w)
        return Selection(self.name, members, weights, acc, details, pool_size=len(p))


class RandomSelector(Selector):
    """`repeats` random teams of `size` (seeded); optionally only from members whose own
    validation accuracy is at least `min_accuracy`. The selection is the first team; details
    hold every team and the mean ± std of their validation accuracies."""

    name = "random"

    def __init__(
        self, size: int, repeats: int = 10, seed: int = 0, min_accuracy: float | None = None
    ) -> None:
        if size is None:
            raise ParameterError("Random selection needs a team size.")
        self.size, self.repeats = _team_size(size), _count("repeats", repeats)
        self.seed = _count("seed", seed, low=0)
        self.min_accuracy = (
            None if min_accuracy is None else _fraction("min_accuracy", min_accuracy)
        )

    def _select(self, p: np.ndarray, y: np.ndarray) -> Selection:
        pool = np.arange(len(p))
        if self.min_accuracy is not None:
            own = (p.argmax(axis=2) == y).mean(axis=1)
            pool = pool[own >= self.min_accuracy]
        size = check_size(self.size, len(pool) or 1)
        if len(pool) < (size or 0):
            raise ParameterError(
                f"Only {len(pool)} members reach min_accuracy {self.min_accuracy}, fewer than "
                f"the team size {size}."
            )
        rng = np.random.default_rng(self.seed)
        teams = [
            tuple(sorted(rng.choice(pool, size, replace=False).tolist()))
            for _ in range(self.repeats)
        ]
        scores = [soft_vote_scores(p, y, t)[0] for t in teams]
        return self._result(
            p,
            y,
            teams[0],
            teams=teams,
            scores=scores,
            mean=float(np.mean(scores)),
            std=float(np.std(scores)),
        )


class BruteForceSelector(Selector):
    """Every team (of `size`, or of any size) is evaluated exactly. With `objective =
    "accuracy"` the best validation accuracy wins, ties going to lower NLL, then the smaller
    team; with `"nll"` the lowest validation NLL wins, ties going to higher accuracy, then the
    smaller team (last ties: the lower bitmask). With a size only the C(M, size) teams of that
    size are scored, up to `max_work` team-samples; without one all 2^M − 1 teams, up to
    `max_members` members."""

    name = "brute_force"

    def __init__(
        self,
        size: int | None = None,
        max_members: int = MAX_ENUMERATION_MEMBERS,
        objective: str = "accuracy",
        max_work: int = MAX_ENUMERATION_WORK,
    ) -> None:
        self.size, self.max_members = _team_size(size), _count("max_members", max_members)
        self.objective = check_objective(objective)
        self.max_work = _count("max_work", max_work)

    def _select(self, p: np.ndarray, y: np.ndarray) -> Selection:
        m = len(p)
        if self.size is not None:
            return self._fixed(p, y, check_size(self.size, m))
        check_enumerable(m, self.max_members)
        size = None
        accs = team_accuracies(p, y, self.max_members)
        sizes = team_sizes(m)
        masks = np.nonzero(sizes == size if size else sizes > 0)[0]
        if self.objective == "accuracy":
            best, _ = best_accuracy_team(p, y, masks, accs[masks])
        else:
            nlls = team_nlls(p, y, masks)
            order = np.lexsort((masks, sizes[masks], -accs[masks], nlls))
            best = int(masks[order[0]])
        per_size = {}
        for s in range(1, m + 1):
            ms = np.nonzero(sizes == s)[0]
            t = ms[np.argmax(accs[ms])]
            per_size[s] = {"members": list(members_of(int(t))), "accuracy": float(accs[t])}
        return self._result(
            p,
            y,
            members_of(best),
            teams_evaluated=len(masks),
            best_per_size=per_size,
            search="exhaustive-all",
            teams_scored=len(masks),
        )

    def _fixed(self, p: np.ndarray, y: np.ndarray, size: int) -> Selection:
        """Only the teams of `size`, with the ranking and tie-breaks of the all-teams way."""
        m = len(p)
        check_enumerable_work(team_count(m, size), len(y), self.max_work)
        rows = combinations_array(m, size)
        accs = team_accuracies_of(p, y, rows)
        rank = bitmask_rank(rows)
        if self.objective == "accuracy":
            tied = np.nonzero(accs == accs.max())[0]
            best = int(tied[0])
            if len(tied) > 1:  # lower NLL of the soft vote, then the lower bitmask
                keyed = [(soft_vote_scores(p, y, rows[i])[1], int(rank[i])) for i in tied]
                best = int(tied[min(range(len(tied)), key=keyed.__getitem__)])
        else:
            nlls = self._nlls(p, y, rows, rank)
            best = int(np.lexsort((rank, -accs, nlls))[0])
        top = int(np.lexsort((rank, -accs))[0])
        per_size = {size: {"members": rows[top].tolist(), "accuracy": float(accs[top])}}
        return self._result(
            p,
            y,
            rows[best].tolist(),
            teams_evaluated=len(rows),
            best_per_size=per_size,
            search="exhaustive-fixed-size",
            teams_scored=len(rows),
        )

    @staticmethod
    def _nlls(p: np.ndarray, y: np.ndarray, rows: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """NLLs of teams of one size: below 64 members through `team_nlls` over the bitmasks in
        ascending order, the very floats of the all-teams way; else `team_nlls_of`."""
        if len(p) > 63:
            return team_nlls_of(p, y, rows)
        order = np.argsort(rank)
        nlls = np.empty(len(rows))
        nlls[order] = team_nlls(p, y, masks_of_rows(rows[order]))
        return nlls


class GreedySelector(Selector):
    """Caruana et al. (2004). With a `size`: start from the best single member and add, without
    replacement, the member that maximizes the soft vote's validation accuracy (ties: lower NLL,
    then lower index) until the team has `size` members. Without a size: `rounds` additions with
    replacement (ties: lower NLL, then a member already chosen, then lower index); the
    best-scoring prefix (highest accuracy, then lowest NLL, then shortest) is kept and weights
    are pick counts over its length. `objective = "nll"` ranks by validation NLL first and
    accuracy second, everywhere. NLL breaking accuracy ties matters on small or saturated
    validation sets: without it, a member at 100% stops the team at one member."""

    name = "greedy"

    def __init__(
        self, size: int | None = None, rounds: int = 25, objective: str = "accuracy"
    ) -> None:
        self.size, self.rounds = _team_size(size), _count("rounds", rounds)
        self.objective = check_objective(objective)

    def _select(self, p: np.ndarray, y: np.ndarray) -> Selection:
        size = check_size(self.size, len(p))
        if size is not None:
            return self._fixed(p, y, size)
        return self._free(p, y)

    @staticmethod
    def _candidate_scores(
        p: np.ndarray, y: np.ndarray, total: np.ndarray, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy and NLL of adding each member to a team whose probabilities sum to
        `total` over `count` picks."""
        accs, nlls = np.empty(len(p)), np.empty(len(p))
        rows = np.arange(len(y))
        for m in range(len(p)):
            mean = (total + p[m]) / (count + 1)
            accs[m] = np.mean(mean.argmax(axis=1) == y)
            nlls[m] = -np.mean(np.log(np.clip(mean[rows, y], NLL_CLIP, None)))
        return accs, nlls

    def _fixed(self, p: np.ndarray, y: np.ndarray, size: int) -> Selection:
        team: list[int] = []
        total = np.zeros(p.shape[1:])
        path = []
        for _ in range(size):
            accs, nlls = self._candidate_scores(p, y, total, len(team))
            order = sorted(
                (m for m in range(len(p)) if m not in team),
                key=lambda m: (*objective_key(self.objective, accs[m], nlls[m]), m),
            )
            team.append(order[0])
            total += p[order[0]]
            path.append(float(accs[order[0]]))
        return self._result(p, y, sorted(team), order=team, accuracy_path=path)

    def _free(self, p: np.ndarray, y: np.ndarray) -> Selection:
        picks: list[int] = []
        total = np.zeros(p.shape[1:])
        path, nll_path = [], []
        for _ in range(self.rounds):
            accs, nlls = self._candidate_scores(p, y, total, len(picks))
            chosen = set(picks)
            best = min(
                range(len(p)),
                key=lambda m: (
                    *objective_key(self.objective, accs[m], nlls[m]),
                    m not in chosen,
                    m,
                ),
            )
            picks.append(best)
            total += p[best]
            path.append(float(accs[best]))
            nll_path.append(float(nlls[best]))
        # the best-scoring prefix, ties to the shorter one
        keys = [
            (*objective_key(self.objective, a, n), i)
            for i, (a, n) in enumerate(zip(path, nll_path, strict=True))
        ]
        keep = min(keys)[2] + 1
        counts = np.bincount(picks[:keep], minlength=len(p))
        members = np.nonzero(counts)[0]
        weights = counts[members] / keep
        return self._result(
            p, y, members, weights, picks=picks, accuracy_path=path, nll_path=nll_path, prefix=keep
        )


class FocalSelector(Selector):
    """The team of `size` with the highest focal diversity (FQ-GD by default), ties going to
    higher validation accuracy. Without a size, the most diverse team of each size 2 … M is
    found and the best of them under `objective` (validation accuracy, or NLL) is chosen.
    With a size only the C(M, size) teams of that size are scored. Pools too large to
    enumerate (more than `MAX_ENUMERATION_WORK` team-samples with a size, more than
    `MAX_ENUMERATION_MEMBERS` members without), or `hierarchical=True`, take candidates from
    hierarchical pruning. `parity=True` scores teams
    as EnsembleBench's scripts do (`focal_diversity_parity`, lower = more diverse)."""

    name = "focal"

    def __init__(
        self,
        size: int | None = None,
        metric: str = "GD",
        hierarchical: bool | None = None,
        prune_fraction: float = 0.1,
        parity: bool = False,
        objective: str = "accuracy",
    ) -> None:
        self.size, self.metric = _team_size(size, low=2), metric_name(metric)
        self.hierarchical = _flag("hierarchical", hierarchical, optional=True)
        self.prune_fraction = _fraction("prune_fraction", prune_fraction, below_one=True)
        self.parity = _flag("parity", parity)
        if self.parity and self.hierarchical:
            raise ParameterError("EnsembleBench parity scores every team: no hierarchical pruning.")
        self.objective = check_objective(objective)

    def _select(self, p: np.ndarray, y: np.ndarray) -> Selection:
        m = len(p)
        size = check_size(self.size, m, low=2)
        fixed = size is not None and not self.parity
        use_pruning = self.hierarchical
        if use_pruning is None and fixed:
            use_pruning = team_count(m, size) * len(y) > MAX_ENUMERATION_WORK
        elif use_pruning is None:
            use_pruning = m > MAX_ENUMERATION_MEMBERS
        if use_pruning:
            pruner = HierarchicalSelector(
                size, self.metric, self.prune_fraction, objective=self.objective
            )
            res = pruner._select(p, y)
            details = {**res.details, "candidates": "hierarchical pruning"}
            return replace(res, method=self.name, details=details)
        if fixed:
            return self._fixed(p, y, size)
        if self.parity:
            fq = -focal_diversity_parity(p, y, self.metric)  # their lower-is-diverse, flipped
        else:
            fq = focal_diversity_all(p, y, self.metric)
        accs = team_accuracies(p, y)
        sizes = team_sizes(m)
        best_per_size = {}
        for s in [size] if size else range(2, m + 1):
            masks = np.nonzero(sizes == s)[0]
            t = most_diverse_team(masks, fq, accs)
            best_per_size[s] = (t, float(fq[t]), float(accs[t]))
        if size:
            chosen = best_per_size[size][0]
        else:
            chosen = _best_of_sizes(p, y, best_per_size, self.objective)
        return self._result(
            p,
            y,
            members_of(chosen),
            metric=f"FQ-{self.metric}",
            diversity=float(fq[chosen]),
            most_diverse_per_size={
                s: {"members": list(members_of(t)), "diversity": d, "accuracy": a}
                for s, (t, d, a) in best_per_size.items()
            },
            search="exhaustive-all",
            teams_scored=int(np.count_nonzero(sizes >= 2)),
        )

    def _fixed(self, p: np.ndarray, y: np.ndarray, size: int) -> Selection:
        """Only the teams of `size`: the most diverse, ties to higher accuracy (computed for
        the tied teams only), then the lower bitmask, as `most_diverse_team`."""
        check_enumerable_work(team_count(len(p), size), len(y))
        rows = combinations_array(len(p), size)
        fq = focal_diversity_of(p, y, rows, self.metric)
        tied = np.nonzero(fq == fq.max())[0]
        accs = team_accuracies_of(p, y, rows[tied])
        rank = bitmask_rank(rows)[tied]
        pick = int(np.lexsort((rank, -accs))[0])
        chosen, diversity, accuracy = rows[tied[pick]].tolist(), float(fq[tied[pick]]), accs[pick]
        return self._result(
            p,
            y,
            chosen,
            metric=f"FQ-{self.metric}",
            diversity=diversity,
            most_diverse_per_size={
                size: {"members": chosen, "diversity": diversity, "accuracy": float(accuracy)}
            },
            search="exhaustive-fixed-size",
            teams_scored=len(rows),
        )


class HierarchicalSelector(Selector):
    """Hierarchical pruning (Wu et al., ICDM 2021): for sizes 2, 3, …, candidates are the teams
    that extend a surviving smaller team by one member and contain no pruned team; the least
    diverse `prune_fraction` of each size is pruned and never extended. The selection is the
    most diverse survivor of `size` (ties: higher accuracy); without a size, the most accurate
    of the most diverse survivors of every size."""

    name = "hierarchical"

    def __init__(
        self,
        size: int | None = None,
        metric: str = "GD",
        prune_fraction: float = 0.1,
        max_candidates: int = 2_000_000,
        objective: str = "accuracy",
    ) -> None:
        self.size, self.metric = _team_size(size, low=2), metric_name(metric)
        self.prune_fraction = _fraction("prune_fraction", prune_fraction, below_one=True)
        self.max_candidates = _count("max_candidates", max_candidates)
        self.objective = check_objective(objective)

    def _scores(
        self,
        p: np.ndarray,
        y: np.ndarray,
        teams: np.ndarray,
        counts: tuple[np.ndarray, np.ndarray] | None,
    ) -> np.ndarray:
        """Focal diversity of many teams of one size, (K, S) member indices."""
        if counts is None:
            preds = p.argmax(axis=2)
            oracle = preds == y
            return np.array(
                [focal_score(self.metric, oracle[t], preds[t], p.shape[2]) for t in teams]
            )
        a, b = counts
        s = teams.shape[1]
        p_sum = a[teams[:, :, None], teams[:, None, :]].sum(axis=2)  # (K, S): per focal
        q_sum = b[teams[:, :, None, None], teams[:, None, :, None], teams[:, None, None, :]].sum(
            axis=(2, 3)
        )
        per = closed_form_focal(self.metric, p_sum, q_sum, s, np.diag(a)[teams])
        return per.mean(axis=1)

    def _select(self, p: np.ndarray, y: np.ndarray) -> Selection:
        m = len(p)
        size = check_size(self.size, m, low=2)
        target = size or m
        counts = cofailure_counts(p.argmax(axis=2) != y) if self.metric in FAST_FOCAL else None
        pruned: set[int] = set()
        survivors = [mask_of([i]) for i in range(m)]
        best: dict[int, tuple[int, float, float]] = {}
        evaluated = 0
        for s in range(2, target + 1):
            candidates = sorted(
                {t | (1 << j) for t in survivors for j in range(m) if not t >> j & 1}
            )
            alive = set(survivors)
            candidates = [t for t in candidates if _all_subteams_survived(t, alive)]
            if not candidates:
                break
            if len(candidates) > self.max_candidates:
                raise ParameterError(
                    f"Hierarchical pruning would score {len(candidates):,} teams of size {s}; "
                    "raise prune_fraction or choose a smaller team size."
                )
            teams = np.array([members_of(t) for t in candidates])
            scores = self._scores(p, y, teams, counts)
            evaluated += len(candidates)
            n_prune = int(len(candidates) * self.prune_fraction)
            order = np.argsort(scores, kind="stable")
            pruned.update(candidates[i] for i in order[:n_prune].tolist())
            keep = order[n_prune:]
            survivors = [candidates[i] for i in keep.tolist()]
            top = max(keep.tolist(), key=lambda i: (scores[i], -i))
            top_ties = [i for i in keep.tolist() if scores[i] == scores[top]]
            accs = {i: soft_vote_scores(p, y, members_of(candidates[i]))[0] for i in top_ties}
            i = max(top_ties, key=lambda j: (accs[j], -candidates[j]))
            best[s] = (candidates[i], float(scores[i]), accs[i])
        if not best:
            raise ParameterError("Hierarchical pruning left no team to choose.")
        if size and size in best:
            chosen = best[size][0]
        elif size:
            raise ParameterError(f"Every team of size {size} was pruned.")
        else:
            chosen = _best_of_sizes(p, y, best, self.objective)
        return self._result(
            p,
            y,
            members_of(chosen),
            metric=f"FQ-{self.metric}",
            search="hierarchical",
            teams_scored=evaluated,
            teams_pruned=len(pruned),
            most_diverse_per_size={
                s: {"members": list(members_of(t)), "diversity": d, "accuracy": a}
                for s, (t, d, a) in best.items()
            },
        )


def _best_of_sizes(
    p: np.ndarray, y: np.ndarray, per_size: dict[int, tuple[int, float, float]], objective: str
) -> int:
    """Among the most diverse team of each size, (bitmask, diversity, accuracy), the best under
    `objective`; ties to higher diversity, then the lower bitmask."""
    if objective == "accuracy":
        return max(per_size.values(), key=lambda v: (v[2], v[1], -v[0]))[0]
    nlls = {t: soft_vote_scores(p, y, members_of(t))[1] for t, _, _ in per_size.values()}
    return min(per_size.values(), key=lambda v: (nlls[v[0]], -v[2], -v[1], v[0]))[0]


def _all_subteams_survived(team: int, survivors: set[int]) -> bool:
    """Whether every subteam one member smaller survived: by induction, exactly "contains no
    pruned team" (a smaller team holding a pruned team was never a candidate)."""
    return all(team & ~(1 << j) in survivors for j in members_of(team))


SELECTORS: dict[str, type[Selector]] = {
    cls.name: cls
    for cls in (
        RandomSelector,
        BruteForceSelector,
        GreedySelector,
        FocalSelector,
        HierarchicalSelector,
    )
}


def list_selectors() -> list[str]:
    return sorted(SELECTORS)


def make_selector(method: str, size: int | None = None, **options: Any) -> Selector:
    """A selector of `method` with every parameter checked now: an unknown method, an unknown
    option or a bad value is one `ParameterError` sentence before any prediction is read.
    Checks that need the pool (a size above its member count) wait for `fit`.

    Example:
        >>> type(make_selector("greedy", size=3, objective="nll")).__name__
        'GreedySelector'
        >>> make_selector("greedy", rounds=0)
        Traceback (most recent call last):
        ...
        lrensemble.errors.ParameterError: rounds must be an integer of at least 1, got 0.
    """
    cls = SELECTORS.get(method) if isinstance(method, str) else None
    if cls is None:
        raise ParameterError(
            f"Unknown selection method {method!r}; use one of {', '.join(list_selectors())}."
        )
    check_parameters(cls, options, f"selection method {method!r}")
    return cls(size=size, **options)


def select(
    method: str, probs: Any, labels: Any, size: int | None = None, **options: Any
) -> Selection:
    """Choose a team from validation predictions (M, N, C) and labels (N,):
    `make_selector(method, size, **options).fit(probs, labels)`.

    Example:
        >>> import numpy as np
        >>> from lrensemble.ensemble import select
        >>> rng = np.random.default_rng(0)
        >>> p = rng.dirichlet(np.ones(3), size=(5, 40))   # 5 members, 40 samples, 3 classes
        >>> y = rng.integers(0, 3, 40)
        >>> r = select("brute_force", p, y, size=3)
        >>> len(r.members), round(sum(r.weights), 6), r.apply(p).shape
        (3, 1.0, (40, 3))
    """
    return make_selector(method, size, **options).fit(probs, labels)


__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_OBJECTIVE",
    "OBJECTIVES",
    "SELECTORS",
    "Selection",
    "Selector",
    "list_selectors",
    "make_selector",
    "select",
]
