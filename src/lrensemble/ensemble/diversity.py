"""Diversity of a team: six metrics, their focal versions, prediction diversity and parameter
cosine similarity. Every score is oriented so that higher = more diverse.

Oracle output o[m, n] = 1 if member m is right on sample n. With L team members and, per sample,
l_n right and f_n = L − l_n wrong:
- BD: mean over pairs of (N01 + N10) / N.                        (as is)
- QS: Yule's Q per pair, (N11 N00 − N01 N10)/(N11 N00 + N01 N10). (1 − mean Q)
- CK: Cohen's kappa per pair on predicted labels.                (1 − mean κ)
- KW: Σ_n l_n (L − l_n) / (N L²).                                (as is)
- GD: 1 − p(2)/p(1), p(1) = Σ f_n / (N L), p(2) = Σ f_n(f_n − 1) / (N L (L − 1)); 0 if p(1) = 0.
- FK: Fleiss' kappa on predicted labels, members as raters.      (1 − κ)
Conventions where a formula is 0/0: Q = 1 for identical oracle vectors and 0 otherwise; κ = 1
when expected agreement is 1; a score over no samples is 0.

Focal diversity (Wu et al., CVPR 2021): for focal member F in team T, the metric on T's outputs
restricted to the samples F gets wrong; FQ-metric(T) is the mean over F in T.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

import numpy as np

from lrensemble.arrays import check_probs
from lrensemble.ensemble.checks import check_team
from lrensemble.ensemble.teams import (
    TILE_BYTES,
    check_enumerable,
    members_of,
    team_matrix,
    team_rows,
    team_sizes,
)
from lrensemble.errors import ParameterError

METRICS = ("BD", "QS", "CK", "KW", "GD", "FK")
FAST_FOCAL = ("GD", "KW", "BD")


def _pairs(k: int) -> list[tuple[int, int]]:
    return list(combinations(range(k), 2))


def _bd(oracle: np.ndarray, preds: np.ndarray, c: int) -> float:
    return float(np.mean([np.mean(oracle[i] != oracle[j]) for i, j in _pairs(len(oracle))]))


def _yule_q(a: np.ndarray, b: np.ndarray, undefined: float | None = None) -> float:
    """Yule's Q of two oracle vectors. Over a zero denominator: `undefined` if given, else 1
    for identical vectors and 0 otherwise."""
    n11, n00 = int(np.sum(a & b)), int(np.sum(~a & ~b))
    n10, n01 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    den = n11 * n00 + n01 * n10
    if den:
        return (n11 * n00 - n01 * n10) / den
    if undefined is not None:
        return undefined
    return 1.0 if n01 == n10 == 0 else 0.0


def _qs(oracle: np.ndarray, preds: np.ndarray, c: int) -> float:
    return 1.0 - float(np.mean([_yule_q(oracle[i], oracle[j]) for i, j in _pairs(len(oracle))]))


def _kappa(observed: float, expected: float) -> float:
    return 1.0 if expected >= 1.0 else (observed - expected) / (1.0 - expected)


def _ck(oracle: np.ndarray, preds: np.ndarray, c: int) -> float:
    kappas = []
    for i, j in _pairs(len(preds)):
        observed = float(np.mean(preds[i] == preds[j]))
        pi = np.bincount(preds[i], minlength=c) / preds.shape[1]
        pj = np.bincount(preds[j], minlength=c) / preds.shape[1]
        kappas.append(_kappa(observed, float(pi @ pj)))
    return 1.0 - float(np.mean(kappas))


def _kw(oracle: np.ndarray, preds: np.ndarray, c: int) -> float:
    k, n = oracle.shape
    right = oracle.sum(axis=0)
    return float(np.sum(right * (k - right)) / (n * k * k))


def _gd(oracle: np.ndarray, preds: np.ndarray, c: int) -> float:
    k, n = oracle.shape
    wrong = k - oracle.sum(axis=0)
    fractions = np.bincount(wrong, minlength=k + 1) / n  # p_i: exactly i members fail
    i = np.arange(k + 1)
    p1 = float(np.sum(i / k * fractions))
    p2 = float(np.sum(i * (i - 1) / (k * (k - 1)) * fractions))
    return 0.0 if p1 == 0 else 1.0 - p2 / p1


def _fk(oracle: np.ndarray, preds: np.ndarray, c: int) -> float:
    k, n = preds.shape
    counts = np.zeros((n, c))
    for row in preds:
        counts[np.arange(n), row] += 1
    agreement = float(np.mean((np.sum(counts**2, axis=1) - k) / (k * (k - 1))))
    share = counts.sum(axis=0) / (n * k)
    return 1.0 - _kappa(agreement, float(np.sum(share**2)))


_FUNCS = {"BD": _bd, "QS": _qs, "CK": _ck, "KW": _kw, "GD": _gd, "FK": _fk}


def metric_name(name: str) -> str:
    key = str(name).upper().removeprefix("FQ-")
    if key not in _FUNCS:
        raise ParameterError(f"Unknown diversity metric {name!r}; use one of {', '.join(METRICS)}.")
    return key


def _score(metric: str, oracle: np.ndarray, preds: np.ndarray, c: int) -> float:
    if oracle.shape[1] == 0:
        return 0.0
    return _FUNCS[metric](oracle, preds, c)


def _team_arrays(
    probs: Any, labels: Any, team: Iterable[int] | int
) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, int]:
    p, y = check_probs(probs, labels)
    members = check_team(team, len(p))
    if len(members) < 2:
        raise ParameterError("Diversity needs a team of at least two members.")
    preds = p[list(members)].argmax(axis=2)
    return members, preds == y, preds, p.shape[2]


def diversity(probs: Any, labels: Any, team: Iterable[int] | int, metric: str = "GD") -> float:
    """Diversity of a team (indices or bitmask) over all samples; higher = more diverse."""
    name = metric_name(metric)
    _, oracle, preds, c = _team_arrays(probs, labels, team)
    return _score(name, oracle, preds, c)


def focal_diversity(
    probs: Any, labels: Any, team: Iterable[int] | int, metric: str = "GD"
) -> float:
    """FQ-metric of a team: mean over focal members F of the metric on the samples F gets
    wrong (the straightforward definition; `focal_diversity_all` computes every team at once).

    Example:
        >>> import numpy as np
        >>> p = np.array([[[.9, .1], [.2, .8]], [[.3, .7], [.6, .4]]])  # 2 members, 2 samples
        >>> focal_diversity(p, np.array([0, 0]), [0, 1])  # they never fail together
        1.0
    """
    name = metric_name(metric)
    _, oracle, preds, c = _team_arrays(probs, labels, team)
    return focal_score(name, oracle, preds, c)


def focal_score(metric: str, oracle: np.ndarray, preds: np.ndarray, c: int) -> float:
    """FQ-metric from a team's oracle outputs and predicted labels (L, N), already checked."""
    scores = [
        _score(metric, oracle[:, ~oracle[f]], preds[:, ~oracle[f]], c) for f in range(len(oracle))
    ]
    return float(np.mean(scores))


