"""HDET, hyperparameter-divergent ensemble training (seed 004): N data-parallel replicas fan out
over a spread of LRs (and other hyperparameters), converge by periodic weight averaging, and an
auto-LR controller steers the base LR toward the better replicas. `HDETScheduler` is a drop-in
`OneCycleLR` for each rank under torchrun; `SimulatedHDET` runs N replicas in one process;
`run_hdet` (`lrens hdet`) runs a whole job from a config and files its members into a pool."""

from lrensemble.methods.hdet.collective import ReplicaLostError
from lrensemble.methods.hdet.config import HdetConfig, HdetSpec, load_hdet_config
from lrensemble.methods.hdet.controller import controller_update, decay_rate, replica_weights
from lrensemble.methods.hdet.hyperparams import (
    DropoutRate,
    Hyperparameter,
    LabelSmoothing,
    WeightDecay,
)
from lrensemble.methods.hdet.launch import HdetJobError, torchrun_command
from lrensemble.methods.hdet.onecycle import onecycle_floor, onecycle_lr
from lrensemble.methods.hdet.run import HdetResult, run_hdet
from lrensemble.methods.hdet.scheduler import HDETScheduler
from lrensemble.methods.hdet.simulate import SimulatedHDET
from lrensemble.methods.hdet.spread import Assignment, multipliers
from lrensemble.methods.hdet.warm_init import warm_noisy_init

__all__ = [
    "Assignment",
    "DropoutRate",
    "HDETScheduler",
    "HdetConfig",
    "HdetJobError",
    "HdetResult",
    "HdetSpec",
    "Hyperparameter",
    "LabelSmoothing",
    "ReplicaLostError",
    "SimulatedHDET",
    "WeightDecay",
    "controller_update",
    "decay_rate",
    "load_hdet_config",
    "multipliers",
    "onecycle_floor",
    "onecycle_lr",
    "replica_weights",
    "run_hdet",
    "torchrun_command",
    "warm_noisy_init",
]
