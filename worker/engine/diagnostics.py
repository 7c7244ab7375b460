"""Read-outs of a network's state: ‖w‖, per-layer gradient spread, distinct units.

They run once per epoch (or once per run) on the device, returning device tensors so the
trainer can read every epoch figure in a single host sync. A stacked ensemble's figures pool
its members: ‖w‖ is the members' mean ‖w_k‖, grad_std the spread over every member's gradient.
(Gradient noise and the decision boundary live in gradnoise.py and boundary.py.)
"""

from __future__ import annotations

import torch
from torch import nn


def weight_norm(weights: list[torch.Tensor], members: int | None = None) -> torch.Tensor:
    """‖w‖ over weight matrices and kernels only (biases and batchnorm excluded, as in the L2
    penalty of COURSE.md §7). Stacked (leading member dim): the mean over members of ‖w_k‖."""
    if members is None:
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(weights)))
    return member_weight_norms(weights).mean()


def member_weight_norms(weights: list[torch.Tensor]) -> torch.Tensor:
    """Stacked weights (leading member dim): each member's ‖w_k‖, a K-vector."""
    squares = torch.stack([w.detach().flatten(1).pow(2).sum(1) for w in weights]).sum(0)
    return squares.sqrt()


def grad_stds(model: nn.Module, per_member: bool = False) -> dict[str, torch.Tensor]:
    """std of each layer's weight gradient as the last backward left it (the epoch's last
    minibatch): reading it after the epoch costs the training step nothing. ``per_member``
    (stacked): each member's own std, a K-vector."""
    out = {}
    for name in model.layer_names:  # type: ignore[attr-defined]
        g = model.layer(name).weight.grad  # type: ignore[operator]
        if g is not None:
            out[f"grad_std/{name}"] = (g.flatten(1).std(1, correction=0) if per_member
                                       else g.std(correction=0))
    return out


@torch.no_grad()
def distinct_units(model: nn.Module, rtol: float = 1e-5, atol: float = 1e-7) -> list[int]:
    """Per hidden layer, how many units have distinct incoming weights (row of W — a unit's
    whole kernel in a CNN — with its bias, if any). A stacked ensemble: member 0's count.

    Units that start identical get identical gradients and stay identical (COURSE.md §5), but
    float round-off can split them by a hair, hence a tolerance: rows i and j are the same unit
    when ‖r_i − r_j‖ ≤ atol + rtol·max(‖r_i‖, ‖r_j‖) (relative per pair, so a blown-up layer
    does not merge genuinely different units). A unit counts as new if it is not the same as an
    earlier one. Distances go through a matrix product (fast even for wide layers); this runs
    once per run, on z*.
    """
    counts = []
    stacked = getattr(model, "members", None) is not None
    for name in model.hidden_names:  # type: ignore[attr-defined]
        layer = model.layer(name)  # type: ignore[operator]
        w, b = layer.weight, layer.bias
        if stacked:
            w, b = w[0], (None if b is None else b[0])
        rows = w.flatten(1) if b is None else torch.cat([w.flatten(1), b[:, None]], dim=1)
        rows = rows.double()
        norms = torch.linalg.vector_norm(rows, dim=1)
        dist = torch.cdist(rows, rows, compute_mode="use_mm_for_euclid_dist")
        same = dist <= atol + rtol * torch.maximum(norms[:, None], norms[None, :])
        same_as_earlier = torch.tril(same, diagonal=-1).any(dim=1)
        counts.append(int((~same_as_earlier).sum().item()))
    return counts