def cofailure_counts(wrong: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A[f, m] = #samples both f and m get wrong; B[f, m, k] = #samples f, m and k all get
    wrong: popcounts of ANDed bitmasks."""
    bits = np.packbits(wrong, axis=1)  # (M, N/8)
    a = np.bitwise_count(bits[:, None] & bits[None]).sum(axis=-1, dtype=np.int64)
    b = np.stack(
        [
            np.bitwise_count(bits[f][None, None] & bits[:, None] & bits[None]).sum(
                axis=-1, dtype=np.int64
            )
            for f in range(len(bits))
        ]
    )
    return a.astype(np.float64), b.astype(np.float64)


def closed_form_focal(metric: str, p_sum: Any, q_sum: Any, size: Any, negatives: Any) -> Any:
    """GD, KW or BD on a focal member's negatives from P = Σ f_n and Q = Σ f_n² (sums over
    those samples of how many team members fail), team size L and the number of negatives:
    GD = 1 − (Q − P)/((L − 1) P), KW = (L P − Q)/(n L²), BD = (L P − Q)/(C(L, 2) n); 0 where
    undefined (no failures, no negatives). Works elementwise on arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "GD":
            return np.where(p_sum > 0, 1 - (q_sum - p_sum) / ((size - 1) * p_sum), 0.0)
        spread = size * p_sum - q_sum
        if metric == "KW":
            return np.where(negatives > 0, spread / (negatives * size**2), 0.0)
        return np.where(negatives > 0, spread / (size * (size - 1) / 2 * negatives), 0.0)


