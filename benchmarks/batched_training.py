"""Batched vs one-by-one training: 16 members of the MNIST-1D 1-D CNN (the paper's 16-policy
grid), one epoch each, timed in the same run (interleaved repeats after a warm-up; the best time of
each, and the median ratio of the pairs).

Batched: `lrensemble.train.batched.train_members` (stacked parameters, one vmapped forward and
backward, per-member LR tensors). One by one: `lrensemble.train.train_member` per member.
Prints one JSON line, with the arithmetic rate each reaches (a member's floating-point operations
counted by torch's FlopCounterMode) against the rate of a large matrix product on the same
device: how far from the device's limit one-by-one training already is bounds what batching can
gain.

    python benchmarks/batched_training.py [--members 16] [--epochs 1] [--repeats 5] [--device auto]
        [--model cnn1d] [--optimizer sgd]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from lrensemble import schedules
from lrensemble.data import load_dataset
from lrensemble.device import resolve_device
from lrensemble.train import TrainConfig, build_model, train_member
from lrensemble.train.batched import train_members


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """The best rate of an n×n float32 matrix product here: the device's practical peak."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    best = min(timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", default="cnn1d", help="a registered model for MNIST-1D")
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adamw", "sam", "asam"])
    args = parser.parse_args()
    device = resolve_device(args.device)
    ds = load_dataset("mnist1d")
    grid = schedules.grid("table1")
    policies = [grid[i % len(grid)] for i in range(args.members)]
    config = TrainConfig(epochs=args.epochs, device=str(device), optimizer=args.optimizer)

    def batched() -> None:
        models = [build_model(args.model, ds, seed=0) for _ in policies]
        train_members(models, ds, policies, config, chunk_size=args.members, progress=False)

    def one_by_one() -> None:
        for p in policies:
            train_member(build_model(args.model, ds, seed=0), ds, p, config, progress=False)

    with FlopCounterMode(display=False) as counter:
        train_member(build_model(args.model, ds, seed=0), ds, policies[0], config, progress=False)
    flops = counter.get_total_flops() * args.members
    timed(batched, device)  # warm-up: allocator, kernels
    timed(one_by_one, device)
    # interleaved, so that a noisy neighbour slows both; the best of the repeats is the least
    # disturbed measurement of each (as timeit advises)
    times = [(timed(batched, device), timed(one_by_one, device)) for _ in range(args.repeats)]
    b = min(t for t, _ in times)
    o = min(t for _, t in times)
    ratios = [one / bat for bat, one in times]
    print(
        json.dumps(
            {
                "benchmark": "batched_training",
                "model": args.model,
                "optimizer": args.optimizer,
                "dataset": "mnist1d",
                "members": args.members,
                "epochs": args.epochs,
                "device": str(device),
                "threads": torch.get_num_threads(),
                "batched_seconds": round(b, 3),
                "one_by_one_seconds": round(o, 3),
                "speedup": round(o / b, 2),
                "speedup_median_of_pairs": round(statistics.median(ratios), 2),
                "gflops_batched": round(flops / b / 1e9, 1),
                "gflops_one_by_one": round(flops / o / 1e9, 1),
                "matmul_gflops": round(matmul_gflops(device), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
