"""How many torch threads a run gets, from the cores this process may use and the model size.

Small steps lose to thread hand-offs: on this 2-core machine the digits MLP (0.8 M
multiply-adds per step) trains 1.4× faster on one thread than on two. Above SMALL_STEP_MACS
the size alone does not tell: the shapes CNN (13 M per step) and a 1024-wide MLP at m = 256
(280 M) are 1.4× and 1.7× faster on two, but the mnist1d CNN was faster on one in some runs
and on two in others. So bigger steps are timed: a few throwaway steps of the same network on
random data with one thread and with all of them, and the faster count wins (one on a tie: it
leaves the other cores to other workers). The run itself is untouched (its own RNG, model and
data are not used).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from worker.engine.datasets import dataset_info
from worker.engine.models import build_model
from worker.engine.spec import Spec

# Multiply-adds per training step above which more threads pay (measured, see above).
SMALL_STEP_MACS = 4_000_000
MAX_THREADS = 8
# A full-batch step's size is unknown before loading the data; it is large anyway.
FULL_BATCH_GUESS = 1_000
# Timing: steps per thread count after a warm-up; a step slower than LONG_STEP_SECONDS on all
# cores is big enough for all cores without timing it (and timing it would cost seconds).
TIMED_STEPS = 3
LONG_STEP_SECONDS = 0.25
# Within this margin the fewer threads win.
TIE = 1.05


def timing_batch(spec: Spec) -> int:
    """The minibatch of throwaway timing steps: never more than FULL_BATCH_GUESS, so that a
    huge batch_size (clamped to n by training itself) allocates nothing huge here."""
    batch = spec.optim.batch_size
    return FULL_BATCH_GUESS if batch == "full" else min(batch, FULL_BATCH_GUESS)


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


def step_seconds(model: nn.Module, x: torch.Tensor, y: torch.Tensor, threads: int,
                 steps: int = TIMED_STEPS) -> float:
    """Median seconds of a training step (forward, loss, backward, update) on ``threads``
    threads; the first step is a warm-up. The model's weights do not change (lr 0)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    try:
        times = []
        for i in range(steps + 1):
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if i:
                times.append(time.perf_counter() - t0)
        return statistics.median(times)
    finally:
        torch.set_num_threads(previous)


def choose_threads(spec: Spec, cores: int | None = None, data_root: Path | None = None) -> int:
    """1 for small steps; for bigger ones the faster of 1 and every usable core (at most
    MAX_THREADS), timed on throwaway steps of the same network. ``data_root``: where an
    uploaded dataset is unpacked (its classes size the network)."""
    cores = max(1, min(cores or usable_cores(), MAX_THREADS))
    info = dataset_info(spec.data.dataset, data_root)
    single = spec.model_copy(update={"ensemble": spec.ensemble.model_copy(update={"members": 1})})
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)  # the CPU's only, as build_network does
        model = build_model(single, info.input_shape, len(info.classes))
        batch = timing_batch(spec)
        # An ensemble's step is K members' work: timed as one member on K minibatches.
        batch *= spec.ensemble.members
        step = macs_per_example(model, tuple(info.input_shape)) * batch
        if step < SMALL_STEP_MACS or cores == 1:
            return 1
        model.train()
        x = torch.rand(batch, *info.input_shape)
        y = torch.randint(len(info.classes), (batch,))
        if step_seconds(model, x, y, cores, steps=1) > LONG_STEP_SECONDS:
            return cores
        one, many = step_seconds(model, x, y, 1), step_seconds(model, x, y, cores)
    return cores if many * TIE < one else 1
