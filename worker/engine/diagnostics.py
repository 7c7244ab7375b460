"""Read-outs of a network's state: ‖w‖, per-layer gradient spread, distinct units, and the
training-health figures (update ratio, dead units, saturation; SPEC.md "Looking inside").

They run once per epoch (or once per run) on the device, returning device tensors so the
trainer can read every epoch figure in a single host sync. A stacked ensemble's figures pool
its members: ‖w‖ is the members' mean ‖w_k‖, grad_std the spread over every member's gradient.
(Gradient noise and the decision boundary live in gradnoise.py and boundary.py.)
"""

from __future__ import annotations

import torch
from torch import nn

from .models import CNN


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


# A tanh/sigmoid output counts as saturated past this magnitude: tanh′ = 1 − a² is then below
# 0.02 and σ′ = a(1 − a) below 0.01, so almost no gradient flows back through the unit.
SATURATION_LEVEL = 0.99
# Activations whose units can die (never positive: zero or a 0.01-slope trickle of gradient)
# and those that saturate; metric keys exist only for the matching activation (SPEC.md).
DYING = ("relu", "leaky_relu")
SATURATING = ("tanh", "sigmoid")
# With layer_stats, the health figures (update_ratio, dead_fraction, saturation) come with the
# spreads; bench/ turns this off to measure what they add to an epoch.
HEALTH_FIGURES = True


def weights_before_update(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of each weight layer's weight, taken before the epoch's last update so that
    ``update_ratios`` can compare (one copy of the weights per epoch, nothing per step)."""
    return {name: model.layer(name).weight.detach().clone()  # type: ignore[operator]
            for name in model.layer_names}  # type: ignore[attr-defined]


@torch.no_grad()
def update_ratios(model: nn.Module, before: dict[str, torch.Tensor],
                  per_member: bool = False) -> dict[str, torch.Tensor]:
    """``update_ratio/<layer>`` = ‖Δw‖/‖w‖ of the last update (w: the weight before it), the
    relative size of one step (healthy around 10⁻³). Stacked: each member's ratio, a K-vector
    with ``per_member``, else the members' mean (as ``weight_norm`` takes their mean ‖w_k‖)."""
    stacked = getattr(model, "members", None) is not None
    out = {}
    for name, w0 in before.items():
        w = model.layer(name).weight.detach()  # type: ignore[operator]
        rows = (lambda t: t.flatten(1)) if stacked else (lambda t: t.reshape(1, -1))
        ratio = (torch.linalg.vector_norm(rows(w - w0), dim=1)
                 / torch.linalg.vector_norm(rows(w0), dim=1))
        out[f"update_ratio/{name}"] = ratio if per_member else ratio.mean()
    return out


class UnitHealth:
    """Per hidden layer, over a set seen in chunks: which units were ever positive (ReLU
    family: the others are dead on this set) and the share of outputs with |a| >
    SATURATION_LEVEL (tanh, sigmoid; on sigmoid's own output, so only its upper tail counts).
    A unit is a feature of an MLP layer, a channel of a CNN layer (every position of its map).
    Figures are K-vectors for stacked networks (one row per member), 1-vectors otherwise."""

    def __init__(self, model: nn.Module) -> None:
        activation = model.config["activation"]  # type: ignore[index]
        self.kind = ("dead" if activation in DYING
                     else "saturation" if activation in SATURATING else None)
        self.members = getattr(model, "members", None)
        self.conv = isinstance(model, CNN)
        self.ever_positive: dict[str, torch.Tensor] = {}
        self.saturated: dict[str, tuple[torch.Tensor, int]] = {}

    def _units(self, a: torch.Tensor) -> torch.Tensor:
        """A layer's output as (members, units, values of one unit)."""
        k = self.members
        if k is None:
            return a.transpose(0, 1).reshape(1, a.shape[1], -1)  # (B, units, …)
        if self.conv:  # (B, K·C, …): member k's channels are block k
            a = a.unflatten(1, (k, -1)).transpose(0, 1)  # (K, B, C, …)
            return a.transpose(1, 2).reshape(k, a.shape[2], -1)
        return a  # stacked MLP: feature-major (K, d, B)

    def add(self, name: str, a: torch.Tensor) -> None:
        if self.kind is None:
            return
        u = self._units(a)
        if self.kind == "dead":
            pos = (u > 0).any(-1)
            seen = self.ever_positive.get(name)
            self.ever_positive[name] = pos if seen is None else seen | pos
        else:
            s, c = self.saturated.get(name, (0.0, 0))
            hits = (u.abs() > SATURATION_LEVEL).sum((1, 2), dtype=torch.float64)
            self.saturated[name] = (s + hits, c + u.shape[1] * u.shape[2])

    def figures(self) -> dict[str, torch.Tensor]:
        """``dead_fraction/<layer>`` or ``saturation/<layer>``, each a vector over members."""
        out = {f"dead_fraction/{name}": 1 - pos.double().mean(1)
               for name, pos in self.ever_positive.items()}
        out.update({f"saturation/{name}": s / c for name, (s, c) in self.saturated.items()})
        return out
