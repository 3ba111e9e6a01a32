"""Reports: the LREnsemble paper's tables and figures from any pool. The report reads a pool
and writes files; it trains nothing (the main job is `lrensemble.pipeline`)."""

from lrensemble.ensemble import EnsembleConfig
from lrensemble.report.analysis import MIN_MEMBERS, analyze_pool
from lrensemble.report.build import build_report, headline

__all__ = ["MIN_MEMBERS", "EnsembleConfig", "analyze_pool", "build_report", "headline"]
