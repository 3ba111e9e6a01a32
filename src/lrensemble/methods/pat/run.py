"""Prune and Tune ensembles (seed 003): one parent trained once, children pruned from it with
fixed masks and tuned briefly; with `baselines`, the paper's Table 1 comparisons at the same
member-epoch budget (an independent model, a dropout model, a bagged ensemble, PAT random and
PAT anti-random).

The parent trains with the trainer into `DIR/parent` (resumable); children train together
with `train_members` and a `WeightMask` hook each (masks stacked, masked weights exactly zero),
or one by one when bagging gives each its own training subset; every member is filed with
`file_members` and its masks. A killed run, run again, goes on from where it was.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from lrensemble.atomic import write_with
from lrensemble.data.base import Dataset, bag
from lrensemble.data.registry import load_dataset
from lrensemble.device import resolve_device
from lrensemble.errors import ConfigError, DataError, ParameterError
from lrensemble.filing import NewMember, file_members
from lrensemble.methods.pat.config import PatConfig
from lrensemble.methods.pat.masks import child_masks, mask_stats
from lrensemble.methods.run_dir import MethodResult, MethodRun, open_run, run_fingerprint
from lrensemble.models.fit_check import check_model_fits
from lrensemble.pool import Pool
from lrensemble.schedules import Policy, create, from_spec
from lrensemble.train import TrainConfig, WeightMask, train_member, train_members
from lrensemble.train.pretrained import load_pretrained
from lrensemble.train.trainer import WEIGHTS

MARKER = "pat.json"
MASKS = "masks.safetensors"
BAG_FRACTION = 0.9
DROPOUT = 0.3  # the dropout baseline's rate (on the features before the head)


PatResult = MethodResult  # what a run made


def fingerprint(config: PatConfig, data_checksum: str | None) -> str:
    """The run's identity: its config and data, and the parent checkpoint's contents."""
    parent = config.pat.parent_checkpoint
    return run_fingerprint(config, data_checksum, [parent] if parent else [])


def tuning_policy(config: PatConfig) -> Policy:
    """The children's schedule: the paper's one-cycle (10% warm-up from lr/100 to lr, cosine
    down to 1e-7, every iteration) or a constant lr."""
    spec = config.pat
    if spec.tune == "constant":
        return create("constant", max_lr=spec.lr)
    return create("onecycle", max_lr=spec.lr, min_lr=1e-7, pct_start=0.1, div_factor=100.0)


def parent_policy(config: PatConfig) -> Policy:
    """The parent's schedule: as given, else the paper's (constant, then down to 1% between
    50% and 90% of training)."""
    spec = config.pat
    if spec.parent_policy:
        return from_spec(spec.parent_policy)
    return create("pat_parent", max_lr=spec.lr)


class PatRun(MethodRun[PatConfig]):
    """One Prune-and-Tune run into `out_dir` (its pool: `pool_dir`, default `out_dir/pool`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = self.config.pat

    # --- set-up ----------------------------------------------------------------------------------

    def _model_spec(self, **extra: Any) -> dict[str, Any]:
        return {**self.config.model, **extra}

    def _prepare(self) -> tuple[Dataset, Pool, str]:
        cfg = self.config
        dataset = load_dataset(cfg.data["name"], **cfg.params("data"))
        probe = self._model(dataset, cfg.train.seed)
        check_model_fits(
            probe, dataset.input_shape, dataset.num_classes, f"Model {cfg.model['name']!r}"
        )
        spec = self.spec
        for strategy in {spec.strategy, *(("random", "antirandom") if spec.baselines else ())}:
            child_masks(probe, spec.members, strategy, spec.prune, spec.sparsity, spec.scope)
        if self.spec.parent_checkpoint:
            self._load_parent(probe)
        if self.spec.baselines:
            self._dropout_model(dataset)  # a model without dropout: one sentence, now
        fp = fingerprint(cfg, dataset.info.get("sha256"))
        pool = open_run(self.out, MARKER, fp, cfg, self.pool_dir, dataset, "a Prune-and-Tune run")
        return dataset, pool, fp[:6]

    def _dropout_model(self, dataset: Dataset) -> nn.Module:
        try:
            return self._model(dataset, self.config.train.seed, dropout=DROPOUT)
        except (ParameterError, TypeError):
            raise ConfigError(
                f"baselines: the dropout baseline needs a model with a dropout parameter; "
                f"{self.config.model['name']!r} has none (cnn1d, mlp and the LeNets do)."
            ) from None

    def _train_config(self, epochs: int, seed: int | None = None) -> TrainConfig:
        update: dict[str, Any] = {"epochs": epochs}
        if seed is not None:
            update["seed"] = seed
        return self.config.train.model_copy(update=update)

    # --- the parent ------------------------------------------------------------------------------

    def _parent(self, dataset: Dataset, pool: Pool, tag: str, result: PatResult) -> nn.Module:
        """The trained parent: loaded from `parent_checkpoint`, or trained into DIR/parent
        (resumed there, reused when finished)."""
        model = self._model(dataset, self.config.train.seed)
        if self.spec.parent_checkpoint:
            self._load_parent(model)
            model.to(resolve_device(self.config.train.device))
            record = {"checkpoint": self.spec.parent_checkpoint, "model": self._model_spec()}
            if self.spec.include_parent:
                self._file(pool, dataset, [(f"pat-parent-{tag}", model, record, None)],
                           "pat-parent", self.spec.parent_checkpoint, result)  # fmt: skip
                result.members.append(f"pat-parent-{tag}")
            return model
        trained = train_member(
            model,
            dataset,
            parent_policy(self.config),
            self._train_config(self.spec.parent_epochs),
            out_dir=self.out / "parent",
            model_spec=self._model_spec(),
            progress=self.progress,
            description="parent",
        )
        if trained.status == "diverged":
            raise DataError(
                f"The parent diverged (epoch {trained.diverged_at['epoch'] + 1}); lower "  # type: ignore[index]
                "[pat] lr or give a parent_policy."
            )
        self.log(f"parent: val acc {trained.metrics['val']['accuracy']:.4f}")
        if self.spec.include_parent:
            self._file(pool, dataset, [(f"pat-parent-{tag}", model, trained.record, None)],
                       "pat-parent", None, result)  # fmt: skip
            result.members.append(f"pat-parent-{tag}")
        return model

    def _load_parent(self, model: nn.Module) -> None:
        """The parent from `parent_checkpoint`: every weight, head included (a checkpoint of
        another class count is not this task's parent)."""
        info = load_pretrained(model, self.spec.parent_checkpoint)  # type: ignore[arg-type]
        if info["head_replaced"]:
            raise ConfigError(
                f"parent_checkpoint {self.spec.parent_checkpoint}: its output layer has another "
                "class count; a parent must be a model of this task."
            )

    # --- members ---------------------------------------------------------------------------------

    def _file(
        self,
        pool: Pool,
        dataset: Dataset,
        done: list[tuple[str, nn.Module, dict[str, Any], Path | None]],
        method: str,
        parent: str | None,
        result: PatResult,
        masks: dict[str, dict[str, torch.Tensor]] | None = None,
    ) -> None:
        """File finished members: (id, model, record, weights file or None) each."""
        with tempfile.TemporaryDirectory(prefix="lrens-masks-") as tmp:
            members = []
            for member_id, model, record, weights in done:
                files = None
                if masks and member_id in masks:
                    path = Path(tmp) / f"{member_id}.safetensors"
                    tensors = {k: v.to(torch.uint8) for k, v in masks[member_id].items()}
                    write_with(path, lambda t, tensors=tensors: save_file(tensors, str(t)))
                    files = {MASKS: path}
                member = NewMember(member_id, model, record, method, parent, weights, files)
                members.append(member)
            filed = file_members(
                pool,
                members,
                dataset,
                eval_batch_size=self.config.train.eval_batch_size,
                device=resolve_device(self.config.train.device),
            )
        result.trained += filed

    def _train_group(
        self,
        ids: list[str],
        models: list[nn.Module],
        datasets: list[Dataset],
        policy: Policy,
        epochs: int,
        seeds: list[int],
        hooks: list[list[Any]],
        model_spec: dict[str, Any],
    ) -> list[tuple[str, nn.Module, Any]]:
        """Train members that share a dataset together (masks stacked), others one by one."""
        run_dirs = [self.out / "runs" / i for i in ids]
        if all(d is datasets[0] for d in datasets):
            results = train_members(
                models,
                datasets[0],
                [policy] * len(models),
                self._train_config(epochs),
                out_dirs=run_dirs,
                seeds=seeds,
                hooks=hooks,
                model_spec=model_spec,
                progress=self.progress,
                description=f"{len(models)} members",
            )
        else:
            results = [
                train_member(
                    model,
                    data,
                    policy,
                    self._train_config(epochs, seed),
                    out_dir=run_dir,
                    hooks=member_hooks,
                    model_spec=model_spec,
                    progress=self.progress,
                    description=member_id,
                )
                for member_id, model, data, seed, member_hooks, run_dir in zip(
                    ids, models, datasets, seeds, hooks, run_dirs, strict=True
                )
            ]
        return list(zip(ids, models, results, strict=True))

    def _children(
        self,
        strategy: str,
        parent: nn.Module,
        dataset: Dataset,
        pool: Pool,
        tag: str,
        result: PatResult,
    ) -> None:
        spec, seed = self.spec, self.config.train.seed
        ids = [f"pat-{strategy}-{i}-{tag}" for i in range(1, spec.members + 1)]
        masks = child_masks(
            parent, spec.members, strategy, spec.prune, spec.sparsity, spec.scope, seed
        )
        stats = [mask_stats(parent, m, dataset.input_shape) for m in masks]
        todo = [i for i, member_id in enumerate(ids) if not pool.member_dir(member_id).exists()]
        result.members += [m for m in ids if pool.member_dir(m).exists()]
        if not todo:
            return
        state = copy.deepcopy(parent.state_dict())
        models = []
        for _ in todo:
            child = self._model(dataset, seed)
            child.load_state_dict(state)
            models.append(child)
        datasets = [
            bag(dataset, seed * 1000 + i + 1, BAG_FRACTION) if spec.bagging else dataset
            for i in todo
        ]
        trained = self._train_group(
            [ids[i] for i in todo],
            models,
            datasets,
            tuning_policy(self.config),
            spec.child_epochs,
            [seed + i + 1 for i in todo],
            [[WeightMask(masks[i])] for i in todo],
            self._model_spec(),
        )
        done = []
        for (member_id, model, res), i in zip(trained, todo, strict=True):
            if res.status != "complete":
                result.diverged.append(member_id)
                continue
            record = {
                **res.record,
                "pat": {
                    "strategy": strategy,
                    "prune": spec.prune,
                    "scope": spec.scope,
                    "child": i + 1,
                    "tune": spec.tune,
                    "bagging": spec.bagging,
                    **stats[i],
                },
            }
            done.append((member_id, model, record, self.out / "runs" / member_id / WEIGHTS))
        parent_id = spec.parent_checkpoint or f"pat-parent-{tag}"
        self._file(pool, dataset, done, f"pat-{strategy}", parent_id, result,
                   masks={ids[i]: masks[i] for i in todo})  # fmt: skip
        result.members += [d[0] for d in done]
        for member_id, *_ in done:
            shutil.rmtree(self.out / "runs" / member_id, ignore_errors=True)

    def _baselines(self, dataset: Dataset, pool: Pool, tag: str, result: PatResult) -> None:
        """The paper's Table 1 comparisons at the parent-plus-children budget: an independent
        model and a dropout model trained for the whole budget, and a bagged ensemble of
        budget/2 members × 2 epochs, each on its own 90% of the training set."""
        budget, seed = self.spec.budget(), self.config.train.seed
        policy = parent_policy(self.config)
        plans = [
            (
                "independent",
                f"independent-{tag}",
                self._model(dataset, seed),
                {},
                dataset,
                budget,
                seed,
            ),
            (
                "dropout",
                f"dropout-{tag}",
                self._dropout_model(dataset),
                {"dropout": DROPOUT},
                dataset,
                budget,
                seed,
            ),
        ]
        bags = max(1, budget // 2)
        for k in range(bags):
            plans.append(
                (
                    "bagging",
                    f"bagging-{k + 1}-{tag}",
                    self._model(dataset, seed + k + 1),
                    {},
                    bag(dataset, seed * 1000 + 500 + k, BAG_FRACTION),
                    min(2, budget),
                    seed + k + 1,  # its own data order, dropout and augmentation
                )
            )
        for method, member_id, model, extra, data, epochs, member_seed in plans:
            result.members.append(member_id)
            if pool.member_dir(member_id).exists():
                continue
            run_dir = self.out / "runs" / member_id
            trained = train_member(
                model,
                data,
                policy,
                self._train_config(epochs, member_seed),
                out_dir=run_dir,
                model_spec=self._model_spec(**extra),
                progress=self.progress,
                description=member_id,
            )
            if trained.status != "complete":
                result.diverged.append(member_id)
                result.members.remove(member_id)
                continue
            self._file(pool, dataset, [(member_id, model, trained.record, run_dir / WEIGHTS)],
                       method, None, result)  # fmt: skip
            shutil.rmtree(run_dir, ignore_errors=True)

    def run(self) -> PatResult:
        start = time.perf_counter()
        dataset, pool, tag = self._prepare()
        result = PatResult(self.out, self.pool_dir)
        parent = self._parent(dataset, pool, tag, result)
        strategies = [self.spec.strategy]
        if self.spec.baselines:
            strategies += [s for s in ("random", "antirandom") if s not in strategies]
        for strategy in strategies:
            self._children(strategy, parent, dataset, pool, tag, result)
        if self.spec.baselines:
            self._baselines(dataset, pool, tag, result)
        for member_id in result.trained:
            self.log(f"{member_id}: filed")
        result.seconds = time.perf_counter() - start
        return result


def run_pat(
    config: PatConfig,
    out_dir: str | os.PathLike[str],
    *,
    pool_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
) -> PatResult:
    """Run (or resume) the Prune-and-Tune run of `config` into `out_dir`."""
    return PatRun(config, out_dir, pool_dir, log=log, progress=progress).run()
