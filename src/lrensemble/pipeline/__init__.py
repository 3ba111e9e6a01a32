"""The main job (`lrens run`, `lrens demo`): members from the producers into a pool, then the
chosen ensemble and the report. The one package that knows both producers and the report."""

from lrensemble.pipeline.config import RunConfig, demo_config_path, load_run_config
from lrensemble.pipeline.corruptions import evaluate_corruptions, pool_dataset
from lrensemble.pipeline.job import report_pool, run_pipeline
from lrensemble.pipeline.members import rebuild_model
from lrensemble.pipeline.timing import inference_timer

__all__ = [
    "RunConfig",
    "demo_config_path",
    "evaluate_corruptions",
    "inference_timer",
    "load_run_config",
    "pool_dataset",
    "rebuild_model",
    "report_pool",
    "run_pipeline",
]
