"""The decision boundary of a 2-D classifier: class probabilities on a G×G grid over the data.

The grid spans the training inputs' range plus a margin, in the model's input coordinates
(2-D sets are standardised with training statistics). Sent through ``Callbacks.on_boundary``
as plain lists, row i of each map at y[i], column j at x[j]:

    {"x": [G], "y": [G],
     "labels": [[G×G]]   predicted class index (the ensemble's mean probability),
     "probs":  [[G×G]]   probability of class 1 for two classes, else of the predicted class,
     "probs_of": "class_1" | "predicted",
     "points": {"x": [..], "y": [..], "label": [..]}   a fixed sample of the training set,
                                                       drawn over the map}
"""

from __future__ import annotations

import torch
from torch import nn

from .ensemble import mean_log_probs, member_log_probs

GRID = 60
MARGIN = 0.1  # of the data range, on each side
SHOWN_POINTS = 300  # training examples drawn over the map (a fixed, evenly spaced sample)


def wants_boundary(setting: str | bool, input_shape: tuple[int, ...]) -> bool:
    """spec.diagnostics.boundary: auto = on for 2-D inputs; on/True needs 2-D inputs."""
    two_d = tuple(input_shape) == (2,)
    if setting in ("off", False):
        return False
    if setting == "auto":
        return two_d
    if not two_d:
        raise ValueError(
            f"diagnostics.boundary needs 2-D inputs; these have shape {tuple(input_shape)}"
        )
    return True


def grid_points(X: torch.Tensor, size: int = GRID) -> tuple[torch.Tensor, torch.Tensor]:
    """The axes (x, y), each (size,), spanning X's range (N, 2) with a margin."""
    lo, hi = X.min(0).values, X.max(0).values
    pad = (hi - lo).clamp_min(1e-6) * MARGIN
    lo, hi = lo - pad, hi + pad
    return (torch.linspace(lo[0].item(), hi[0].item(), size),
            torch.linspace(lo[1].item(), hi[1].item(), size))


@torch.no_grad()
def boundary_grid(
    model: nn.Module, X: torch.Tensor, size: int = GRID, y: torch.Tensor | None = None
) -> dict:
    """The payload above for ``model`` (one network or a stacked ensemble) in eval mode."""
    xs, ys = grid_points(X.cpu(), size)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(X.device)
    was_training = model.training
    model.eval()
    probs = mean_log_probs(member_log_probs(model, points)).exp().double().cpu()
    model.train(was_training)
    labels = probs.argmax(1)
    binary = probs.shape[1] == 2
    shown = probs[:, 1] if binary else probs.max(1).values
    return {
        "x": [round(v, 5) for v in xs.tolist()],
        "y": [round(v, 5) for v in ys.tolist()],
        "labels": labels.reshape(size, size).tolist(),
        "probs": torch.round(shown.reshape(size, size), decimals=4).tolist(),
        "probs_of": "class_1" if binary else "predicted",
        **({"points": _sample(X, y)} if y is not None else {}),
    }


def _sample(X: torch.Tensor, y: torch.Tensor) -> dict:
    step = max(1, len(y) // SHOWN_POINTS)
    xs, ys = X[::step].cpu(), y[::step].cpu()
    return {"x": [round(v, 4) for v in xs[:, 0].tolist()],
            "y": [round(v, 4) for v in xs[:, 1].tolist()], "label": ys.tolist()}
