"""Producers of pool members beyond the LR sweep, one subpackage per method: snapshot ensembles
from one pre-trained checkpoint (`snapshot`), Prune and Tune (`pat`), and HDET's scheduler for
hyperparameter-divergent data-parallel training (`hdet`). Each trains with `lrensemble.train`
and files its members with `lrensemble.filing`, so every member lands in the same kind of
pool."""