def focal_diversity_all(
    probs: Any, labels: Any, metric: str = "GD", chunk: int = 1 << 15
) -> np.ndarray:
    """FQ-metric of every team: float array (2^M,) indexed by bitmask, NaN for teams of fewer
    than two members.

    GD, KW and BD come in closed form from co-failure counts: on focal negatives of F, with
    P = Σ_{m∈T} A[F, m] = Σ f_n and Q = Σ_{m,k∈T} B[F, m, k] = Σ f_n²,
    GD = 1 − (Q − P)/((L − 1) P), KW = (L P − Q)/(n_F L²), BD = (L P − Q)/(C(L, 2) n_F).
    The other metrics are computed team by team.
    """
    name = metric_name(metric)
    p, y = check_probs(probs, labels)
    m = len(p)
    check_enumerable(m)
    out = np.full(1 << m, np.nan)
    sizes = team_sizes(m)
    if name not in FAST_FOCAL:
        preds = p.argmax(axis=2)
        oracle = preds == y
        for t in np.nonzero(sizes >= 2)[0].tolist():
            team = list(members_of(t))
            out[t] = focal_score(name, oracle[team], preds[team], p.shape[2])
        return out
    wrong = p.argmax(axis=2) != y
    a, b = cofailure_counts(wrong)
    negatives = np.diag(a)
    for lo in range(0, 1 << m, chunk):
        x = team_matrix(m, lo, chunk)
        size = sizes[lo : lo + len(x)].astype(np.float64)
        p_sum = x @ a.T  # (teams, F)
        q_sum = np.stack([np.sum((x @ b[f]) * x, axis=1) for f in range(m)], axis=1)
        per = closed_form_focal(name, p_sum, q_sum, size[:, None], negatives)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = np.sum(np.where(x > 0, per, 0.0), axis=1) / size
        out[lo : lo + len(x)] = np.where(size >= 2, scores, np.nan)
    return out


