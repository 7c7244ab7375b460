"""How much memory a spec's training needs, estimated from the spec alone (no torch).

For admission control: whether a run fits a device before anything is built. Counted in bytes
of float32 (4 bytes per value):

- ``model``: parameters × members × (weights + gradients + optimiser state): the engine's SGD
  keeps one velocity buffer per parameter (even at momentum 0), Adam two moments;
- ``activations``: one training minibatch through every member: batch × (input + each hidden
  layer's output, feature maps before pooling + logits) × members;
- ``data``: the whole dataset on the device (inputs as float32, labels as int64), once.

An estimate of what the tensors hold, not of what the allocator reserves around them: autograd
keeps a little more (pre-activation values with batchnorm, pooling indices), and bfloat16
autocast keeps less. The parameter count itself is exact: it follows models.py layer by layer
(tests/engine/test_footprint.py checks it against torch's).
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import TYPE_CHECKING

from .datasets.catalog import dataset_info
from .datasets.splits import split_sizes

if TYPE_CHECKING:
    from .spec import Spec

FLOAT_BYTES = 4
LABEL_BYTES = 8
KERNEL = 3  # models.CNN: 3×3 (or 3) convolutions, 'same' padding, then 2×2 max-pool
OPTIMIZER_BUFFERS = {"sgd": 1, "adam": 2}


def _mlp(input_shape: tuple[int, ...], hidden: list[int], n_classes: int,
         batchnorm: bool) -> tuple[int, int]:
    """(parameters, activation values per example) of models.MLP."""
    widths = [math.prod(input_shape), *hidden]
    params = 0
    for d_in, d_out in pairwise(widths):
        # A layer followed by batchnorm has no bias; batchnorm has γ and β.
        params += d_in * d_out + (2 * d_out if batchnorm else d_out)
    params += widths[-1] * n_classes + n_classes
    return params, sum(widths) + n_classes


def _cnn(input_shape: tuple[int, ...], channels: list[int], n_classes: int,
         batchnorm: bool) -> tuple[int, int]:
    """(parameters, activation values per example) of models.CNN."""
    c_in, spatial = input_shape[0], list(input_shape[1:])
    params, values = 0, math.prod(input_shape)
    for c_out in channels:
        params += c_in * c_out * KERNEL ** len(spatial) + (2 * c_out if batchnorm else c_out)
        values += c_out * math.prod(spatial)
        if min(spatial) >= 2:
            spatial = [s // 2 for s in spatial]
        c_in = c_out
    features = c_in * math.prod(spatial)
    params += features * n_classes + n_classes
    return params, values + n_classes


def parameter_count(spec: Spec, n_classes: int | None = None) -> int:
    """Parameters of one member of ``spec.model`` on ``spec.data.dataset`` (``n_classes`` for
    an uploaded folder, whose classes the catalog cannot know)."""
    return _network(spec, n_classes)[0]


def _network(spec: Spec, n_classes: int | None) -> tuple[int, int]:
    info = dataset_info(spec.data.dataset)
    classes = n_classes if n_classes is not None else len(info.classes)
    if not classes:
        raise ValueError(f"the classes of {spec.data.dataset!r} are not known: pass n_classes")
    build = _mlp if spec.model.arch == "mlp" else _cnn
    return build(info.input_shape, list(spec.model.hidden), classes, spec.model.batchnorm)


def _examples(spec: Spec, n_examples: int | None) -> tuple[int, int]:
    """(all examples, training examples) of the spec's dataset."""
    info = dataset_info(spec.data.dataset)
    n, n_test = info.default_counts
    if n_examples is not None:
        n, n_test = n_examples, None
    elif info.synthetic and spec.data.n_samples is not None:
        n = spec.data.n_samples
    if not n:
        raise ValueError(f"the size of {spec.data.dataset!r} is not known: pass n_examples")
    sizes = split_sizes(n, n_test, spec.data.val_fraction, spec.data.test_fraction)
    return sum(sizes.values()), sizes["train"]


def estimate_bytes(spec: Spec, *, n_examples: int | None = None,
                   n_classes: int | None = None) -> dict[str, int]:
    """``{"parameters", "members", "model", "activations", "data", "total"}``: the parameter
    count of one member, the member count, and bytes (see the module's docstring).
    ``n_examples`` and ``n_classes`` are for uploaded folders, whose size the catalog cannot
    know (otherwise the catalog's counts, or ``data.n_samples``, are used)."""
    params, values_per_example = _network(spec, n_classes)
    members = spec.ensemble.members
    n_all, n_train = _examples(spec, n_examples)
    batch = n_train if spec.optim.batch_size == "full" else min(spec.optim.batch_size, n_train)
    model = params * members * FLOAT_BYTES * (2 + OPTIMIZER_BUFFERS[spec.optim.method])
    activations = batch * values_per_example * members * FLOAT_BYTES
    input_size = math.prod(dataset_info(spec.data.dataset).input_shape)
    data = n_all * (input_size * FLOAT_BYTES + LABEL_BYTES)
    return {
        "parameters": params,
        "members": members,
        "model": model,
        "activations": activations,
        "data": data,
        "total": model + activations + data,
    }
