"""Producers of members beyond the LR sweep: `lrens snapshot` (snapshot ensembles from one
pre-trained checkpoint), `lrens pat` (Prune and Tune ensembles) and `lrens hdet`
(hyperparameter-divergent ensemble training)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lrensemble.cli.app import DeviceOption, ProgressOption, SeedOption, app, out

PoolOption = Annotated[
    Path | None,
    typer.Option(
        "--pool",
        help="File the members into this pool (e.g. a sweep's, made from the same data) "
        "instead of --out/pool.",
    ),
]
ReportOption = Annotated[
    bool, typer.Option("--report/--no-report", help="Write the report to --out/report.")
]


@app.command("snapshot")
def snapshot(
    config: Annotated[Path, typer.Argument(help="TOML config with a [snapshot] table.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory.")],
    pool: PoolOption = None,
    report: ReportOption = True,
    seed: SeedOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = None,
) -> None:
    """Snapshot ensembles from one pre-trained checkpoint (SSE, StarSSE, Local and Global DE).

    Variants (mse, wo, ce1, ce2) and layer freezing apply to the cycles of SSE and StarSSE. A
    killed run resumes from its last finished member or epoch when run again.
    """
    from lrensemble.methods.snapshot import load_snapshot_config, run_snapshot

    cfg = load_snapshot_config(config, seed=seed, device=device)
    spec = cfg.snapshot
    variant = "" if spec.variant == "none" else f" ({spec.variant})"
    out.print(f"snapshot: {spec.method}{variant}, {spec.member_count()} members → {out_dir}")
    result = run_snapshot(cfg, out_dir, pool_dir=pool, log=out.print, progress=progress)
    _finish(result, out_dir, report)


@app.command("pat")
def pat(
    config: Annotated[Path, typer.Argument(help="TOML config with a [pat] table.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory.")],
    pool: PoolOption = None,
    report: ReportOption = True,
    seed: SeedOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = None,
) -> None:
    """Prune and Tune ensembles: children pruned from one parent and tuned briefly.

    Random or anti-random masks; with `baselines = true`, the paper's Table 1 comparisons at
    the same budget. A killed run resumes when run again.
    """
    from lrensemble.methods.pat import load_pat_config, run_pat

    cfg = load_pat_config(config, seed=seed, device=device)
    spec = cfg.pat
    out.print(
        f"pat: {spec.members} {spec.strategy} children ({spec.prune}, sparsity "
        f"{spec.sparsity:g}) of a {spec.parent_epochs}-epoch parent → {out_dir}"
    )
    result = run_pat(cfg, out_dir, pool_dir=pool, log=out.print, progress=progress)
    _finish(result, out_dir, report)


@app.command("hdet")
def hdet(
    config: Annotated[Path, typer.Argument(help="TOML config with an [hdet] table.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory.")],
    nproc: Annotated[
        int | None,
        typer.Option("--nproc", help="Replicas (torchrun processes); default: [hdet] replicas."),
    ] = None,
    simulate: Annotated[
        bool,
        typer.Option("--simulate", help="Simulate the replicas in this process (no torchrun)."),
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Stop the job after this many seconds.")
    ] = None,
    pool: PoolOption = None,
    report: ReportOption = True,
    seed: SeedOption = None,
    device: DeviceOption = None,
) -> None:
    """HDET: data-parallel replicas with divergent LRs, averaged every few steps (torchrun).

    The replicas run under torchrun on this machine, or in this process with --simulate; the
    auto-LR controller steers their base LR. The averaged model (and, with replica_members,
    each replica) is filed into the pool. A killed run resumes from its last epoch.
    """
    from lrensemble.methods.hdet import load_hdet_config, run_hdet

    cfg = load_hdet_config(config, seed=seed, device=device)
    replicas = cfg.hdet.replicas if nproc is None else nproc
    how = "simulated" if simulate else "torchrun"
    out.print(f"hdet: {replicas} replicas ({how}), max LR {cfg.hdet.max_lr:g} → {out_dir}")
    result = run_hdet(cfg, out_dir, nproc, pool, simulate=simulate, timeout=timeout, log=out.print)
    out.print(
        f"{len(result.members)} members in {result.pool_dir} ({len(result.filed)} filed now, "
        f"{result.seconds:.1f} s)"
    )
    if report and result.members:
        _report(result.pool_dir, out_dir)


def _finish(result: Any, out_dir: Path, report: bool) -> None:
    """A method run's last lines: its members, then (unless --no-report) the report."""
    out.print(
        f"{len(result.members)} members in {result.pool_dir} ({len(result.trained)} trained "
        f"now, {result.seconds:.1f} s)"
    )
    if report:
        _report(result.pool_dir, out_dir)


def _report(pool_dir: Path, out_dir: Path) -> None:
    """The report of the pool into --out/report, when the pool has enough members."""
    from lrensemble.pipeline import report_pool
    from lrensemble.pool import Pool
    from lrensemble.report import MIN_MEMBERS, headline

    complete = len(Pool.open(pool_dir).member_ids())
    if complete < MIN_MEMBERS:
        out.print(f"no report: it needs {MIN_MEMBERS} members, the pool has {complete}")
        return
    results = report_pool(pool_dir, out_dir / "report")
    out.print(headline(results, out_dir / "report"))