def focal_diversity_of(
    probs: Any, labels: Any, teams: Any, metric: str = "GD", tile_bytes: int = TILE_BYTES
) -> np.ndarray:
    """FQ-metric of each team in `teams` ((T, S) member indices or (T,) bitmasks, all of one
    size S ≥ 2): (T,), equal to `focal_diversity_all` at those teams.

    GD, KW and BD come from the same co-failure counts and closed form, per focal member F of
    the team: P = Σ_{m∈T} A[F, m], Q = Σ_{m,k∈T} B[F, m, k] (exact integers in any order); the
    per-focal scores are laid out and averaged as `focal_diversity_all` does, so the floats
    are the same. Teams go in tiles of about `tile_bytes`. Other metrics: team by team."""
    name = metric_name(metric)
    p, y = check_probs(probs, labels)
    m = len(p)
    rows = team_rows(teams, m)
    count, size = rows.shape
    if size < 2:
        raise ParameterError("Focal diversity needs teams of at least two members.")
    out = np.empty(count)
    if name not in FAST_FOCAL:
        preds = p.argmax(axis=2)
        oracle = preds == y
        for i, team in enumerate(rows.tolist()):
            out[i] = focal_score(name, oracle[team], preds[team], p.shape[2])
        return out
    a, b = cofailure_counts(p.argmax(axis=2) != y)
    negatives = np.diag(a)
    step = max(1, tile_bytes // (8 * max(size**3, m)))  # the (teams, S, S, S) gather dominates
    for lo in range(0, count, step):
        t = rows[lo : lo + step]
        p_sum = a[t[:, :, None], t[:, None, :]].sum(axis=2)  # (teams, S): per focal member
        q_sum = b[t[:, :, None, None], t[:, None, :, None], t[:, None, None, :]].sum(axis=(2, 3))
        per = closed_form_focal(name, p_sum, q_sum, float(size), negatives[t])
        dense = np.zeros((len(t), m))  # as `focal_diversity_all` sums: zeros off the team
        dense[np.arange(len(t))[:, None], t] = per
        out[lo : lo + step] = np.sum(dense, axis=1) / float(size)
    return out


PARITY_SAMPLES = 100
PARITY_DRAWS = 3
PARITY_SEED = 2021


def _parity_raw(metric: str, oracle: np.ndarray, preds: np.ndarray, c: int) -> float:
    """EnsembleBench's raw score: 1 − our oriented score (lower = more diverse), with its
    convention that Yule's Q over a zero denominator is 0."""
    if metric == "QS":
        pairs = _pairs(len(oracle))
        return float(np.mean([_yule_q(oracle[i], oracle[j], undefined=0.0) for i, j in pairs]))
    return 1.0 - _FUNCS[metric](oracle, preds, c)


def _parity_focal_scores(
    name: str, p: np.ndarray, y: np.ndarray, masks: np.ndarray, samples: int, draws: int, seed: int
) -> np.ndarray:
    """Raw focal scores (focal member F, team) averaged over `draws` subsamples of F's
    negatives; NaN where F is not in the team or has no negatives. Shape (M, len(masks))."""
    m, _, c = p.shape
    preds = p.argmax(axis=2)
    oracle = preds == y
    wrong = ~oracle
    x = team_matrix(m)  # (T, M)
    size = x.sum(axis=1)
    out = np.full((m, len(masks)), np.nan)
    for f in range(m):
        negatives = np.nonzero(wrong[f])[0]
        has_f = x[:, f] > 0
        if len(negatives) == 0:
            continue
        rng = np.random.default_rng([seed, f])  # the same draws for every team of F
        picks = [rng.choice(negatives, samples, replace=True) for _ in range(draws)]
        total = np.zeros(len(masks))
        for idx in picks:
            if name in FAST_FOCAL:
                w = wrong[:, idx].astype(np.float64)  # (M, S) with repeats
                a = w @ w.T  # co-failures within the draw (all are F's negatives)
                p_sum = x @ a[f]
                q_sum = np.sum((x @ a) * x, axis=1)
                ours = closed_form_focal(name, p_sum, q_sum, size, float(samples))
                total += 1.0 - ours
            else:
                for t in np.nonzero(has_f & (size >= 2))[0]:
                    team = list(members_of(int(masks[t])))
                    total[t] += _parity_raw(name, oracle[team][:, idx], preds[team][:, idx], c)
        out[f] = np.where(has_f & (size >= 2), total / draws, np.nan)
    return out


def focal_diversity_parity(
    probs: Any,
    labels: Any,
    metric: str = "GD",
    samples: int = PARITY_SAMPLES,
    draws: int = PARITY_DRAWS,
    seed: int = PARITY_SEED,
) -> np.ndarray:
    """Focal diversity of every team the way EnsembleBench's scripts compute it, for
    comparison with published numbers: (2^M,) by bitmask, NaN below two members, and
    **lower = more diverse** (their orientation: 1 − our score).

    Per focal member F: three subsamples of 100 of F's negative samples, drawn with replacement
    (the same draws for every team, as their library seeds each call), averaged; min-max scaled
    over the teams of each size that contain F (left as is when all equal); a team's score is
    the average over its members of their scaled scores weighted by `argsort` of the members'
    validation accuracies, as in their scripts. Draws come from our seeded generator, so
    values match theirs in procedure, not bit for bit.
    """
    name = metric_name(metric)
    p, y = check_probs(probs, labels)
    m = len(p)
    check_enumerable(m)
    masks = np.arange(1 << m, dtype=np.int64)
    sizes = team_sizes(m)
    raw = _parity_focal_scores(name, p, y, masks, samples, draws, seed)  # (M, T)
    scaled = raw.copy()
    for f in range(m):
        for s in range(2, m + 1):
            cols = np.nonzero((sizes == s) & ~np.isnan(raw[f]))[0]
            if len(cols):
                v = raw[f, cols]
                if v.max() > v.min():
                    scaled[f, cols] = (v - v.min()) / (v.max() - v.min())
    member_acc = (p.argmax(axis=2) == y).mean(axis=1)
    out = np.full(1 << m, np.nan)
    for t in np.nonzero(sizes >= 2)[0].tolist():
        team = members_of(t)
        rank_weights = np.argsort(member_acc[list(team)])
        values, weights = [], []
        for k, f in enumerate(team):
            if not np.isnan(scaled[f, t]):
                values.append(scaled[f, t])
                weights.append(rank_weights[k])
        if values:
            out[t] = (
                float(np.average(values, weights=weights))
                if sum(weights) > 0
                else float(np.mean(values))
            )
    return out


def prediction_diversity(probs: Any, labels: Any, team: Iterable[int] | int | None = None) -> float:
    """Fort et al. (2020), as in the StarSSE thesis: 100 · mean over member pairs of the
    fraction of samples where their predicted labels differ, divided by the larger of the two
    error rates (a pair of two error-free members scores 0)."""
    p, y = check_probs(probs, labels)
    members = check_team(range(len(p)) if team is None else team, len(p))
    if len(members) < 2:
        raise ParameterError("Prediction diversity needs at least two members.")
    preds = p[list(members)].argmax(axis=2)
    errors = np.mean(preds != y, axis=1)
    scores = []
    for i, j in _pairs(len(members)):
        worst = max(errors[i], errors[j])
        scores.append(0.0 if worst == 0 else float(np.mean(preds[i] != preds[j])) / worst)
    return 100.0 * float(np.mean(scores))


BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def parameter_cosine_similarity(
    a: Mapping[str, Any], b: Mapping[str, Any], exclude: tuple[str, ...] = ("head.",)
) -> float:
    """Cosine similarity of two members' flattened parameters (state dicts of numpy arrays or
    CPU tensors), leaving out names starting with `exclude` (the output layer by default) and
    normalization statistics (the LREnsemble ablation, its Figure 7a)."""
    names = sorted(k for k in a if not k.startswith(exclude) and not k.endswith(BUFFER_SUFFIXES))
    if (
        sorted(k for k in b if not k.startswith(exclude) and not k.endswith(BUFFER_SUFFIXES))
        != names
    ):
        raise ParameterError("The two weight sets have different parameter names.")
    if not names:
        raise ParameterError("No parameters left to compare after exclusions.")
    dot = na = nb = 0.0
    for k in names:
        x = np.asarray(a[k], dtype=np.float64).ravel()
        z = np.asarray(b[k], dtype=np.float64).ravel()
        if x.shape != z.shape:
            raise ParameterError(f"Parameter {k} has shapes {x.shape} and {z.shape}.")
        dot += float(x @ z)
        na += float(x @ x)
        nb += float(z @ z)
    if na == 0 or nb == 0:
        raise ParameterError("Cosine similarity of an all-zero weight set is undefined.")
    return dot / np.sqrt(na * nb)
