"""Parsing and printing shared by several `lrens` commands: warnings, member lists, vote
weights and `[ensemble]` options, so every command words them the same way."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from lrensemble.ensemble import EnsembleConfig
from lrensemble.ensemble.choice import plural
from lrensemble.errors import ConfigError, ParameterError


def warn(lines: Sequence[str]) -> None:
    """Warnings on stderr, one line each starting `warning: `, so --json output stays clean."""
    err = Console(stderr=True, soft_wrap=True)
    for line in lines:
        err.print(Text.assemble(("warning: ", "bold yellow"), (line, "yellow")), highlight=False)


def parse_members(text: str | None) -> list[str] | None:
    """`--members a,b,c` as a list of ids (None when not given); empty lists and ids given
    twice are refused (a team member's weight comes from --weights, not repetition)."""
    if text is None:
        return None
    ids = [m.strip() for m in text.split(",") if m.strip()]
    if not ids:
        raise ParameterError("--members takes comma-separated member ids, e.g. a,b,c.")
    twice = sorted({m for m in ids if ids.count(m) > 1})
    if twice:
        raise ParameterError(
            f"--members names {', '.join(twice)} more than once; give each member once "
            "(--weights sets their weights)."
        )
    return ids


def parse_weights(text: str, count: int) -> list[float]:
    """`--weights 0.5,0.25,0.25`: one non-negative number per member, normalized to sum 1."""
    from lrensemble.ensemble.checks import check_weights

    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise ParameterError(
                f"--weights takes numbers separated by commas, got {part.strip()!r}."
            ) from None
    if len(values) != count:
        raise ParameterError(
            f"--weights has {len(values)} number{'s' * (len(values) != 1)} for a team of "
            f"{plural(count, 'member')}; give one per member, in --members order."
        )
    if not all(math.isfinite(v) and v >= 0 for v in values) or not any(values):
        raise ParameterError("--weights must be finite, non-negative and not all zero.")
    top = max(values)  # scaled first: weights near the float limit must not overflow the sum
    return [float(w) for w in check_weights([v / top for v in values], count)]


def ensemble_config(base: EnsembleConfig | None = None, **given: Any) -> EnsembleConfig:
    """`base` (default `EnsembleConfig()`) with the options given (None: unchanged); a bad
    value is one sentence naming the option, e.g. `--objective: Input should be ...`."""
    fields = {k: v for k, v in given.items() if v is not None}
    try:
        return EnsembleConfig(**{**(base.model_dump() if base else {}), **fields})
    except ConfigError as exc:
        if not exc.location:  # a rule between options
            raise ParameterError(f"{exc.detail[:1].upper()}{exc.detail[1:]}.") from None
        option = "--" + str(exc.location[0]).replace("_", "-")
        raise ParameterError(f"{option}: {exc.detail}.") from None


# `[ensemble]` options shared by select, report and export: None means EnsembleConfig's default.
_DEFAULTS = EnsembleConfig()
MethodOption = Annotated[
    str | None,
    typer.Option(
        help="brute_force, greedy, focal, hierarchical, or random (a baseline) "
        f"(default {_DEFAULTS.method})."
    ),
]
CorruptionDataOption = Annotated[
    list[str] | None,
    typer.Option(
        "--data",
        help="With --corruptions: the pool's data, when it cannot be found from the pool "
        "(a .npz, a .csv, an image folder, or SPLIT=PATH items).",
    ),
]
SizeOption = Annotated[int | None, typer.Option(help="Team size (default: the method's choice).")]
ObjectiveOption = Annotated[
    str | None,
    typer.Option(
        help=f"nll or accuracy: what the choice optimizes on validation "
        f"(default {_DEFAULTS.objective})."
    ),
]
MetricOption = Annotated[
    str | None, typer.Option(help=f"Focal diversity metric (default {_DEFAULTS.metric}).")
]
MinAccuracyOption = Annotated[
    float | None, typer.Option(help="Candidate floor: an absolute validation accuracy.")
]
MinRelativeOption = Annotated[
    float | None,
    typer.Option(
        help="Candidate floor: a fraction of the best member's accuracy "
        f"(default {_DEFAULTS.min_relative_accuracy:g}; the higher floor applies)."
    ),
]
MaxCandidatesOption = Annotated[
    int | None,
    typer.Option(
        help=f"At most this many of the best members (default {_DEFAULTS.max_candidates})."
    ),
]
CalibrateOption = Annotated[
    bool | None,
    typer.Option(
        "--calibrate/--no-calibrate",
        help="Fit a temperature of the ensemble's soft vote on validation (default on).",
    ),
]
CalibrateMembersOption = Annotated[
    bool | None,
    typer.Option(
        "--calibrate-members/--no-calibrate-members",
        help="Fit a temperature per member before averaging (default off).",
    ),
]
