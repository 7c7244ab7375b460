"""One epoch of minibatch steps for K stacked members: the only place the engine steps.

The training loop (loop.py) calls ``run_epoch`` once an epoch, and the timing code
(worker/timing.py) times the same function, so what it measures is what a run does.

A network is either plain (one run: logits (B, C)) or stacked (models.py: K members, logits
(K, B, C)). Member k's minibatch i is the rows ``rows[k, i·m:(i+1)·m]`` of X and y: each member
its own order over one shared set (an ensemble), or over its own block of rows (a pack, whose
members each have their own data). Per-step work is only what the spec asks for: forward,
loss, backward, optimiser step and references kept for the epoch's figures — no host sync.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .optim import set_lr, stepper

# The profiler region around each epoch's training steps (bench/gpu.py reads it from traces).
STEPS_REGION = "epoque.train_steps"


def epoch_rows(
    sampling: str, n: int, m: int, n_batches: int, orders: Sequence[torch.Generator],
) -> torch.Tensor:
    """(K, ≥ n_batches·m) row indices of this epoch's minibatches, one row per member, drawn on
    the CPU from each member's own generator (the same order on any device).

    shuffle: a permutation of 0..n−1 (⌊n/m⌋ disjoint minibatches; the n mod m left over are
    skipped this epoch, COURSE.md §2). with_replacement: each step's m indices drawn uniformly
    and independently from 0..n−1 (slide 1's SGD: i drawn from 1..n), so an index may recur
    within an epoch and another never come."""
    if sampling == "shuffle":
        return torch.stack([torch.randperm(n, generator=g) for g in orders])
    if sampling == "with_replacement":
        return torch.stack([torch.randint(n, (n_batches * m,), generator=g) for g in orders])
    raise ValueError(f"unknown sampling {sampling!r}")


def run_epoch(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor,
    rows: torch.Tensor, m: int, n_batches: int, *, augment: Callable | None = None,
    step0: int = 0, log_every: int = 0,
    log_step: Callable[[int, torch.Tensor, float], None] | None = None,
    lr_of_step: Callable[[int], float] | None = None,
    before_last_update: Callable[[], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of steps; (Σ of each member's minibatch losses, each member's correct count),
    K-vectors on the device. ``step0``: global steps done before this epoch; ``lr_of_step(t)``
    sets η before global step t (from 1), for schedules counted in steps; every ``log_every``
    steps, ``log_step(t, member losses, η)``; ``before_last_update()`` just before the epoch's
    last optimiser update (the update-ratio figure compares the weights across it)."""
    k = rows.shape[0]
    stacked = getattr(model, "members", None) is not None
    clear_grads, update = stepper(optimizer)
    losses, outputs = [], []
    for i in range(n_batches):
        step = step0 + i + 1
        # index_select on the flattened index: the same rows as X[idx], but advanced indexing
        # with a 2-D index is ~5x slower (0.1-0.3 ms of a K = 64 step, measured).
        flat = rows[:, i * m:(i + 1) * m].reshape(-1)
        xb, yb = X.index_select(0, flat), y.index_select(0, flat)
        if stacked:
            xb, yb = xb.view(k, m, *X.shape[1:]), yb.view(k, m)
        if augment is not None:
            xb = augment(xb, step - 1)
        if lr_of_step is not None:
            set_lr(optimizer, lr_of_step(step))
        if stacked:
            # (K, C, m): contiguous for a stacked MLP, whose (K, m, C) logits are a view.
            logits = model(xb).transpose(1, 2)
            # Σ_k of member k's mean loss: each member gets exactly its own gradient.
            loss = F.cross_entropy(logits, yb, reduction="none").mean(1)
            total = loss.sum()
            # max(dim).indices: argmax over the middle dim of (K, C, m) takes a slow strided
            # path on the CPU (0.6 ms against 0.03 ms at K = 64, measured); both return the
            # first maximum on ties.
            pred = logits.detach().max(dim=1).indices
        else:
            logits = model(xb)
            # Mean over the minibatch: g = (1/m) Σ ∇F_k.
            total = loss = F.cross_entropy(logits, yb)
            pred = logits.detach().argmax(dim=1)[None]
        clear_grads()
        total.backward()
        if before_last_update is not None and i == n_batches - 1:
            before_last_update()
        update()
        # Only references are kept; the epoch's figures are reduced once at its end (a few ops
        # per step would cost more than the whole validation pass).
        losses.append(loss.detach())
        outputs.append(pred)
        if log_every and log_step is not None and step % log_every == 0:
            log_step(step, loss.detach().reshape(-1), optimizer.param_groups[0]["lr"])
    labels = y[rows[:, :n_batches * m]]  # (K, n_batches·m), each member's order
    correct = (torch.cat(outputs, dim=1) == labels).sum(1)
    loss_sum = torch.stack(losses).sum(0) if stacked else torch.stack(losses).sum().reshape(1)
    return loss_sum, correct
