"""The main job: tune (or reuse the sweep), then analyze the pool and write the report
directory. It composes the producers (today the LR sweep) with the report, so that neither
knows the other."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lrensemble.ensemble import EnsembleConfig
from lrensemble.errors import ParameterError
from lrensemble.pipeline.config import RunConfig
from lrensemble.pipeline.corruptions import evaluate_corruptions
from lrensemble.pipeline.timing import inference_timer
from lrensemble.pool import Pool
from lrensemble.report import MIN_MEMBERS
from lrensemble.report.build import build_report, headline
from lrensemble.tuning.outcomes import trials_without_member
from lrensemble.tuning.runner import run_sweep


def report_pool(
    pool_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    ensemble: EnsembleConfig | None = None,
    timing: bool = True,
    *,
    corruptions: bool = False,
    data: Mapping[str, Any] | None = None,
    device: Any = "auto",
    log: Callable[[str], None] | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """`build_report` with what only the producers know: the teams' inference time measured
    (`timing`; members' models rebuilt from their records and weights) and the sweep's trials
    that filed no member (from the study beside the pool). With `corruptions`, every member
    with weights is first predicted on every corrupted test set of the pool's data (`data`:
    its `[data]` table, default found from the pool; `evaluate_corruptions`), so that the
    report has its "Corrupted test sets" section; predictions already cached are reused."""
    if corruptions:
        members = len(Pool.open(pool_dir).member_ids())
        if members < MIN_MEMBERS:  # refused before any prediction is computed
            raise ParameterError(
                f"A report needs at least {MIN_MEMBERS} complete members; the pool has {members}."
            )
        evaluate_corruptions(pool_dir, data, device=device, log=log, progress=progress)
    inference = inference_timer(Pool.open(pool_dir)) if timing else None
    return build_report(
        pool_dir,
        out_dir,
        ensemble,
        inference=inference,
        unfinished=functools.partial(trials_without_member, pool_dir),
    )


def run_pipeline(
    config: RunConfig,
    out_dir: str | os.PathLike[str],
    *,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
    timing: bool = True,
) -> dict[str, Any]:
    """Tune into `out_dir` (resuming or reusing a sweep there), then report into
    `out_dir/report`."""
    out = Path(out_dir)
    sweep = run_sweep(config.sweep, out, log=log, progress=progress)
    if sweep.elsewhere_line():
        log(f"{sweep.elsewhere_line()}; this report covers {out / 'pool'} only")
    results = report_pool(out / "pool", out / "report", config.ensemble, timing=timing)
    log(headline(results, out / "report"))
    return results


__all__ = ["report_pool", "run_pipeline"]
