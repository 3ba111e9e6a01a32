"""Producers of pool members beyond the LR sweep, one subpackage per method: snapshot ensembles
from one pre-trained checkpoint (`snapshot`). Each trains with `lrensemble.train` and files its
members with `lrensemble.filing`, so every member lands in the same kind of pool."""
