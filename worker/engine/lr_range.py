"""The learning-rate range test (SPEC.md "Looking inside"; Smith 2017, fastai's ``lr_find``):
train the spec's network for at most ``steps`` minibatches while η grows geometrically from
``start`` to ``end``, record each minibatch's loss and its smoothed value, and suggest an η.

Smoothing is fastai's: an exponential moving average with bias correction,
s_i = β s_{i−1} + (1 − β) ℓ_i, reported as s_i / (1 − β^{i+1}) (i from 0). The test stops
early once the smoothed loss exceeds STOP_FACTOR × its minimum so far: past that the network
is diverging and the rest of the sweep says nothing more.

The suggestion rule is the steepest descent of the smoothed loss against log η (fastai's
"steep"), looked for before the smoothed loss's minimum and after the first SKIP_FRACTION of
the steps (where the average still rests on a few minibatches). The alternative rule, one tenth
of the η at that minimum, is reported beside it.

The schedule and the rules are plain Python (the API maps stored steps to η with them, without
torch); only ``lr_range_test`` trains, reusing the training loop's Stack (data, network,
initialisation, optimiser, augmentation) and its one step function."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any

BETA = 0.98  # fastai's smoothing
STOP_FACTOR = 4.0
SKIP_FRACTION = 0.1
RULE = ("steepest descent of the smoothed loss: the η where d(smoothed loss)/d(log η) is most "
        "negative, before the smoothed loss's minimum (the first 10 % of steps skipped)")
ALTERNATIVE_RULE = "one tenth of the η at the smoothed loss's minimum"


def lr_at(i: int, start: float, end: float, steps: int) -> float:
    """η of step i (from 0): start·(end/start)^(i/(steps−1)); start for a one-step test."""
    if steps < 2:
        return start
    return start * (end / start) ** (i / (steps - 1))


def lr_schedule(start: float, end: float, steps: int) -> list[float]:
    return [lr_at(i, start, end, steps) for i in range(steps)]


def smooth(losses: Sequence[float], beta: float = BETA) -> list[float]:
    """The bias-corrected exponential moving average of ``losses``."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def should_stop(smoothed: Sequence[float]) -> bool:
    """The newest smoothed loss is past STOP_FACTOR × the minimum so far (or not finite)."""
    last = smoothed[-1]
    return not math.isfinite(last) or (len(smoothed) > 1 and last > STOP_FACTOR * min(smoothed))


def suggest(lrs: Sequence[float], smoothed: Sequence[float]) -> dict[str, Any]:
    """{suggested_lr, rule, min_lr, alternative_lr, alternative_rule}: the steepest descent of
    ``smoothed`` against log η (forward differences) before its minimum; one tenth of the
    η at the minimum. With too few points to take a slope, the alternative is the suggestion."""
    finite = [i for i, s in enumerate(smoothed) if math.isfinite(s)]
    best = min(finite, key=lambda i: smoothed[i])
    alternative = lrs[best] / 10
    first = int(len(smoothed) * SKIP_FRACTION)
    slopes = [((smoothed[i + 1] - smoothed[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])), i)
              for i in range(first, best)]
    steepest = min(slopes)[1] if slopes else None
    return {"suggested_lr": alternative if steepest is None else lrs[steepest], "rule": RULE,
            "min_lr": lrs[best], "alternative_lr": alternative,
            "alternative_rule": ALTERNATIVE_RULE}


def spread(suggestions: Sequence[float]) -> dict[str, float]:
    """How far the seeds' suggestions lie apart: min, max and the std of log10 η."""
    logs = [math.log10(s) for s in suggestions]
    mean = sum(logs) / len(logs)
    return {"min": min(suggestions), "max": max(suggestions),
            "log10_std": math.sqrt(sum((v - mean) ** 2 for v in logs) / len(logs))}


def lr_range_test(
    spec: Any, *, start: float, end: float, steps: int, seed: int | None = None,
    device: str = "cpu", data_root: PathLike | str | None = None,
    on_step: Callable[[int, float, float, float], None] | None = None,
) -> dict[str, Any]:
    """One sweep for the network ``spec`` describes (a single network, initialised from
    ``seed``, default the spec's): {seed, lrs, loss, smoothed_loss, stopped_early, **suggest}.
    ``on_step(i, η, loss, smoothed)`` after each minibatch."""
    from .loop import Stack
    from .optim import set_lr
    from .step import epoch_rows, run_epoch
    from .train import resolve_device

    seed = spec.seed if seed is None else seed
    single = spec.model_copy(update={"seed": seed, "ensemble": spec.ensemble.model_copy(
        update={"members": 1})})
    stack = Stack([single], [seed], resolve_device(device), data_root, own_data=False)
    lrs, losses, smoothed = [], [], []
    rows, used = None, stack.n_batches
    for i in range(steps):
        if used == stack.n_batches:  # a new pass over S_t in a new order
            rows = epoch_rows(single.optim.sampling, stack.n, stack.m, stack.n_batches,
                              stack.orders).to(stack.dev)
            used = 0
        lr = lr_at(i, start, end, steps)
        set_lr(stack.optimizer, lr)
        assert rows is not None
        loss, _ = run_epoch(stack.model, stack.optimizer, stack.flat_X, stack.flat_y,
                            rows[:, used * stack.m:], stack.m, 1, augment=stack.augment,
                            step0=i)
        used += 1
        value = float(loss.item())
        lrs.append(lr)
        losses.append(value)
        smoothed = smooth(losses)
        if on_step is not None:
            on_step(i, lr, value, smoothed[-1])
        if not math.isfinite(value) or should_stop(smoothed):
            break
    kept = [i for i, s in enumerate(smoothed) if math.isfinite(s)]
    if not kept:
        raise ValueError(f"the loss was not finite from the first step (η = {start:g})")
    return {"seed": seed, "lrs": lrs, "loss": losses, "smoothed_loss": smoothed,
            "stopped_early": len(lrs) < steps,
            **suggest([lrs[i] for i in kept], [smoothed[i] for i in kept])}
