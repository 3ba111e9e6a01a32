"""Validated configuration: pydantic models whose errors become one `ConfigError` sentence, and
TOML loading."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from lrensemble.errors import ConfigError


def first_problem(error: ValidationError) -> tuple[tuple[Any, ...], str]:
    """Location and message of the first problem, looking through the `ConfigError` that a
    nested `StrictModel` raised (pydantic wraps it as a value error)."""
    first = error.errors()[0]
    nested = (first.get("ctx") or {}).get("error")
    if first["type"] == "value_error" and isinstance(nested, ConfigError) and nested.detail:
        return tuple(first["loc"]) + nested.location, nested.detail
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "required key is missing"
    elif not isinstance(first.get("input"), dict):
        msg += f" (got {first.get('input')!r})"
    return tuple(first["loc"]), msg


def describe_validation_error(error: ValidationError, where: str = "") -> str:
    """The first problem of a pydantic error as one sentence, e.g.
    `run.toml: train.epochs: Input should be greater than 0 (got -3).`"""
    loc, msg = first_problem(error)
    location = ".".join(str(p) for p in loc)
    parts = [p for p in (where, location) if p]
    more = len(error.errors()) - 1
    tail = f"; and {more} more problem{'s' if more > 1 else ''}" if more else ""
    return f"{': '.join([*parts, msg])}{tail}."


def config_error(error: ValidationError, where: str, options: dict[str, Any]) -> ConfigError:
    """The first problem as a `ConfigError`, naming the command-line option (`--epochs: …`)
    when the bad value is a `[train]` key that `options` overrode, else the file and key."""
    loc, detail = first_problem(error)
    key = loc[1] if len(loc) > 1 and loc[0] == "train" else None
    if key is not None and options.get(key) is not None:
        return ConfigError(f"--{key}: {detail}.")
    return ConfigError(describe_validation_error(error, where))


class StrictModel(BaseModel):
    """A configuration object: unknown keys are errors, values are validated on construction,
    and a bad value raises `ConfigError` with one sentence."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            location, detail = first_problem(exc)
            raise ConfigError(
                describe_validation_error(exc, type(self).__name__), location, detail
            ) from None


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file, turning missing files and syntax errors into `ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {path} cannot be read ({exc}).") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}.") from None
