"""HDET, hyperparameter-divergent ensemble training (seed 004): N data-parallel replicas fan out
over a spread of LRs (and other hyperparameters), converge by periodic weight averaging, and an
auto-LR controller steers the base LR toward the better replicas. `HDETScheduler` is a drop-in
`OneCycleLR` for each rank under torchrun; `SimulatedHDET` runs N replicas in one process."""

from lrensemble.methods.hdet.collective import ReplicaLostError
from lrensemble.methods.hdet.controller import controller_update, decay_rate, replica_weights
from lrensemble.methods.hdet.hyperparams import (
    DropoutRate,
    Hyperparameter,
    LabelSmoothing,
    WeightDecay,
)
from lrensemble.methods.hdet.onecycle import onecycle_floor, onecycle_lr
from lrensemble.methods.hdet.scheduler import HDETScheduler
from lrensemble.methods.hdet.simulate import SimulatedHDET
from lrensemble.methods.hdet.spread import Assignment, multipliers
from lrensemble.methods.hdet.warm_init import warm_noisy_init

__all__ = [
    "Assignment",
    "DropoutRate",
    "HDETScheduler",
    "Hyperparameter",
    "LabelSmoothing",
    "ReplicaLostError",
    "SimulatedHDET",
    "WeightDecay",
    "controller_update",
    "decay_rate",
    "multipliers",
    "onecycle_floor",
    "onecycle_lr",
    "replica_weights",
    "warm_noisy_init",
]
