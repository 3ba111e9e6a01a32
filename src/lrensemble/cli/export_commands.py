"""The chosen ensemble as a model to ship: `lrens export` and `lrens predict`."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from lrensemble.cli.app import DeviceOption, app, out
from lrensemble.cli.common import ensemble_config, parse_members, parse_weights, warn
from lrensemble.errors import ParameterError


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _spec_text(spec: dict[str, Any] | None) -> str:
    if spec is None:
        return "-"
    params = " ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return f"{spec['name']} {params}".strip()


@app.command("export")
def export_command(
    pool: Annotated[Path, typer.Argument(help="Pool directory.")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory to write (new, empty or a previous export).")
    ],
    config: Annotated[
        Path | None,
        typer.Option(help="TOML file whose ensemble table says how to choose the team."),
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="brute_force, greedy, focal or hierarchical.")
    ] = None,
    size: Annotated[int | None, typer.Option(help="Team size (default: the method's).")] = None,
    objective: Annotated[str | None, typer.Option(help="accuracy or nll.")] = None,
    members: Annotated[
        str | None, typer.Option(help="A given team: comma-separated member ids.")
    ] = None,
    weights: Annotated[
        str | None, typer.Option(help="Weights of the given team (default: equal).")
    ] = None,
    team: Annotated[
        Path | None,
        typer.Option(help="A chosen team as it is, e.g. report/chosen_ensemble.json."),
    ] = None,
) -> None:
    """Write a pool's chosen ensemble (weights, temperatures, normalization) as one directory.

    The team is chosen on validation as lrens select chooses it (--config, --method, --size,
    --objective), given (--members, --weights; calibrated on validation), or taken as it is
    from a team file (--team).
    """
    from lrensemble.export import export_ensemble, load_ensemble_config, read_manifest

    cfg = None
    if config is not None or method is not None or size is not None or objective is not None:
        base = load_ensemble_config(config) if config is not None else None
        cfg = ensemble_config(base, method=method, size=size, objective=objective)
    ids = parse_members(members)
    if weights is not None and ids is None:
        raise ParameterError("Weights need the members they belong to (--members a,b,c).")
    vote = None if weights is None or ids is None else parse_weights(weights, len(ids))
    target = export_ensemble(pool, out_dir, cfg, members=ids, weights=vote, team_file=team)
    manifest = read_manifest(target)
    entries = manifest["members"]
    out.print(
        f"exported {_count(len(entries), 'member')} ({manifest['method']}, objective "
        f"{manifest['objective']}) → {target}"
    )
    table = Table("member", "model", "weight", "temperature")
    for m in entries:
        weight, temp = f"{m['weight']:.4f}", f"{m['temperature']:.4f}"
        table.add_row(m["id"], _spec_text(m["model"]), weight, temp)
    out.print(table)
    out.print(f"ensemble temperature {manifest['temperature']:.4f}")
    warn(manifest.get("warnings") or [])
    if not manifest["has_weights"]:
        out.print(
            f"{target} holds no weights: members {', '.join(manifest['missing_weights'])} have "
            "no model weights or spec (imported predictions), so it records the team and "
            "cannot predict."
        )
        return
    groups = len({m["group"] for m in entries})
    norm = "recorded" if manifest["normalization"] else "none recorded"
    out.print(
        f"inputs {tuple(manifest['input_shape'])}, normalization {norm}, "
        f"{_count(groups, 'architecture')}; files ensemble.json, weights.safetensors"
    )


@app.command("predict")
def predict_command(
    ensemble: Annotated[Path, typer.Argument(help="Exported ensemble directory.")],
    inputs: Annotated[Path, typer.Argument(help="Inputs: .npy, .npz or .csv (one row a sample).")],
    out_file: Annotated[Path, typer.Option("--out", help="Probabilities to write (.npy).")],
    normalized: Annotated[
        bool, typer.Option(help="The inputs are already normalized: skip the recorded one.")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per forward pass.")] = 1024,
    device: DeviceOption = None,
    key: Annotated[str | None, typer.Option(help="The array of a .npz file to use.")] = None,
    label_column: Annotated[
        str | None,
        typer.Option(
            help="CSV: the label column to drop (header name or index; default: the recorded one)."
        ),
    ] = None,
) -> None:
    """The ensemble's calibrated probabilities (N, C) of raw inputs, saved as float32 .npy.

    Flat rows of the members' input size are reshaped to their input shape; a CSV's columns
    are taken by the names recorded in training. The recorded normalization is applied unless
    --normalized (with a warning when the export records none).
    """
    from lrensemble.export import check_output_file, load_ensemble, read_inputs, save_probabilities

    check_output_file(out_file)
    model = load_ensemble(ensemble, device=device or "auto")
    recorded = model.manifest
    notes: list[str] = []
    x = read_inputs(
        inputs,
        key=key,
        label_column=label_column,
        columns=recorded.get("columns"),
        label=recorded.get("label_column"),
        size=math.prod(model.input_shape) if model.input_shape else None,
        notes=notes,
    )
    warn(notes)
    if model.normalization is None and not normalized:
        warn(
            [
                f"{ensemble} records no input normalization (its pool recorded none): the inputs "
                "go in as they are; give them as the members saw them and pass --normalized."
            ]
        )
    probs = model.predict_proba(x, batch_size, normalized=normalized)
    save_probabilities(out_file, probs)
    counts = Counter(probs.argmax(axis=1).tolist())
    names = model.classes or [str(c) for c in range(probs.shape[1])]
    shown = ", ".join(f"{names[c]} {counts[c]}" for c in sorted(counts))
    members = _count(len(model.ids), "member")
    out.print(f"predicted {_count(len(probs), 'sample')} with {members} → {out_file}")
    out.print(f"predicted classes: {shown}")
