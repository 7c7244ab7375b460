"""Époque's training engine: a pure library (torch, numpy, scikit-learn, stdlib).

It takes a validated ``Spec`` and reports through ``Callbacks``; it knows nothing of the
API, the database or Celery.
"""

from .datasets import Splits, describe_datasets, load_dataset
from .spec import Spec, parse_spec
from .train import Callbacks, TrainOutcome, train

__all__ = [
    "Callbacks",
    "Spec",
    "Splits",
    "TrainOutcome",
    "describe_datasets",
    "load_dataset",
    "parse_spec",
    "train",
]
