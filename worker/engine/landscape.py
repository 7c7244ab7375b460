"""The loss landscape around the returned model z* (SPEC.md "Looking inside"; Li et al. 2018,
"Visualizing the loss landscape of neural nets"): the training loss on the plane
z* + α·d₁ + β·d₂, with the optimiser's path projected on it.

Directions are filter-normalised random directions: a Gaussian r per weight tensor (every
parameter with two or more dimensions: a linear layer's neurons, a convolution's filters),
each row r_k (one neuron's or filter's weights) scaled to the norm of z*'s row:
d_k = r_k · ‖z*_k‖ / ‖r_k‖. Biases and batchnorm parameters (one-dimensional) are zero in the
directions, as in the paper, so moving on the plane leaves them at z*'s values.

The path needs every epoch's weights, which a run does not keep. It keeps a sketch of them
instead: per epoch and per direction, the dot product of each raw row r_k with the weights'
row θ_k (``path_sketch``, a few hundred numbers). Because d_k = s_k r_k with
s_k = ‖z*_k‖/‖r_k‖, d·θ = Σ_k s_k (r_k·θ_k): the sketch gives the exact projection once z* is
known (``project_path``: least squares onto d₁, d₂ of θ − z*). The raw directions are drawn
again from the run's seed, so they are the same for the sketches and for the surface.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .datasets import derive_seed
from .evaluate import EVAL_CHUNK

MAX_PARAMETERS = 1_000_000  # in the directions' tensors; larger models have no landscape
MAX_EXAMPLES = 10_000  # the training loss is taken on at most this many examples of S_t

State = Mapping[str, torch.Tensor]


def direction_names(state: State) -> list[str]:
    """The tensors the directions move: every parameter of two or more dimensions, in the
    state's order (batchnorm's running statistics are buffers of one dimension)."""
    return [k for k, v in state.items() if v.dim() >= 2 and v.is_floating_point()]


def sketchable(state: State) -> bool:
    return sum(state[k].numel() for k in direction_names(state)) <= MAX_PARAMETERS


def raw_directions(state: State, seed: int) -> list[dict[str, torch.Tensor]]:
    """Two Gaussian directions shaped like the state's weight tensors, drawn from the run's
    seed (the same on every call and machine: a CPU generator)."""
    gen = torch.Generator().manual_seed(derive_seed(seed, "landscape"))
    return [{k: torch.randn(state[k].shape, generator=gen, dtype=torch.float64)
             for k in direction_names(state)} for _ in range(2)]


def _rows(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64).cpu().flatten(1)


def row_dots(state: State, direction: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(rows,) the dot product of each row of ``direction`` with the same row of ``state``."""
    return torch.cat([(_rows(direction[k]) * _rows(state[k])).sum(1) for k in direction])


def path_sketch(state: State, directions: Sequence[Mapping[str, torch.Tensor]]) -> list[list[float]]:
    """What a run keeps of one epoch's weights: [r₁ row dots, r₂ row dots]."""
    return [row_dots(state, d).tolist() for d in directions]


def scales(centre: State, direction: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(rows,) s_k = ‖z*_k‖ / ‖r_k‖: filter normalisation, row by row."""
    return torch.cat([_rows(centre[k]).norm(dim=1) / _rows(r).norm(dim=1)
                      for k, r in direction.items()])


def filter_normalise(centre: State, direction: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """d with every row scaled to the norm of z*'s row."""
    out = {}
    for k, r in direction.items():
        rows = _rows(r)
        s = _rows(centre[k]).norm(dim=1) / rows.norm(dim=1)
        out[k] = (rows * s[:, None]).reshape(r.shape)
    return out


def project_path(centre: State, directions: Sequence[Mapping[str, torch.Tensor]],
                 sketches: Sequence[Sequence[Sequence[float]]]) -> list[list[float]]:
    """[[α, β], …]: each sketched θ − z* projected by least squares on the plane of the
    filter-normalised d₁, d₂: the Gram system G [α β]ᵀ = [d₁·(θ−z*), d₂·(θ−z*)]ᵀ, with
    dᵢ·θ = Σ_k s_ik (r_ik·θ_k) from the sketch."""
    if not sketches:
        return []
    normalised = [filter_normalise(centre, d) for d in directions]
    gram = torch.tensor([[sum(float((a[k] * b[k]).sum()) for k in a) for b in normalised]
                         for a in normalised], dtype=torch.float64)
    s = torch.stack([scales(centre, d) for d in directions])  # (2, rows)
    at_centre = torch.stack([row_dots(centre, d) for d in directions])  # (2, rows)
    dots = torch.tensor([list(sk) for sk in sketches], dtype=torch.float64)  # (E, 2, rows)
    rhs = ((dots - at_centre[None]) * s[None]).sum(2)  # (E, 2): dᵢ·(θ − z*)
    return torch.linalg.solve(gram, rhs.T).T.tolist()


def training_loss(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy of ``model`` (eval mode) on X, y, in chunks."""
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(y), EVAL_CHUNK):
            logits = model(X[start:start + EVAL_CHUNK])
            total += F.cross_entropy(logits.float(), y[start:start + EVAL_CHUNK],
                                     reduction="sum").item()
    return total / len(y)


def axis(half_width: float, resolution: int) -> list[float]:
    """``resolution`` points from −w to w, the middle one exactly 0 (odd resolution)."""
    c = (resolution - 1) / 2
    return [half_width * (i - c) / c for i in range(resolution)]


def landscape(
    model: torch.nn.Module, seed: int, X: torch.Tensor, y: torch.Tensor, *, resolution: int,
    sketches: Sequence[tuple[int, Sequence[Sequence[float]]]] = (),
    on_progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """{alphas, betas, loss, path, path_epochs, centre_loss, examples}: ``loss[j][i]`` is the
    training loss (on X, y) at z* + alphas[i]·d₁ + betas[j]·d₂ (rows follow β, as a contour
    plot's z); the grid spans [−w, w]² with w = 1, or 1.1× the path's farthest coordinate
    when it goes farther; ``path`` the sketched epochs (``path_epochs``) projected."""
    model.eval()
    centre = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if not sketchable(centre):
        raise ValueError(f"the loss landscape is drawn for models of at most {MAX_PARAMETERS:,}"
                         " weights")
    directions = raw_directions(centre, seed)
    d1, d2 = (filter_normalise(centre, d) for d in directions)
    path = project_path(centre, directions, [sk for _, sk in sketches])
    reach = max([abs(v) for point in path for v in point], default=0.0)
    width = max(1.0, 1.1 * reach)
    alphas, betas = axis(width, resolution), axis(width, resolution)
    params = dict(model.named_parameters())
    loss = []
    with torch.no_grad():
        for j, b in enumerate(betas):
            row = []
            for a in alphas:
                for k in d1:
                    params[k].copy_(centre[k] + (a * d1[k] + b * d2[k]).to(centre[k]))
                row.append(training_loss(model, X, y))
            loss.append(row)
            if on_progress is not None:
                on_progress((j + 1) / resolution)
        model.load_state_dict(centre)
    return {"alphas": alphas, "betas": betas, "loss": loss, "path": path,
            "path_epochs": [e for e, _ in sketches],
            "centre_loss": loss[len(betas) // 2][len(alphas) // 2], "examples": len(y)}
