"""Time one training epoch of the 1-D CNN on MNIST-1D.

Ours: `lrensemble.train.train_member` (device-resident batches, LR set every iteration).
Baseline, in the same run: the textbook loop over `torch.utils.data.DataLoader(TensorDataset)`
with the same model, optimizer, batch size and a per-epoch scheduler. Each is timed over several
one-epoch runs (after a warm-up) and the median is reported. Prints one JSON line.

    python benchmarks/train_epoch.py [--repeats 7] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from lrensemble import schedules
from lrensemble.data import load_dataset
from lrensemble.device import resolve_device
from lrensemble.train import TrainConfig, build_model, train_member


def ours(ds, device: str) -> float:
    model = build_model("cnn1d", ds, seed=0)
    config = TrainConfig(epochs=1, batch_size=128, device=device)
    result = train_member(
        model, ds, schedules.create("onecycle", max_lr=0.1), config, progress=False
    )
    return result.history[0]["seconds"]


def baseline(ds, device: torch.device) -> float:
    model = build_model("cnn1d", ds, seed=0).to(device)
    x, y = ds.split("train")
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=128, shuffle=True
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    xv, yv = ds.split("val")
    t0 = time.perf_counter()
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    model.eval()
    with torch.no_grad():  # ours also evaluates on validation every epoch
        (model(xv.to(device)).argmax(1) == yv.to(device)).float().mean().item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    ds = load_dataset("mnist1d")
    ours(ds, str(device))  # warm-up
    baseline(ds, device)
    ours_times = [ours(ds, str(device)) for _ in range(args.repeats)]
    base_times = [baseline(ds, device) for _ in range(args.repeats)]
    o, b = statistics.median(ours_times), statistics.median(base_times)
    print(
        json.dumps(
            {
                "benchmark": "train_epoch",
                "model": "cnn1d",
                "dataset": "mnist1d",
                "train_samples": ds.sizes()["train"],
                "batch_size": 128,
                "device": str(device),
                "threads": torch.get_num_threads(),
                "epoch_seconds": round(o, 4),
                "baseline_dataloader_epoch_seconds": round(b, 4),
                "speedup_vs_baseline": round(b / o, 2),
                "samples_per_second": round(ds.sizes()["train"] / o, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
