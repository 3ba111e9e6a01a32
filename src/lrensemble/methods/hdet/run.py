"""`run_hdet`: one HDET job into a run directory, its members filed into a pool.

`DIR/hdet.json` records the run's identity (another config in DIR is refused), `DIR/train` holds
the job's checkpoints and outputs, and the averaged model is filed as a member of method `hdet`;
with `replica_members`, every replica's last pre-sync weights are filed too, method
`hdet-replica`, parent the averaged member. A killed job resumes from its last epoch when run
again; a finished one is only filed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrensemble.atomic import write_json
from lrensemble.data.base import Dataset
from lrensemble.data.registry import load_dataset
from lrensemble.device import resolve_device
from lrensemble.errors import ParameterError
from lrensemble.filing import NewMember, file_members
from lrensemble.methods.hdet.config import HdetConfig
from lrensemble.methods.hdet.launch import launch_torchrun, train_in_process
from lrensemble.methods.hdet.train import (
    AVERAGED,
    CONFIG,
    RESULT,
    build_net,
    replica_file,
    run_fingerprint,
)
from lrensemble.methods.run_dir import open_run
from lrensemble.models.fit_check import check_model_fits
from lrensemble.train.checkpoint import load_weights
from lrensemble.train.evaluate import evaluate

MARKER = "hdet.json"
TRAIN = "train"


@dataclass
class HdetResult:
    """What a run made: its members in the pool (the averaged model first), its status."""

    out_dir: Path
    pool_dir: Path
    status: str = "complete"
    members: list[str] = field(default_factory=list)
    filed: list[str] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def _finished(train_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    try:
        result = json.loads((train_dir / RESULT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if result.get("fingerprint") == fingerprint else None


def _record(
    config: HdetConfig, dataset: Dataset, result: dict[str, Any], metrics: dict[str, Any],
    fingerprint: str, replica: int | None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "status": "complete",
        "dataset": dataset.describe(),
        "model": config.model,
        "train": config.train.model_dump(mode="json", exclude={"device"}),
        "hdet": {
            **config.hdet.model_dump(mode="json"),
            "replicas": result["replicas"],
            "final_base_lr": result.get("base_lr"),
            "replica": replica,
        },
        "seed": config.train.seed,
        "epochs": config.train.epochs,
        "epochs_completed": result["epochs_completed"],
        "history": result["history"],
        "metrics": metrics,
        "timings": {"train_seconds": result["seconds"]},
        "fingerprint": fingerprint,
    }


def run_hdet(
    config: HdetConfig,
    out_dir: str | os.PathLike[str],
    nproc: int | None = None,
    pool_dir: str | os.PathLike[str] | None = None,
    *,
    simulate: bool = False,
    timeout: float | None = None,
    log: Callable[[str], None] = print,
) -> HdetResult:
    """Run (or resume) the HDET job of `config` with `nproc` replicas (default `[hdet]
    replicas`): torchrun ranks on this machine, or simulated in this process; then file."""
    start = time.perf_counter()
    replicas = config.hdet.replicas if nproc is None else nproc
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 1024:
        raise ParameterError(f"--nproc must be a whole number from 1 to 1024, got {nproc!r}.")
    if timeout is not None and not timeout > 0:
        raise ParameterError(f"The timeout must be a positive number of seconds, got {timeout!r}.")
    dataset = load_dataset(config.data["name"], **config.params("data"))
    net = build_net(config, dataset)
    check_model_fits(
        net, dataset.input_shape, dataset.num_classes, f"Model {config.model['name']!r}"
    )
    if len(dataset.y_train) < replicas:
        raise ParameterError(
            f"The training set has {len(dataset.y_train)} examples, fewer than {replicas} replicas."
        )
    fp = run_fingerprint(config, replicas, dataset.info.get("sha256"))
    out = Path(out_dir)
    pools = Path(pool_dir) if pool_dir is not None else out / "pool"
    pool = open_run(out, MARKER, fp, config, pools, dataset, "an HDET run")
    train_dir = out / TRAIN
    done = _finished(train_dir, fp)
    if done is None:
        train_dir.mkdir(parents=True, exist_ok=True)
        write_json(train_dir / CONFIG, config.model_dump(mode="json"))
        if simulate:
            train_in_process(config, dataset, train_dir, replicas, fp, log)
        else:
            launch_torchrun(train_dir / CONFIG, train_dir, replicas, timeout=timeout, log=log)
        done = _finished(train_dir, fp)
        assert done is not None, "the job ended without its result"
    result = HdetResult(out, pools, done["status"], history=done["history"])
    if done["status"] != "complete":
        log(f"HDET diverged after {done['epochs_completed']} epochs; nothing filed")
        result.seconds = time.perf_counter() - start
        return result

    device = resolve_device(config.train.device)
    tag = fp[:6]
    averaged_id = f"hdet-{tag}"
    files = [(averaged_id, train_dir / AVERAGED, None)]
    if done["replica_members"]:
        files += [
            (f"hdet-replica-{r}-{tag}", train_dir / replica_file(r), r) for r in range(replicas)
        ]
    members = []
    for member_id, weights, replica in files:
        model = load_weights(build_net(config, dataset), weights).to(device)
        metrics = {
            split: evaluate(model, *dataset.split(split), config.train.eval_batch_size, device)
            for split in ("val", "test")
            if len(dataset.split(split)[1])
        }
        record = _record(config, dataset, done, metrics, fp, replica)
        method, parent = ("hdet", None) if replica is None else ("hdet-replica", averaged_id)
        members.append(NewMember(member_id, model, record, method, parent, weights=weights))
        val = metrics.get("val", {})
        acc, nll = val.get("accuracy", float("nan")), val.get("nll", float("nan"))
        log(f"{member_id}: val acc {acc:.4f}  nll {nll:.4f}")
    result.filed = file_members(
        pool, members, dataset, eval_batch_size=config.train.eval_batch_size, device=device
    )
    result.members = [m.id for m in members]
    result.seconds = time.perf_counter() - start
    return result
