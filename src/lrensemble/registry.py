"""A small name -> factory registry shared by policies, models, datasets and optimizers."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from lrensemble.errors import ParameterError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; `create` turns bad names and bad keyword arguments into one
    clear sentence instead of a KeyError or TypeError deep in a factory."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorator

    def unregister(self, name: str) -> None:
        """Remove an entry (for plugins and tests that register temporary ones)."""
        self._factories.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> Callable[..., T]:
        if not isinstance(name, str) or name not in self._factories:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"Unknown {self.kind} {name!r}; known: {', '.join(self.names())}.{hint}"
            )
        return self._factories[name]

    def create(self, name: str, *args: Any, **params: Any) -> T:
        factory = self.get(name)
        check_parameters(factory, params, f"{self.kind} {name!r}")
        return factory(*args, **params)

    def parameters(self, name: str) -> dict[str, Any]:
        """The factory's keyword parameters and their defaults (`inspect.Parameter.empty` when
        required), for listings and help."""
        sig = inspect.signature(self.get(name))
        return {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }


def check_parameters(factory: Callable[..., Any], params: dict[str, Any], what: str) -> None:
    """Raise `ParameterError` naming unknown or missing keyword parameters of `factory`."""
    sig = inspect.signature(factory)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    known = {
        p.name
        for p in sig.parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    unknown = sorted(set(params) - known)
    if unknown and not accepts_any:
        raise ParameterError(
            f"{what} has no parameter {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(sorted(known)) or 'nothing'}."
        )
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name not in params
    ]
    if missing:
        raise ParameterError(f"{what} needs {', '.join(map(repr, missing))}.")
