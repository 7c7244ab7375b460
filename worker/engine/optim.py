"""The course's SGD with momentum (COURSE.md §1):

    v ← α v − η g ;  z ← z + v        (v starts at 0)

This is not torch.optim.SGD: PyTorch keeps b ← μ b + g and steps z ← z − η b, which is the
same trajectory only while η is constant. With a schedule or a hand-changed η the two differ,
and the lab must show the course's update, so we implement it directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def momentum_update(
    z: torch.Tensor, v: torch.Tensor, g: torch.Tensor, lr: float, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the course's update, out of place: returns (z_new, v_new)."""
    v_new = alpha * v - lr * g
    return z + v_new, v_new


def param_groups(model: nn.Module) -> list[dict[str, Any]]:
    """Weights (matrices, kernels) and the rest (biases, later batchnorm γ/β) in separate
    groups: L2 weight decay (COURSE.md §7) and ‖w‖ apply to weights only."""
    weights, others = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (weights if p.ndim >= 2 else others).append(p)
    groups = [{"params": weights, "kind": "weights"}]
    if others:
        groups.append({"params": others, "kind": "biases"})
    return groups


class MomentumSGD(torch.optim.Optimizer):
    """v ← α v − η g ; z ← z + v, with torch._foreach_* ops.

    Parameters of every group that share (lr, momentum) are updated together, so a step is
    three multi-tensor ops however many layers or groups there are — the same count as
    torch.optim.SGD(foreach=True, momentum=α).
    """

    def __init__(
        self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float,
        momentum: float = 0.0,
    ) -> None:
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"invalid momentum {momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum})

    def set_lr(self, lr: float) -> None:
        for group in self.param_groups:
            group["lr"] = lr

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        # Bucket by hyperparameters across groups: one foreach call per bucket and op.
        buckets: dict[tuple[float, float], tuple[list, list, list]] = {}
        for group in self.param_groups:
            key = (group["lr"], group["momentum"])
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

        for (lr, alpha), (params, grads, vels) in buckets.items():
            if not params:
                continue
            if alpha == 0.0:
                # v ← −η g; skipping the multiply also keeps 0·inf from leaking NaN into v.
                torch._foreach_zero_(vels)
            else:
                torch._foreach_mul_(vels, alpha)
            torch._foreach_add_(vels, grads, alpha=-lr)
            torch._foreach_add_(params, vels)
