"""Admission control: the memory a spec would take on a worker, estimated before it is stored.

Each per-field limit (width, depth, members, samples) is sane alone, but together they multiply:
4096 units × 32 layers × 64 members is some 137 GB of weights. worker/engine/footprint.py adds
up what a run holds at once without building anything (no torch); this module turns that into
a 422 on the field whose term dominates.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.spec_errors import SpecInvalid
from worker.engine import footprint
from worker.engine.datasets.catalog import DatasetInfo, dataset_info
from worker.engine.spec import Spec


@dataclass(frozen=True)
class Estimate:
    weights: int  # parameters, gradients and optimiser state of every member
    activations: int  # one minibatch through every member
    dataset: int

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.dataset

    @property
    def field(self) -> str:
        """The spec field whose term dominates: what to lower first."""
        terms = {"model.hidden": self.weights, "optim.batch_size": self.activations,
                 "data.n_samples": self.dataset}
        return max(terms, key=terms.__getitem__)


def estimate_bytes(spec: Spec, upload: DatasetInfo | None = None) -> Estimate:
    """``upload``: an uploaded dataset's row (its classes and image count, stored at
    ingestion), for ``folder:<id>``."""
    if upload is not None:
        bytes_ = footprint.estimate_bytes(spec, n_examples=max(upload.default_counts[0], 1),
                                          n_classes=max(len(upload.classes), 2))
    else:
        classes = len(dataset_info(spec.data.dataset).classes)
        bytes_ = footprint.estimate_bytes(spec, n_classes=None if classes else 2)
    return Estimate(weights=bytes_["model"], activations=bytes_["activations"],
                    dataset=bytes_["data"])


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def check_admission(spec: Spec, max_run_memory_mb: int,
                    upload: DatasetInfo | None = None) -> None:
    """422 (on the dominant field) when the estimate is over EPOQUE_MAX_RUN_MEMORY_MB."""
    estimate = estimate_bytes(spec, upload)
    limit = max_run_memory_mb * 2**20
    if estimate.total > limit:
        raise SpecInvalid.one(estimate.field, (
            f"this run would need about {_mb(estimate.total)} of memory (weights and optimiser "
            f"state {_mb(estimate.weights)}, one minibatch's activations "
            f"{_mb(estimate.activations)}, dataset {_mb(estimate.dataset)}); the limit "
            f"max_run_memory_mb of this lab is {_mb(limit)}"))
