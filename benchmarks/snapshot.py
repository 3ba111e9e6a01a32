"""Snapshot ensembles against deep ensembles at an equal fine-tuning budget (the StarSSE
thesis's Table 4.1 on a CPU-sized task): from one pre-trained checkpoint, SSE, StarSSE and
Local DE, and Global DE from several checkpoints, 5 members each, over several seeds.

    python benchmarks/snapshot.py [--seeds 3] [--work runs/bench_snapshot]

The checkpoints are 1-D CNNs pre-trained on a larger MNIST-1D source task (20,000 signals,
another generator seed), one per pre-training seed; they are cached in --work. Budget: SSE and
StarSSE train phase I (E epochs) and 4 cycles of E/2, 3E member-epochs in all; Local and Global
DE train 5 fine-tunes of 3E/5 epochs each, the same 3E. Prints one JSON line: per method the
mean and standard deviation over seeds of the average member's test accuracy, the members'
prediction diversity (Fort et al.), the ensemble's (soft vote of all 5) test accuracy and NLL,
and the wall time; the ratios of each method's ensemble accuracy, NLL and time to Local DE's
(the plain deep ensemble, the baseline) measured in the same run; and whether the thesis's
order holds here (StarSSE >= SSE in ensemble accuracy; Global DE the best). A table goes to
stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lrensemble.data import load_dataset
from lrensemble.ensemble import prediction_diversity, prediction_metrics
from lrensemble.methods.snapshot import SnapshotConfig, run_snapshot
from lrensemble.pool import Pool
from lrensemble.schedules import create
from lrensemble.train import TrainConfig, build_model, train_member

METHODS = ("sse", "starsse", "local_de", "global_de")
MEMBERS = 5
PHASE_EPOCHS = 10  # E: phase I; cycles E/2; deep-ensemble members 3E/5
SOURCE = {"name": "mnist1d", "samples": 20000, "generator_seed": 7}
MODEL = {"name": "cnn1d", "channels": 32}


def pretrain(work: Path, seed: int, epochs: int = 8) -> Path:
    """A source checkpoint (cached): the CNN trained on the larger source task."""
    out = work / f"checkpoint-{seed}"
    if not (out / "model.safetensors").exists():
        source = load_dataset(**SOURCE)
        params = {k: v for k, v in MODEL.items() if k != "name"}
        train_member(
            build_model(MODEL["name"], source, seed=seed, **params),
            source,
            create("onecycle", max_lr=0.2),
            TrainConfig(epochs=epochs, seed=seed, label_smoothing=0.1),
            out_dir=out,
            progress=False,
        )
    return out / "model.safetensors"


def run(method: str, seed: int, checkpoints: list[Path], work: Path) -> dict[str, float]:
    deep = method in ("local_de", "global_de")
    snapshot = {
        "method": method,
        "checkpoint": [str(c) for c in checkpoints]
        if method == "global_de"
        else str(checkpoints[0]),
        "lr": 0.02,
        "epochs": 3 * PHASE_EPOCHS // MEMBERS if deep else PHASE_EPOCHS,
        **({} if method == "global_de" else {"members": MEMBERS}),
    }
    config = SnapshotConfig(
        data={"name": "mnist1d"},
        model=MODEL,
        train=TrainConfig(epochs=PHASE_EPOCHS, seed=seed, weight_decay=5e-4),
        snapshot=snapshot,
    )
    out = work / f"{method}-seed{seed}"
    t0 = time.perf_counter()
    result = run_snapshot(config, out, log=lambda _: None, progress=False)
    seconds = time.perf_counter() - t0
    pool = Pool.open(out / "pool")
    probs, labels = pool.probs("test", result.members), pool.labels("test")
    members = [float((p.argmax(1) == labels).mean()) for p in probs]
    ensemble = prediction_metrics(probs.mean(axis=0), labels)
    epochs = sum(pool.member(m)["epochs_completed"] for m in result.members)
    return {
        "member_accuracy": float(np.mean(members)),
        "diversity": prediction_diversity(probs, labels),
        "ensemble_accuracy": ensemble["accuracy"],
        "ensemble_nll": ensemble["nll"],
        "seconds": seconds,
        "member_epochs": epochs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("runs/bench_snapshot"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    checkpoints = [pretrain(args.work, seed) for seed in range(MEMBERS)]
    pretrain_seconds = time.perf_counter() - t0
    rows: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    for seed in range(args.seeds):
        for method in METHODS:
            # one shared checkpoint for the methods that start from one; all five for Global DE
            rows[method].append(run(method, seed, checkpoints, args.work))
    summary = {}
    for method, runs in rows.items():
        summary[method] = {
            key: {
                "mean": float(np.mean([r[key] for r in runs])),
                "std": float(np.std([r[key] for r in runs])),
            }
            for key in runs[0]
        }
    base = summary["local_de"]
    ratios = {
        method: {
            key: s[key]["mean"] / base[key]["mean"]
            for key in ("ensemble_accuracy", "ensemble_nll", "seconds")
        }
        for method, s in summary.items()
    }
    acc = {m: summary[m]["ensemble_accuracy"]["mean"] for m in METHODS}
    result = {
        "benchmark": "snapshot",
        "seeds": args.seeds,
        "members": MEMBERS,
        "member_epochs_per_method": summary["sse"]["member_epochs"]["mean"],
        "pretrain_seconds": pretrain_seconds,
        "methods": summary,
        "ratio_vs_local_de": ratios,
        "thesis_order": {
            "starsse_ge_sse": acc["starsse"] >= acc["sse"],
            "global_de_best": acc["global_de"] == max(acc.values()),
        },
    }
    print(json.dumps(result))
    for method in METHODS:
        s = summary[method]
        print(
            f"{method:10s} member {100 * s['member_accuracy']['mean']:.2f}%  diversity "
            f"{s['diversity']['mean']:.1f}  ensemble {100 * s['ensemble_accuracy']['mean']:.2f}"
            f" ± {100 * s['ensemble_accuracy']['std']:.2f}%  NLL {s['ensemble_nll']['mean']:.4f}"
            f"  {s['seconds']['mean']:.1f} s",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
