"""Reports: the LREnsemble paper's tables and figures from any pool, and the end-to-end
pipeline (`lrens run`, `lrens demo`, `lrens report`)."""

from lrensemble.report.analysis import analyze_pool
from lrensemble.report.pipeline import (
    EnsembleConfig,
    RunConfig,
    build_report,
    demo_config_path,
    headline,
    load_run_config,
    run_pipeline,
)

__all__ = [
    "EnsembleConfig",
    "RunConfig",
    "analyze_pool",
    "build_report",
    "demo_config_path",
    "headline",
    "load_run_config",
    "run_pipeline",
]
