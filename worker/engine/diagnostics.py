"""Read-outs of a network's state: ‖w‖, per-layer gradient spread, distinct units.

They run once per epoch (or once per run) on the device, returning device tensors so the
trainer can read every epoch figure in a single host sync.
"""

from __future__ import annotations

import torch

from .models import MLP


def weight_norm(weights: list[torch.Tensor]) -> torch.Tensor:
    """‖w‖ over weight matrices only (biases excluded, as in the L2 penalty of COURSE.md §7)."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(weights)))


def grad_stds(model: MLP) -> dict[str, torch.Tensor]:
    """std of each layer's weight gradient as the last backward left it (the epoch's last
    minibatch): reading it after the epoch costs the training step nothing."""
    out = {}
    for name in model.layer_names:
        g = model.linear(name).weight.grad
        if g is not None:
            out[f"grad_std/{name}"] = g.std(correction=0)
    return out


@torch.no_grad()
def distinct_units(model: MLP, rtol: float = 1e-5, atol: float = 1e-7) -> list[int]:
    """Per hidden layer, how many units have distinct incoming weights (row of W with its bias).

    Units that start identical get identical gradients and stay identical (COURSE.md §5), but
    float round-off can split them by a hair, hence a tolerance: rows i and j are the same unit
    when ‖r_i − r_j‖ ≤ atol + rtol·max(‖r_i‖, ‖r_j‖) (relative per pair, so a blown-up layer
    does not merge genuinely different units). A unit counts as new if it is not the same as an
    earlier one. Distances go through a matrix product (fast even for wide layers); this runs
    once per run, on z*.
    """
    counts = []
    for name in model.hidden_names:
        layer = model.linear(name)
        rows = torch.cat([layer.weight, layer.bias[:, None]], dim=1).double()
        norms = torch.linalg.vector_norm(rows, dim=1)
        dist = torch.cdist(rows, rows, compute_mode="use_mm_for_euclid_dist")
        same = dist <= atol + rtol * torch.maximum(norms[:, None], norms[None, :])
        same_as_earlier = torch.tril(same, diagonal=-1).any(dim=1)
        counts.append(int((~same_as_earlier).sum().item()))
    return counts
