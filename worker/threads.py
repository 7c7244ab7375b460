"""How many torch threads a run gets, from the cores this process may use and the model size.

Small steps lose to thread hand-offs: on this 2-core machine the digits MLP (0.8 M
multiply-adds per step) trains 1.4× faster on one thread than on two, while the shapes CNN
(13 M per step) and a 1024-wide MLP at m = 256 (280 M) are 1.1× and 1.7× faster on two.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from worker.engine.datasets import dataset_info
from worker.engine.models import build_model
from worker.engine.spec import Spec

# Multiply-adds per training step above which more threads pay (measured, see above).
SMALL_STEP_MACS = 4_000_000
MAX_THREADS = 8
# A full-batch step's size is unknown before loading the data; it is large anyway.
FULL_BATCH_GUESS = 1_000


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def macs_per_example(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass, counted on the layers that dominate (linear, conv)."""
    total = 0

    def count(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        weight = getattr(module, "weight", None)
        if weight is None or weight.dim() < 2:
            return
        per_output = weight[0].numel() if weight.dim() > 2 or isinstance(module, nn.Linear) \
            else weight.shape[-1]
        total += per_output * output.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if not list(m.children()) and getattr(m, "weight", None) is not None]
    try:
        with torch.no_grad():
            model.eval()
            model(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def choose_threads(spec: Spec, cores: int | None = None) -> int:
    """1 for small steps; otherwise every usable core (at most MAX_THREADS)."""
    cores = cores or usable_cores()
    info = dataset_info(spec.data.dataset)
    single = spec.model_copy(update={"ensemble": spec.ensemble.model_copy(update={"members": 1})})
    with torch.random.fork_rng(devices=[]):
        model = build_model(single, info.input_shape, len(info.classes))
    batch = FULL_BATCH_GUESS if spec.optim.batch_size == "full" else spec.optim.batch_size
    step = macs_per_example(model, tuple(info.input_shape)) * batch * spec.ensemble.members
    return 1 if step < SMALL_STEP_MACS else max(1, min(cores, MAX_THREADS))
