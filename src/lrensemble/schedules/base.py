"""The `Policy` type, the policy registry and parameter checks shared by every policy."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lrensemble.errors import ParameterError
from lrensemble.registry import Registry

# Progress is compared against boundaries (milestones, stage starts) with this slack, in epochs
# relative to T, so that 0.3 * 100 == 30.000000000000004 still counts as reached at t = 30.
BOUNDARY_EPS = 1e-9
# The most epochs a run trains or a curve spans: far beyond any real run, and small enough that a
# typo such as 1e12 is refused in one sentence instead of exhausting memory.
MAX_EPOCHS = 1_000_000
# A drawn curve has at most this many points, whatever its length.
MAX_CURVE_POINTS = 10_000


class Policy:
    """A learning-rate policy: a pure function `lr = policy(t, T)`.

    `t` is training progress in epochs (fractional when the LR is updated every iteration) and
    `T` the total number of epochs. A policy has no state; `spec()` gives the JSON-able
    description from which `from_spec` rebuilds it, and pickling goes through that spec (the
    closure behind `__call__` cannot be pickled), so a policy crosses into spawned worker
    processes; there its name must be registered too, as every built-in policy is.
    """

    __slots__ = ("_fn", "name", "params")

    def __init__(self, name: str, params: dict[str, Any], fn: Callable[[float, float], float]):
        self.name = name
        self.params = params
        self._fn = fn

    def __call__(self, t: float, T: float) -> float:
        if not (T > 0 and math.isfinite(T)):
            raise ParameterError(
                f"The total number of epochs T must be positive and finite, got {T!r}."
            )
        return self._fn(float(t), float(T))

    def spec(self) -> dict[str, Any]:
        """JSON-able description: `{"name": ..., **params}`; nested policies become specs."""
        return {"name": self.name, **{k: _to_spec(v) for k, v in self.params.items()}}

    @property
    def label(self) -> str:
        """Short human label, e.g. `onecycle(max_lr=0.1)`: the parameters given explicitly."""
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())
        return f"{self.name}({shown})"

    @property
    def short_label(self) -> str:
        """Name and peak LR only, e.g. `onecycle 0.1`: for progress bars and plot legends."""
        lr = self.params.get("max_lr")
        return self.name if lr is None else f"{self.name} {lr:g}"

    def curve(self, T: float, steps_per_epoch: int = 50) -> tuple[list[float], list[float]]:
        """The policy sampled every iteration over [0, T], at most `MAX_CURVE_POINTS` + 1
        points: (epochs, learning rates)."""
        T = number("T", T, low=0.0, low_open=True)
        n = max(1, min(round(T * steps_per_epoch), MAX_CURVE_POINTS))
        ts = [T * i / n for i in range(n + 1)]
        return ts, [self(t, T) for t in ts]

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        if self.name not in POLICIES:
            raise pickle.PicklingError(
                f"Policy {self.name!r} is not registered, so it cannot be rebuilt from its spec."
            )
        return from_spec, (self.spec(),)

    def __copy__(self) -> Policy:
        return self  # immutable: a copy is the policy itself

    def __deepcopy__(self, memo: dict[int, Any]) -> Policy:
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(repr(self.spec()))

    def __repr__(self) -> str:
        return f"Policy({self.label})"


def _to_spec(value: Any) -> Any:
    if isinstance(value, Policy):
        return value.spec()
    if isinstance(value, (list, tuple)):
        return [_to_spec(v) for v in value]
    return value


def _short(value: Any) -> str:
    if isinstance(value, Policy):
        return value.label
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    return str(value)


POLICIES: Registry[Policy] = Registry("LR policy")
register_policy = POLICIES.register


def number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Check that `value` is a real number inside the given bounds and return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{name} must be a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"{name} must be finite, got {value!r}.")
    if low is not None and (value < low or (low_open and value == low)):
        raise ParameterError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value:g}.")
    if high is not None and (value > high or (high_open and value == high)):
        raise ParameterError(
            f"{name} must be {'<' if high_open else '<='} {high:g}, got {value:g}."
        )
    return value


def positive(name: str, value: Any) -> float:
    return number(name, value, low=0.0, low_open=True)


def non_negative(name: str, value: Any) -> float:
    return number(name, value, low=0.0)


def lr_range(max_lr: Any, min_lr: Any) -> tuple[float, float]:
    """Check a (max_lr, min_lr) pair: max_lr > 0 and 0 <= min_lr <= max_lr."""
    hi = positive("max_lr", max_lr)
    lo = non_negative("min_lr", min_lr)
    if lo > hi:
        raise ParameterError(f"min_lr ({lo:g}) must not exceed max_lr ({hi:g}).")
    return hi, lo


def fractions(name: str, values: Any) -> tuple[float, ...]:
    """Check strictly increasing fractions of training, each inside the open interval (0, 1)."""
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise ParameterError(f"{name} must be a list of fractions of training, got {values!r}.")
    out = tuple(number(f"{name}[{i}]", v) for i, v in enumerate(values))
    for i, v in enumerate(out):
        if not 0.0 < v < 1.0:
            raise ParameterError(
                f"{name} are fractions of training and must lie in (0, 1), got {v:g}."
            )
        if i and v <= out[i - 1]:
            raise ParameterError(f"{name} must be strictly increasing, got {list(out)}.")
    return out


def epochs_list(name: str, values: Any, length: int | None = None) -> tuple[float, ...]:
    """Check a list of positive lengths in epochs (optionally of a given length)."""
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise ParameterError(f"{name} must be a list of lengths in epochs, got {values!r}.")
    out = tuple(positive(f"{name}[{i}]", v) for i, v in enumerate(values))
    if length is not None and len(out) != length:
        raise ParameterError(f"{name} must have {length} entries, got {len(out)}.")
    return out


def reached(t: float, fraction: float, T: float) -> bool:
    """Whether progress t has reached `fraction` of T, tolerant to float rounding."""
    return t >= fraction * T - BOUNDARY_EPS * max(T, 1.0)


def cycle_phase(tau: float, period: float) -> float:
    """Position in [0, 1) inside a cycle of length `period` at local time `tau`."""
    q = max(tau, 0.0) / period
    return max(q - math.floor(q + BOUNDARY_EPS), 0.0)


def cosine_between(high: float, low: float, phase: float) -> float:
    """Half-cosine from `high` at phase 0 to `low` at phase 1."""
    return low + (high - low) * (1.0 + math.cos(math.pi * phase)) / 2.0


def create(name: str, **params: Any) -> Policy:
    """Create a registered policy by name, e.g. `create("onecycle", max_lr=0.1)`."""
    return POLICIES.create(name, **params)


def list_policies() -> list[str]:
    """Names of every registered policy."""
    return POLICIES.names()


def from_spec(spec: Mapping[str, Any] | Policy) -> Policy:
    """Rebuild a policy from `Policy.spec()` output (or a config table with a `name` key)."""
    if isinstance(spec, Policy):
        return spec
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ParameterError(f"A policy must be given as a table with a 'name' key, got {spec!r}.")
    params = {k: v for k, v in spec.items() if k != "name"}
    return create(spec["name"], **params)
