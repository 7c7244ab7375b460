"""Admission control: the memory a spec would take on a worker, estimated before it is stored.

Each per-field limit (width, depth, members, samples) is sane alone, but together they multiply:
4096 units × 32 layers × 64 members is some 137 GB of weights. ``estimate_bytes`` adds up what a
run holds at once, without building anything (no torch):

    parameters × members × (weights + gradients + optimiser state)
    + one minibatch's activations (every hidden layer, kept for the backward pass)
    + the dataset (all splits, float32)

It is deliberately a rough upper-side figure, meant to refuse the absurd, not to budget exactly.
The integrator may swap ``estimate_bytes`` for worker/engine/footprint.py's; ``check_admission``
only needs a number of bytes and the term that dominates it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from backend.spec_errors import SpecInvalid
from worker.engine.datasets import dataset_info, split_sizes
from worker.engine.spec import Spec

FLOAT_BYTES = 4
# Each hidden layer's minibatch activations are kept two or three times for the backward pass
# (pre-activation, activation, batchnorm or dropout mask): three is the upper side.
ACTIVATION_COPIES = 3
# An uploaded image dataset's size is unknown before it is unpacked: counted as this many
# examples (the upload limit's default file count).
FOLDER_EXAMPLES_GUESS = 20_000


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


def _examples(spec: Spec) -> tuple[int, int]:
    """(all examples, training examples) the run loads."""
    info = dataset_info(spec.data.dataset)
    n, n_test = info.default_counts
    if spec.data.dataset.startswith("folder:"):
        n, n_test = FOLDER_EXAMPLES_GUESS, None
    if spec.data.n_samples is not None:
        n, n_test = spec.data.n_samples, None
    sizes = split_sizes(n, n_test, spec.data.val_fraction, spec.data.test_fraction)
    return sum(sizes.values()), max(sizes["train"], 1)


def _layers(spec: Spec, input_shape: tuple[int, ...], n_classes: int) -> tuple[int, int]:
    """(parameters, activation values per example) of one member."""
    hidden = list(spec.model.hidden)
    if spec.model.arch == "cnn" and len(input_shape) in (2, 3):
        c_in, spatial = input_shape[0], list(input_shape[1:])
        params = acts = 0
        for c_out in hidden:
            params += c_out * c_in * 3 ** len(spatial) + 3 * c_out  # kernel, bias, batchnorm
            acts += c_out * math.prod(spatial)
            if min(spatial) >= 2:
                spatial = [s // 2 for s in spatial]
            c_in = c_out
        features = c_in * math.prod(spatial)
        return params + features * n_classes + n_classes, acts + n_classes
    widths = [math.prod(input_shape), *hidden, n_classes]
    params = sum(a * b + 3 * b for a, b in itertools.pairwise(widths))  # weights, bias, batchnorm
    return params, sum(widths[1:])


def estimate_bytes(spec: Spec) -> Estimate:
    info = dataset_info(spec.data.dataset)
    n_classes = max(len(info.classes), 2)
    input_shape = tuple(info.input_shape)
    params, acts = _layers(spec, input_shape, n_classes)
    members = spec.ensemble.members
    states = 2  # the weights and their gradients
    if spec.optim.method == "adam":
        states += 2
    elif spec.optim.momentum > 0:
        states += 1
    n, n_train = _examples(spec)
    batch = n_train if spec.optim.batch_size == "full" else min(spec.optim.batch_size, n_train)
    return Estimate(
        weights=params * members * states * FLOAT_BYTES,
        activations=batch * members * acts * ACTIVATION_COPIES * FLOAT_BYTES,
        dataset=n * math.prod(input_shape) * FLOAT_BYTES,
    )


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def check_admission(spec: Spec, max_run_memory_mb: int) -> None:
    """422 (on the dominant field) when the estimate is over EPOQUE_MAX_RUN_MEMORY_MB."""
    estimate = estimate_bytes(spec)
    limit = max_run_memory_mb * 2**20
    if estimate.total > limit:
        raise SpecInvalid.one(estimate.field, (
            f"this run would need about {_mb(estimate.total)} of memory (weights and optimiser "
            f"state {_mb(estimate.weights)}, one minibatch's activations "
            f"{_mb(estimate.activations)}, dataset {_mb(estimate.dataset)}); the limit "
            f"max_run_memory_mb of this lab is {_mb(limit)}"))
