"""The variance of the minibatch gradient against m (COURSE.md §2), at the current parameters.

For each m: draw R minibatches of m distinct examples from S, compute each one's gradient
g_m = (1/m) Σ_k ∇F_k(z), and report the mean of ‖g_m − ḡ‖² where ḡ is the full-batch
gradient over S: an estimate of E‖g_m − ḡ‖² = tr Cov(g_m). Sampling m of n without
replacement gives tr Cov(g_m) = (σ²/m)·(n − m)/(n − 1), σ² = (1/n) Σ_i ‖∇F_i − ḡ‖², so on
log-log axes the curve has slope ≈ −1 (a little steeper as m nears n).

The R gradients of one m are computed together: torch.func.vmap over minibatches of
torch.func.grad of the minibatch loss (for m = 1, per-example gradients). Only the sampling
noise of the minibatch is measured: dropout is off, and batchnorm normalises each minibatch
with its own statistics, as in training, without touching its running averages. With batchnorm,
m = 1 is skipped (one example normalises to β). ḡ is computed in chunks of ``CHUNK`` examples;
with batchnorm and n > CHUNK each chunk uses its own statistics (an approximation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .layers import BatchNorm, Dropout

SIZES = (1, 4, 16, 64, 256)
DRAWS = 32
CHUNK = 4096  # examples per vmap call, and per chunk of the full-batch gradient


@contextmanager
def _measuring(model: nn.Module) -> Iterator[None]:
    """Train-mode forward with dropout off and batchnorm's running averages frozen."""
    drops = [m for m in model.modules() if isinstance(m, Dropout)]
    bns = [m for m in model.modules() if isinstance(m, BatchNorm)]
    was_training = model.training
    saved = [d.active for d in drops]
    model.train()
    for d in drops:
        d.active = False
    for bn in bns:
        bn.update_running = False
    try:
        yield
    finally:
        for d, a in zip(drops, saved):
            d.active = a
        for bn in bns:
            bn.update_running = True
        model.train(was_training)


def sizes_for(n: int, batchnorm: bool, sizes: Sequence[int] = SIZES) -> list[int]:
    """The minibatch sizes measured for a training set of n: up to n/2, from 2 with batchnorm."""
    return [m for m in sizes if m <= n // 2 and not (batchnorm and m < 2)]


def grad_variance(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator,
    sizes: Sequence[int] = SIZES, draws: int = DRAWS,
) -> dict[str, torch.Tensor]:
    """{"grad_var/m=<m>": mean ‖g_m − ḡ‖² over ``draws`` minibatches} as device scalars.
    ``model`` is one network (not a stacked ensemble); ``generator`` (CPU) draws the batches."""
    n = len(y)
    batchnorm = any(isinstance(m, BatchNorm) for m in model.modules())
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def loss(p: dict, xb: torch.Tensor, yb: torch.Tensor, reduction: str = "mean"):
        return F.cross_entropy(functional_call(model, (p, buffers), (xb,)), yb,
                               reduction=reduction)

    def flat(g: dict[str, torch.Tensor], batched: bool) -> torch.Tensor:
        return torch.cat([v.flatten(1 if batched else 0) for v in g.values()], -1)

    out: dict[str, torch.Tensor] = {}
    with _measuring(model):
        g_full = sum(
            flat(grad(loss)(params, X[s:s + CHUNK], y[s:s + CHUNK], "sum"), False)
            for s in range(0, n, CHUNK)
        ) / n
        per_batch = vmap(grad(loss), in_dims=(None, 0, 0))
        for m in sizes_for(n, batchnorm, sizes):
            idx = torch.stack([torch.randperm(n, generator=generator)[:m] for _ in range(draws)])
            idx = idx.to(X.device)
            total = torch.zeros((), device=X.device)
            step = max(1, CHUNK // m)
            for r in range(0, draws, step):
                rows = idx[r:r + step]
                g = flat(per_batch(params, X[rows], y[rows]), True)
                total = total + (g - g_full).pow(2).sum()
            out[f"grad_var/m={m}"] = total / draws
    return out
