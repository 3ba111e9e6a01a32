"""Choosing the ensemble to ship: candidates, a team, its weights and temperatures.

`choose_ensemble` is the one place where `lrens run`, `report`, `select` and `export` decide
which members form the chosen ensemble, so they all agree:
1. candidates: members whose validation accuracy reaches the floor (by default 90% of the best
   member's; a member far below the best costs little in a soft vote yet looks diverse to
   focal metrics, because it fails where others succeed);
2. optionally, a temperature per candidate fitted on validation (`calibrate_members`), before
   averaging;
3. a team, by `method` under `objective` (validation NLL, the default, with accuracy breaking
   ties; or accuracy with NLL breaking ties);
4. a temperature for the team's soft vote, fitted on validation (`calibrate`).
It also says when validation cannot tell teams apart (small or saturated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from lrensemble.arrays import check_probs
from lrensemble.config import StrictModel
from lrensemble.ensemble.calibration import (
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    apply_temperature,
    fit_temperature,
)
from lrensemble.ensemble.selection import (
    DEFAULT_METHOD,
    DEFAULT_OBJECTIVE,
    Selection,
    Selector,
    make_selector,
)
from lrensemble.ensemble.teams import MAX_ENUMERATION_MEMBERS
from lrensemble.errors import ParameterError

DEFAULT_RELATIVE_FLOOR = 0.9
# Fields of selection details whose values are member indices (of the candidates).
INDEX_FIELDS = ("members", "order", "picks", "teams")
MIN_VALIDATION_ERRORS = 10  # fewer errors of the best member: teams differ by a handful of samples
MIN_VALIDATION_SAMPLES = 100  # fewer: every accuracy and temperature rests on a few samples
SATURATED_TIES = 3  # this many members tied at the top validation accuracy
EXTREME_TEMPERATURE = 10.0  # a fitted T beyond [1/10, 10] is worth a word


class EnsembleConfig(StrictModel):
    """The `[ensemble]` table: how the chosen ensemble is picked and calibrated.

    `method` and `size` (None: the method's own choice), `objective` (what the choice
    optimizes on validation: NLL with accuracy breaking ties, or accuracy with NLL breaking
    ties), the focal `metric` and `parity` (score teams as EnsembleBench's scripts do), the
    candidate floor (`min_accuracy`, absolute; `min_relative_accuracy`, a fraction of the best
    member's validation accuracy; the higher of the two applies), temperature scaling of the
    ensemble (`calibrate`) and of each member before averaging (`calibrate_members`), and for
    the report: random teams per size, their seed (also the seed of `method =
    "random"`, a baseline that needs a `size`), and at most how many of the best members are
    candidates (every team of the candidates is enumerated).
    """

    method: Literal["brute_force", "greedy", "focal", "hierarchical", "random"] = DEFAULT_METHOD
    size: int | None = Field(None, ge=1, le=MAX_ENUMERATION_MEMBERS)
    objective: Literal["accuracy", "nll"] = DEFAULT_OBJECTIVE
    metric: Literal["GD", "KW", "BD", "QS", "CK", "FK"] = "GD"
    parity: bool = False
    min_accuracy: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)
    min_relative_accuracy: float = Field(
        DEFAULT_RELATIVE_FLOOR, ge=0.0, le=1.0, allow_inf_nan=False
    )
    calibrate: bool = True
    calibrate_members: bool = False
    repeats: int = Field(10, ge=1)
    seed: int = Field(0, ge=0, lt=2**63)
    max_candidates: int = Field(20, ge=3, le=MAX_ENUMERATION_MEMBERS)

    @model_validator(mode="after")
    def _consistent(self) -> EnsembleConfig:
        if self.parity and self.method != "focal":
            raise ValueError("parity (--parity) applies to method focal only")
        if self.method == "random" and self.size is None:
            raise ValueError("random selection needs a team size (size, --size)")
        return self


@dataclass
class ChosenEnsemble:
    """The chosen team, ready to predict: member ids (in team order), weights of the soft
    vote, the ensemble's temperature, each member's temperature (1.0 unless
    `calibrate_members`), and how it was chosen."""

    method: str
    objective: str
    members: list[str]
    weights: list[float]
    temperature: float = 1.0
    member_temperatures: list[float] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    floor: float = 0.0
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.members)

    def selection(self) -> Selection:
        """The team as a `Selection` of its own members (indices 0 … S − 1, in `members`
        order), which `combine` applies; its `score` is NaN (not measured here)."""
        members = tuple(range(self.size))
        details = {"objective": self.objective}
        weights = tuple(self.weights)
        return Selection(self.method, members, weights, math.nan, details, pool_size=self.size)

    def combine(self, probs: Any, calibrated: bool = True) -> np.ndarray:
        """The ensemble's probabilities (N, C) from its members' (S, N, C), in `members` order:
        each member's temperature, the weighted mean (`Selection.apply`), the ensemble's
        temperature. With `calibrated=False`, the plain weighted mean (the raw ensemble)."""
        p, _ = check_probs(probs)
        if len(p) != len(self.members):
            raise ParameterError(
                f"The ensemble has {plural(len(self.members), 'member')}; got predictions of "
                f"{len(p)}."
            )
        if not calibrated:
            return self.selection().apply(p)
        temps = self.member_temperatures or [1.0] * len(p)
        p = np.stack([apply_temperature(pm, t) for pm, t in zip(p, temps, strict=True)])
        return apply_temperature(self.selection().apply(p), self.temperature)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def details_in_ids(details: Any, ids: Sequence[str], key: str = "") -> Any:
    """Selection details with every member index (under a key of `INDEX_FIELDS`, at any
    depth) replaced by that member's id, so no output mixes indices with ids."""
    if isinstance(details, dict):
        return {k: details_in_ids(v, ids, str(k)) for k, v in details.items()}
    if key in INDEX_FIELDS and isinstance(details, (list, tuple)):
        return [
            ids[int(v)] if isinstance(v, (int, np.integer)) else details_in_ids(v, ids, key)
            for v in details
        ]
    return details


def plural(n: int, noun: str) -> str:
    """`1 member`, `3 members`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def validation_warnings(probs: Any, labels: Any, objective: str = DEFAULT_OBJECTIVE) -> list[str]:
    """Sentences saying when validation cannot tell teams apart: members at chance, several
    members tied at the top, few validation samples, or a best member with only a handful of
    errors. Each names the remedy (choosing on NLL too, unless that is already the
    objective)."""
    p, y = check_probs(probs, labels)
    n, c = len(y), p.shape[2]
    accs = (p.argmax(axis=2) == y).mean(axis=1)
    best = float(accs.max())
    tied = int(np.sum(accs == best))
    errors = round((1.0 - best) * n)
    remedy = "give a larger validation split (val_fraction, or a validation file)"
    if objective != "nll":
        remedy += ' or choose on NLL (objective = "nll", --objective nll)'
    ranks = "accuracy cannot rank teams" if objective != "nll" else "teams differ only in NLL"
    out = []
    if best <= 1.5 / c:
        out.append(
            f"The members are at chance: the best reaches {100 * best:.2f}% validation "
            f"accuracy with {c} classes, so no team of them is worth shipping; check the "
            "learning rates, the epochs and the model for this data."
        )
    elif tied >= SATURATED_TIES:
        what = "saturated" if best == 1.0 else "tied at the top"
        out.append(
            f"Validation is {what}: {tied} members tie for the best validation accuracy, "
            f"{100 * best:.2f}% on {plural(n, 'sample')}, so {ranks}; {remedy}."
        )
    elif n < MIN_VALIDATION_SAMPLES or errors < MIN_VALIDATION_ERRORS:
        out.append(
            f"Validation is small: {plural(n, 'sample')}, on which the best member errs "
            f"{errors} times, so teams differ by a handful of samples; {remedy}."
        )
    return out


def _temperature(probs: np.ndarray, labels: np.ndarray, what: str, notes: list[str]) -> float:
    """The fitted temperature, or 1 with a note when the fit runs to its bound: validation
    without errors (every sample already right with the highest probability) asks for an
    infinitely sharp ensemble, which test errors would punish without limit."""
    t = fit_temperature(probs, labels)
    if t in (MIN_TEMPERATURE, MAX_TEMPERATURE):
        notes.append(
            f"Temperature scaling of {what} was skipped: validation cannot fit it (the fit "
            f"runs to T = {t:g}, as when validation has no errors); give a larger validation "
            "split."
        )
        return 1.0
    if not 1 / EXTREME_TEMPERATURE <= t <= EXTREME_TEMPERATURE:
        notes.append(
            f"The temperature fitted for {what} is extreme (T = {t:.3g}) on "
            f"{plural(len(labels), 'validation sample')}; it may not hold on new data "
            "(--no-calibrate, or calibrate = false, keeps the raw probabilities)."
        )
    return t


def ensemble_selector(config: EnsembleConfig, candidates: int | None = None) -> Selector:
    """The selector `choose_ensemble` uses for `config` (built, so checked, by
    `make_selector`): its method and options, the size capped at the number of `candidates`
    when known, and at least 2 for the focal methods. Commands build it before reading a pool,
    so a bad option fails first."""
    size = config.size
    if size is not None and candidates is not None:
        size = min(size, candidates)
    if config.method in ("focal", "hierarchical") and size is not None:
        size = max(size, 2)
    options: dict[str, Any] = {"objective": config.objective}
    if config.method in ("focal", "hierarchical"):
        options["metric"] = config.metric
    if config.parity and config.method == "focal":  # the other methods take no parity
        options["parity"] = True
    if config.method == "random":
        options = {"seed": config.seed, "repeats": 1}
    return make_selector(config.method, size, **options)


def candidate_floor(
    val_accuracies: Sequence[float], min_accuracy: float | None, min_relative: float
) -> float:
    """The lowest validation accuracy a candidate may have: the higher of the absolute floor
    and `min_relative` × the best member's."""
    best = max(val_accuracies) if len(val_accuracies) else 0.0
    return max(0.0 if min_accuracy is None else float(min_accuracy), min_relative * best)


def choose_ensemble(
    val_probs: Any,
    val_labels: Any,
    ids: Sequence[str],
    config: EnsembleConfig | None = None,
    *,
    max_candidates: int | None = None,
    members: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
) -> ChosenEnsemble:
    """Choose (or, with `members`, take as given) a team on validation and calibrate it.

    Args:
        val_probs: validation probabilities of every member (M, N, C), in `ids` order.
        val_labels: validation labels (N,).
        ids: member ids (M,).
        config: method, objective, floor and calibration (default `EnsembleConfig()`).
        max_candidates: keep at most this many of the best candidates on validation
            (default `config.max_candidates`, as every command does).
        members, weights: a given team (and weights) instead of selection; it is still
            calibrated.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 3, 200)
        >>> logits = rng.normal(size=(5, 200, 3)); logits[:, np.arange(200), y] += 2
        >>> p = np.exp(logits) / np.exp(logits).sum(2, keepdims=True)
        >>> team = choose_ensemble(p, y, ["a", "b", "c", "d", "e"])
        >>> team.method, len(team.members) >= 1, team.temperature > 0
        ('greedy', True, True)
    """
    cfg = config or EnsembleConfig()
    max_candidates = cfg.max_candidates if max_candidates is None else max_candidates
    p, y = check_probs(val_probs, val_labels)
    ids = list(ids)
    if len(ids) != len(p):
        raise ParameterError(f"{len(ids)} member ids for predictions of {len(p)} members.")
    accs = (p.argmax(axis=2) == y).mean(axis=1)
    notes: list[str] = []
    if members is not None:
        unknown = [m for m in members if m not in ids]
        if unknown:
            raise ParameterError(f"Not members of the pool: {', '.join(unknown)}.")
        rows = [ids.index(m) for m in members]
        w = list(weights) if weights is not None else [1.0 / len(rows)] * len(rows)
        if len(w) != len(rows):
            raise ParameterError(
                f"{plural(len(w), 'weight')} for a team of {plural(len(rows), 'member')}."
            )
        temps = [
            _temperature(p[r], y, f"member {ids[r]}", notes) if cfg.calibrate_members else 1.0
            for r in rows
        ]
        chosen = ChosenEnsemble("given", cfg.objective, list(members), [float(v) for v in w])
        chosen.member_temperatures = temps
        chosen.candidates = list(members)
    else:
        floor = candidate_floor(accs, cfg.min_accuracy, cfg.min_relative_accuracy)
        order = [i for i in np.argsort(-accs, kind="stable") if accs[i] >= floor]
        if not order:
            raise ParameterError(
                f"No member reaches the candidate floor of {100 * floor:.2f}% validation "
                f"accuracy (the best has {100 * accs.max():.2f}%); lower min_accuracy."
            )
        excluded = [
            {"id": ids[i], "val_accuracy": float(accs[i]), "reason": "below the floor"}
            for i in range(len(ids))
            if accs[i] < floor
        ]
        if len(order) > max_candidates:
            excluded += [
                {
                    "id": ids[i],
                    "val_accuracy": float(accs[i]),
                    "reason": f"not among the {max_candidates} best on validation",
                }
                for i in order[max_candidates:]
            ]
            order = order[:max_candidates]
        cand = sorted(int(i) for i in order)
        cp = p[cand]
        temps_all = [
            _temperature(pm, y, f"member {ids[i]}", notes) if cfg.calibrate_members else 1.0
            for pm, i in zip(cp, cand, strict=True)
        ]
        if cfg.calibrate_members:
            cp = np.stack([apply_temperature(pm, t) for pm, t in zip(cp, temps_all, strict=True)])
        if cfg.method in ("focal", "hierarchical") and len(cand) < 2:
            sel_members, sel_weights, details = (0,), (1.0,), {"note": "one candidate"}
        else:
            sel = ensemble_selector(cfg, len(cand)).fit(cp, y)
            sel_members, sel_weights, details = sel.members, sel.weights, sel.details
        chosen = ChosenEnsemble(
            cfg.method,
            cfg.objective,
            [ids[cand[j]] for j in sel_members],
            [float(v) for v in sel_weights],
            member_temperatures=[temps_all[j] for j in sel_members],
            candidates=[ids[i] for i in cand],
            excluded=excluded,
            floor=float(floor),
            details=details_in_ids(details, [ids[i] for i in cand]),
        )
        chosen.warnings = validation_warnings(p[cand], y, cfg.objective)
        if cfg.size is not None and len(cand) < cfg.size:
            chosen.warnings.append(
                f"Only {plural(len(cand), 'member')} reach the candidate floor of "
                f"{100 * floor:.2f}%, so the team has at most {len(cand)} instead of "
                f"{cfg.size}; lower the floor (min_accuracy, min_relative_accuracy) for larger "
                "teams."
            )
    if cfg.calibrate:
        rows = [ids.index(m) for m in chosen.members]
        raw = chosen.combine(p[rows])  # member temperatures applied, ensemble T still 1
        chosen.temperature = _temperature(raw, y, "the ensemble", notes)
    chosen.warnings += list(dict.fromkeys(notes))
    return chosen


__all__ = [
    "INDEX_FIELDS",
    "ChosenEnsemble",
    "EnsembleConfig",
    "candidate_floor",
    "choose_ensemble",
    "details_in_ids",
    "ensemble_selector",
    "plural",
    "validation_warnings",
]
