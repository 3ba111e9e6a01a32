"""The program of one HDET rank: `torchrun ... -m lrensemble.methods.hdet.worker CONFIG OUT`.

CONFIG is an HDET config (TOML, or the JSON `lrens hdet` writes); OUT the job's directory
(shared by the ranks). RANK, WORLD_SIZE and LOCAL_RANK come from torchrun's environment. The
process group (gloo on CPU, NCCL on CUDA) has the config's `timeout`, so a rank that dies or
hangs ends the others within it. An error a user can cause is printed as one line starting
with `lrens-hdet: ` and exits 2.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from lrensemble.errors import LREnsembleError
from lrensemble.methods.hdet.communicators import RankCommunicator
from lrensemble.methods.hdet.config import HdetConfig, load_hdet_config
from lrensemble.methods.hdet.scheduler import HDETScheduler
from lrensemble.methods.hdet.train import (
    build_replica,
    run_fingerprint,
    scheduler_options,
    train_replicas,
)

ERROR_TAG = "lrens-hdet: "
LOG_TAG = "[hdet] "


def read_config(path: Path) -> HdetConfig:
    if path.suffix == ".json":
        return HdetConfig.model_validate_json(path.read_text(encoding="utf-8"))
    return load_hdet_config(path)


def run_rank(config: HdetConfig, out: Path) -> None:
    """Train this rank's replica under the initialised process group."""
    from lrensemble.data.registry import load_dataset

    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and config.train.device != "cpu"
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    dataset = load_dataset(config.data["name"], **config.params("data"))

    def wrap(net: torch.nn.Module) -> torch.nn.Module:
        ids = [device.index] if cuda else None
        return DDP(net, device_ids=ids, forward_sync_buffers=False)  # own BN stats

    replica = build_replica(config, dataset, rank, world, device, wrap)
    total = config.train.epochs * len(replica.batches)
    replica.scheduler = HDETScheduler(
        replica.optimizer, config.hdet.max_lr, total, model=replica.model,
        **scheduler_options(config),
    )  # fmt: skip
    fingerprint = run_fingerprint(config, world, dataset.info.get("sha256"))

    def log(line: str) -> None:
        if rank == 0:
            print(f"{LOG_TAG}{line}", flush=True)

    comm = RankCommunicator(replica.scheduler, device)
    train_replicas(config, [replica], comm, out, fingerprint, log)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m lrensemble.methods.hdet.worker CONFIG OUT", file=sys.stderr)
        return 2
    out = Path(args[1])
    try:
        config = read_config(Path(args[0]))
    except LREnsembleError as exc:
        print(f"{ERROR_TAG}{exc}", file=sys.stderr, flush=True)
        return 2
    rank = int(os.environ.get("RANK", "0"))
    (out / "pids").mkdir(parents=True, exist_ok=True)
    (out / "pids" / f"rank{rank}.pid").write_text(str(os.getpid()), encoding="utf-8")
    cuda = torch.cuda.is_available() and config.train.device != "cpu"
    dist.init_process_group(
        "nccl" if cuda else "gloo", timeout=timedelta(seconds=config.hdet.timeout)
    )
    try:
        run_rank(config, out)
    except LREnsembleError as exc:
        print(f"{ERROR_TAG}rank {rank}: {exc}", file=sys.stderr, flush=True)
        os._exit(2)  # no teardown: another rank may be gone
    dist.barrier()  # no rank tears down while another still talks to it
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
