"""Throwaway training steps for ``speed.auto`` (speed.resolve_speed): the run's network shape
(all its stacked members) with one way of running it, on random data of the run's minibatch
size, learning rate 0. The run's own network, data and random streams are not touched, nor is
torch's global generator (the copy is initialised inside a forked RNG)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .graph import GraphStep
from .models import build_model
from .optim import build_optimizer
from .spec import Spec
from .speed import SpeedChoice, apply_speed
from .step import run_epoch


def speed_trial(spec: Spec, members: int, input_shape: Sequence[int], n_classes: int, m: int,
                device: torch.device, choice: SpeedChoice) -> Callable[[], None]:
    """One training step of ``spec``'s network with ``members`` stacked (1: alone), run as
    ``choice`` says; each call runs one step and waits for its kernels."""
    one = spec.model_copy(update={
        "ensemble": spec.ensemble.model_copy(update={"members": members}),
        "optim": spec.optim.model_copy(update={"lr": 0.0}),
        "speed": choice.applied_to(spec.speed)})
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)
        model = build_model(one, tuple(input_shape), n_classes).to(device).train()
        X = torch.rand(members * m, *input_shape).to(device)
        y = torch.randint(n_classes, (members * m,)).to(device)
    if model.dropouts():
        gens = [torch.Generator(device).manual_seed(k) for k in range(members)]
        if members > 1:
            model.set_dropout(generators=gens)
        else:
            model.set_dropout(generator=gens[0])
    apply_speed(model, one.speed, device)
    optimizer = build_optimizer(one.optim, model)
    rows = torch.arange(members * m, device=device).view(members, m)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *a: None)
    if choice.cuda_graph:
        graph = GraphStep(model, optimizer, X, y, members, m)

        def graph_step() -> None:
            graph.run_epoch(rows, 1)
            sync(device)

        return graph_step

    def step() -> None:
        run_epoch(model, optimizer, X, y, rows, m, 1)
        sync(device)

    return step
