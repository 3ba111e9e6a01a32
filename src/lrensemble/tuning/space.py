"""Search spaces: the points of a grid, and policies drawn by an Optuna trial."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import optuna

from lrensemble.errors import ConfigError, LREnsembleError
from lrensemble.schedules.base import POLICIES, Policy, from_spec
from lrensemble.schedules.grids import grid

GRID_PARAM = "point"


def point_key(policy: Policy) -> str:
    """A readable, stable member id for a policy: `onecycle-0.1-3fa2c1`."""
    spec = policy.spec()
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:6]
    lr = spec.get("max_lr")
    head = policy.name if lr is None else f"{policy.name}-{lr:.3g}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{head}-{digest}")


def grid_points(search: Any) -> dict[str, Policy]:
    """The grid's policies by member id, in config order."""
    try:
        if search.grid is not None:
            policies = grid(search.grid, search.scale)
        else:
            policies = [from_spec(p) for p in search.policies]
            if search.scale != 1.0:
                policies = [
                    from_spec({"name": "scaled", "policy": p.spec(), "factor": search.scale})
                    for p in policies
                ]
    except LREnsembleError as exc:
        raise ConfigError(f"search: {exc}") from None
    points = {point_key(p): p for p in policies}
    if len(points) != len(policies):
        raise ConfigError("search: the grid lists the same policy twice.")
    if not points:
        raise ConfigError("search: the grid is empty.")
    return points


def _range(name: str, value: Any) -> tuple[float, float]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        or not value[0] < value[1]
    ):
        raise ConfigError(
            f"search.space.{name} must be [low, high] with low < high, got {value!r}."
        )
    return float(value[0]), float(value[1])


def space_choices(search: Any) -> dict[str, Any]:
    """Validate `[search.space]`: `policies` (names), `max_lr` ([low, high], log-uniform) and
    optional `[search.space.params.<policy>]` ranges ([low, high], uniform) or fixed values."""
    space = dict(search.space or {})
    allowed = {"policies", "max_lr", "params"}
    unknown = sorted(set(space) - allowed)
    if unknown:
        raise ConfigError(
            f"search.space: unknown key {unknown[0]!r}; use {', '.join(sorted(allowed))}."
        )
    names = space.get("policies")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError("search.space.policies must be a non-empty list of policy names.")
    for n in names:
        POLICIES.get(n)  # unknown names raise with a suggestion
    lo, hi = _range("max_lr", space.get("max_lr"))
    if lo <= 0:
        raise ConfigError("search.space.max_lr must be positive (it is sampled log-uniformly).")
    params = space.get("params", {}) or {}
    if not isinstance(params, dict) or not set(params) <= set(names):
        raise ConfigError("search.space.params must be tables named after the searched policies.")
    for policy, table in params.items():
        known = set(POLICIES.parameters(policy))
        for key, value in table.items():
            if key not in known or key == "max_lr":
                raise ConfigError(
                    f"search.space.params.{policy}: {policy} has no parameter {key!r}."
                )
            if isinstance(value, list):
                _range(f"params.{policy}.{key}", value)
    # every policy must be constructible with max_lr alone plus the given params
    for n in names:
        example = {"max_lr": hi}
        for key, value in params.get(n, {}).items():
            example[key] = value[0] if isinstance(value, list) else value
        try:
            POLICIES.create(n, **example)
        except LREnsembleError as exc:
            raise ConfigError(f"search.space: {exc}") from None
    return {"policies": names, "max_lr": (lo, hi), "params": params}


def suggest_policy(trial: optuna.Trial, choices: dict[str, Any]) -> Policy:
    """Draw a policy: the name categorically, max_lr log-uniformly, listed parameters from
    their ranges (named `<policy>.<param>`, so conditional spaces stay separate for TPE)."""
    name = trial.suggest_categorical("policy", choices["policies"])
    lo, hi = choices["max_lr"]
    params: dict[str, Any] = {"max_lr": trial.suggest_float("max_lr", lo, hi, log=True)}
    for key, value in choices["params"].get(name, {}).items():
        if isinstance(value, list):
            params[key] = trial.suggest_float(f"{name}.{key}", value[0], value[1])
        else:
            params[key] = value
    return POLICIES.create(name, **params)
