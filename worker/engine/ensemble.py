"""Predictions of a network or an ensemble (COURSE.md §8 and §10), as log-probabilities.

An ensemble of K members is one stacked network (models.py): member k is initialised from
``torch.manual_seed(seed + k)`` and draws its minibatch order from ``derive_seed(seed + k,
"order")`` — exactly what a single run with seed + k does — while the data split stays that of
``spec.seed``. The members train together, one batched step for all, and each member's
trajectory equals its separate run up to float round-off. (Dropout masks come from one
generator for the whole stack, so with dropout a member is a run of its own, not a copy.)

Combining: ``mean`` averages the members' probabilities; ``vote`` takes the class most members
predict, ties broken by the mean probability.

Dropout inference (COURSE.md §8): strategy B is the network in eval mode (layers.Dropout scales
during training, so keeping every unit is B); strategy A averages the softmax of
``mc_samples`` random masks, drawn in eval mode so batchnorm keeps its prediction statistics.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .layers import Dropout


@contextmanager
def mc_dropout(model: nn.Module, generator: torch.Generator | None) -> Iterator[None]:
    """Dropout masks on in eval mode (strategy A), drawn from ``generator``."""
    drops = [m for m in model.modules() if isinstance(m, Dropout)]
    saved = [(d.active, d.generator) for d in drops]
    for d in drops:
        d.active, d.generator = True, generator
    try:
        yield
    finally:
        for d, (active, gen) in zip(drops, saved):
            d.active, d.generator = active, gen


def member_log_probs(
    model: nn.Module, x: torch.Tensor, *, mc_samples: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(K, B, C) log-probabilities of each member (K = 1 for one network). With ``mc_samples``,
    log of the mean softmax over that many dropout masks (strategy A)."""

    def once() -> torch.Tensor:
        logits = model(x)
        # contiguous: a stacked MLP's (K, B, C) logits are a transposed view, slow to reduce.
        return (logits if logits.ndim == 3 else logits[None]).contiguous().log_softmax(-1)

    if not mc_samples:
        return once()
    with mc_dropout(model, generator):
        acc = once()
        for _ in range(mc_samples - 1):
            acc = torch.logaddexp(acc, once())
    return acc - math.log(mc_samples)


def mean_log_probs(lp: torch.Tensor) -> torch.Tensor:
    """log of the members' mean probability: (K, B, C) → (B, C)."""
    if lp.shape[0] == 1:
        return lp[0]
    return torch.logsumexp(lp, dim=0) - math.log(lp.shape[0])


def vote(lp: torch.Tensor) -> torch.Tensor:
    """Majority vote of the members' predicted classes, ties broken by the mean probability:
    (K, B, C) → (B,). The tie-break term is below 1, the smallest gap between vote counts."""
    counts = torch.nn.functional.one_hot(lp.argmax(-1), lp.shape[-1]).sum(0).double()
    return (counts + 0.5 * mean_log_probs(lp).exp().double()).argmax(-1)


@torch.no_grad()
def probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, C) class probabilities: the network's, or the ensemble's mean (also for ``vote``
    ensembles: a vote is not a probability)."""
    return mean_log_probs(member_log_probs(model, x)).exp()


def summary(
    member_accuracy: list[float], mean_accuracy: float, vote_accuracy: float, combine: str
) -> dict:
    """The result's ``ensemble`` object: the slide's table for the student's own ensemble."""
    chosen = vote_accuracy if combine == "vote" else mean_accuracy
    mean_member = sum(member_accuracy) / len(member_accuracy)
    best_member = max(member_accuracy)
    return {
        "member_test_accuracy": member_accuracy,
        "mean_member_accuracy": mean_member,
        "best_member_accuracy": best_member,
        "ensemble_test_accuracy": chosen,
        "gain": chosen - mean_member,
        "gain_over_best": chosen - best_member,
        "combine": combine,
        "vote_test_accuracy": vote_accuracy,
        "mean_test_accuracy": mean_accuracy,
    }


# Where the curve of strategy A's accuracy against the number of masks is read.
MC_CURVE_AT = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)


@torch.no_grad()
def mc_curve(model: nn.Module, X: torch.Tensor, y: torch.Tensor, samples: int,
             generator: torch.Generator | None, chunk: int = 8192,
             ) -> tuple[torch.Tensor, list[list[float]]]:
    """(log-probabilities (K, N, C) of strategy A with ``samples`` masks, [[k, accuracy of
    strategy A with k masks], …] for k in MC_CURVE_AT up to ``samples`` and ``samples``
    itself): the course's "A against the number of masks". One pass per mask over the whole
    set; the running mean of probabilities is read at each k, so the figure with ``samples``
    masks and the curve's last point come from the same masks."""
    ks = sorted({k for k in MC_CURVE_AT if k <= samples} | {samples})
    was_training = model.training
    model.eval()
    total = torch.zeros(())
    out = []
    with mc_dropout(model, generator):
        for k in range(1, samples + 1):
            lp = torch.cat([member_log_probs(model, X[i:i + chunk])
                            for i in range(0, len(X), chunk)], dim=1)  # (K, N, C)
            total = lp if k == 1 else torch.logaddexp(total, lp)
            if k in ks:
                combined = mean_log_probs(total - math.log(k))
                out.append([k, (combined.argmax(1) == y).double().mean().item()])
    model.train(was_training)
    return total - math.log(samples), out
