"""HDET's ablation and its communication cost, on CPU. Prints one JSON line.

    python benchmarks/hdet.py [--config configs/hdet_ablation.toml] [--work runs/bench_hdet]
                              [--low-lr 0.05] [--high-lr 1.0] [--epochs 8]

1. The ablation (simulated replicas, `lrens hdet --simulate`): baseline at a low and at a high
   peak LR, warm init only, HDET without the auto-LR controller, without warm init, and full
   HDET, all at the high LR but the first. Per variant: the final train loss, the averaged
   model's validation NLL and accuracy, and whether it diverged (a non-finite loss, or a final
   train loss no better than chance, ln 10).
2. The cost: training seconds of HDET (sync every `sync_every` steps: one extra all-reduce of
   the weights) against plain DDP (no spread, no controller, no sync but the last) at the same
   batch, both with 2 gloo processes under torchrun; `ratio` = HDET / DDP.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

from lrensemble.methods.hdet import load_hdet_config, run_hdet

VARIANTS = {  # name: (LR, spread, auto_lr, warm_init)
    "baseline_low": ("low", 0.0, False, False),
    "baseline_high": ("high", 0.0, False, False),
    "warm_init_only": ("high", 0.0, False, True),
    "hdet_no_auto_lr": ("high", 0.5, False, True),
    "hdet_no_warm_init": ("high", 0.5, True, False),
    "hdet_full": ("high", 0.5, True, True),
}


def variant(base, lr, spread, auto_lr, warm_init, epochs):
    hdet = base.hdet.model_copy(
        update={"max_lr": lr, "spread": spread, "auto_lr": auto_lr, "warm_init": warm_init}
    )
    train = base.train.model_copy(update={"epochs": epochs})
    return base.model_copy(update={"hdet": hdet, "train": train})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/hdet_ablation.toml")
    parser.add_argument("--work", default="runs/bench_hdet")
    parser.add_argument("--low-lr", type=float, default=0.05)
    parser.add_argument("--high-lr", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--timing-epochs", type=int, default=3)
    args = parser.parse_args()
    base = load_hdet_config(args.config)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    quiet = lambda _: None  # noqa: E731
    ablation = {}
    for name, (which, spread, auto_lr, warm) in VARIANTS.items():
        lr = args.low_lr if which == "low" else args.high_lr
        cfg = variant(base, lr, spread, auto_lr, warm, args.epochs)
        result = run_hdet(cfg, work / name, simulate=True, log=quiet)
        last = result.history[-1]["train_loss"] if result.history else float("nan")
        row = {"max_lr": lr, "train_loss": last, "diverged": True}
        if result.status == "complete":
            from lrensemble.pool import Pool

            record = Pool.open(result.pool_dir).member(result.members[0])
            val = record["metrics"]["val"]
            row.update(val_nll=val["nll"], val_accuracy=val["accuracy"])
            row["diverged"] = not (math.isfinite(last) and last < math.log(10) - 0.05)
        ablation[name] = row
        print(f"{name:18s} {json.dumps(row)}", file=sys.stderr)
    timing = {}
    for name, (spread, auto_lr, sync) in {
        "ddp": (0.0, False, 10**9),
        "hdet": (0.5, True, base.hdet.sync_every),
    }.items():
        cfg = variant(base, args.low_lr, spread, auto_lr, False, args.timing_epochs)
        cfg = cfg.model_copy(update={"hdet": cfg.hdet.model_copy(update={"sync_every": sync})})
        result = run_hdet(cfg, work / f"timing_{name}", nproc=2, log=quiet, timeout=600)
        done = json.loads((work / f"timing_{name}" / "train" / "result.json").read_text())
        timing[name] = done["seconds"]
    stable = [
        n for n in ("hdet_no_auto_lr", "hdet_no_warm_init", "hdet_full")
        if not ablation[n]["diverged"]
    ]  # fmt: skip
    print(
        json.dumps(
            {
                "benchmark": "hdet",
                "ablation": ablation,
                "baseline_high_diverges": ablation["baseline_high"]["diverged"],
                "hdet_variants_stable_at_high_lr": stable,
                "timing_seconds": timing,
                "hdet_over_ddp": timing["hdet"] / timing["ddp"],
                "processes": 2,
                "backend": "gloo",
            }
        )
    )


if __name__ == "__main__":
    main()
