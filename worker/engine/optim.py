"""The course's SGD with momentum (COURSE.md §1), Adam, and L2 regularisation (§7):

    v ← α v − η (g + λ w) ;  z ← z + v        (v starts at 0; λ w for weights only)

This is not torch.optim.SGD: PyTorch keeps b ← μ b + g and steps z ← z − η b, which is the
same trajectory only while η is constant. With a schedule or a hand-changed η the two differ,
and the lab must show the course's update, so we implement it directly. Adam is torch's.

L2 is (λ/2)‖w‖² over the weights (matrices and kernels) only: its gradient λw is added in the
optimiser's weights group; biases and batchnorm's γ, β sit in a group with λ = 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from .layers import StackedConv, StackedLinear
from .spec import OptimSpec


def momentum_update(
    z: torch.Tensor, v: torch.Tensor, g: torch.Tensor, lr: float, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the course's update, out of place: returns (z_new, v_new)."""
    v_new = alpha * v - lr * g
    return z + v_new, v_new


# Modules whose ``weight`` is a weight in the course's sense (a matrix or a kernel): only these
# get L2 decay and count in ‖w‖. Batchnorm's γ is also called "weight" but is excluded.
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, StackedLinear, StackedConv,
)


def param_groups(model: nn.Module, weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """Weights (matrices, kernels) and the rest (biases, batchnorm γ/β) in separate groups:
    L2 weight decay (COURSE.md §7) and ‖w‖ apply to weights only. Decided by layer type, not
    by shape, since a stacked ensemble's biases are matrices too."""
    weight_ids = {
        id(m.weight) for m in model.modules() if isinstance(m, WEIGHT_LAYERS)
    }
    weights, others = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (weights if id(p) in weight_ids else others).append(p)
    groups = [{"params": weights, "kind": "weights", "weight_decay": weight_decay}]
    if others:
        groups.append({"params": others, "kind": "biases", "weight_decay": 0.0})
    return groups


class MomentumSGD(torch.optim.Optimizer):
    """v ← α v − η (g + λ z) ; z ← z + v, with torch._foreach_* ops.

    λ is the group's ``weight_decay``: the gradient of (λ/2)‖w‖², added to the weights' group
    only (``param_groups`` gives biases λ = 0). It is added out of place, so ``p.grad`` keeps the
    loss gradient (what grad_std reports). Parameters of every group that share
    (lr, momentum, λ) are updated together, so a step is three multi-tensor ops however many
    layers or groups there are — the same count as torch.optim.SGD(foreach=True, momentum=α).
    """

    def __init__(
        self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float,
        momentum: float = 0.0, weight_decay: float = 0.0,
    ) -> None:
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"invalid momentum {momentum}")
        if weight_decay < 0:
            raise ValueError(f"invalid weight decay {weight_decay}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    def set_lr(self, lr: float) -> None:
        set_lr(self, lr)

    def step(self, closure: None = None) -> None:  # type: ignore[override]
        self.update()

    @torch.no_grad()
    def update(self) -> None:
        """The step itself, without the profiler region and hook checks torch.optim wraps
        around ``step`` (``stepper`` calls this)."""
        # Bucket by hyperparameters across groups: one foreach call per bucket and op.
        buckets: dict[tuple[float, float, float], tuple[list, list, list]] = {}
        for group in self.param_groups:
            key = (group["lr"], group["momentum"], group["weight_decay"])
            params, grads, vels = buckets.setdefault(key, ([], [], []))
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                v = state.get("velocity")
                if v is None:
                    v = state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                params.append(p)
                grads.append(p.grad)
                vels.append(v)

        for (lr, alpha, wd), (params, grads, vels) in buckets.items():
            if not params:
                continue
            if wd:
                grads = torch._foreach_add(grads, params, alpha=wd)  # g + λ z
            if alpha == 0.0:
                # v ← −η g; skipping the multiply also keeps 0·inf from leaking NaN into v.
                torch._foreach_zero_(vels)
            else:
                torch._foreach_mul_(vels, alpha)
            torch._foreach_add_(vels, grads, alpha=-lr)
            torch._foreach_add_(params, vels)


def stepper(optimizer: torch.optim.Optimizer) -> tuple[Callable[[], None], Callable[[], None]]:
    """(clear the gradients, update the parameters) for the training loop. torch.optim wraps
    every ``step`` and ``zero_grad`` in a profiler region and hook checks, about 0.1 ms a step:
    5-10 % of a small MLP's step on a CPU (measured). The course's SGD skips them; gradients
    are set to None, as ``zero_grad(set_to_none=True)`` does."""
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def clear() -> None:
        for p in params:
            p.grad = None

    return clear, getattr(optimizer, "update", optimizer.step)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def build_optimizer(optim: OptimSpec, model: nn.Module) -> torch.optim.Optimizer:
    """The spec's optimiser over ``param_groups(model, λ)``.

    sgd: the course's MomentumSGD. adam: torch.optim.Adam (β = (0.9, 0.999), ε = 1e−8; the
    spec's momentum does not apply), with λ as Adam's own ``weight_decay``, which is exactly
    the L2 gradient g + λw per group (coupled L2, not AdamW's decoupled decay)."""
    groups = param_groups(model, optim.weight_decay)
    if optim.method == "sgd":
        return MomentumSGD(groups, lr=optim.lr, momentum=optim.momentum)
    if optim.method == "adam":
        # foreach: on the CPU torch would otherwise loop over the tensors one by one.
        return torch.optim.Adam(groups, lr=optim.lr, foreach=True)
    raise ValueError(f"optimiser {optim.method!r} is not available")
