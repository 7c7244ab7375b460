"""Époque's training engine: a pure library (torch, numpy, scikit-learn, stdlib).

It takes a validated ``Spec`` and reports through ``Callbacks``; it knows nothing of the
API, the database or Celery.

The spec (and the dataset catalog it reads) imports no torch, so the API process can validate
specs without loading it; the names below are imported from their module on first use (PEP
562), so ``from worker.engine import Spec`` stays torch-free and ``from worker.engine import
train`` loads the training code.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .lazy import lazy_names
from .spec import Spec, parse_spec

_MODULE_OF = {
    "Splits": ".datasets",
    "describe_datasets": ".datasets",
    "load_dataset": ".datasets",
    "Callbacks": ".train",
    "TrainOutcome": ".train",
    "train": ".train",
}

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


__getattr__ = lazy_names(globals(), _MODULE_OF)


class _Engine(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # Importing the submodule ``worker.engine.train`` binds it on this package under the
        # name ``train``, which here is the function of that name (as an eager
        # ``from .train import train`` left it): keep the function.
        if isinstance(value, types.ModuleType) and _MODULE_OF.get(name) == f".{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Engine
