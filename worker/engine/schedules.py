"""Learning-rate schedules (COURSE.md §4) as one pure function of the epoch.

Epochs are counted from 1 (the first epoch of training is epoch 1), as in the metric series.
Tables and milestones count *completed* epochs, like the slide's "epoch 0 → 0.1, 75 → 0.01":
a table entry or milestone at k takes effect for training epoch k + 1. So
milestones [75, 125, 175] with γ = 0.1 and the table [[0, .1], [75, .01], [125, .001],
[175, .0001]] give the same rates: 0.1 for epochs 1–75, 0.01 for 76–125, and so on.
This is also what torch.optim.lr_scheduler.MultiStepLR does when stepped once per epoch.
"""

from __future__ import annotations

import bisect
import math

from .spec import ScheduleSpec


def lr_at(schedule: ScheduleSpec, base_lr: float, epoch: int, max_epochs: int) -> float:
    """η for training epoch ``epoch`` (from 1) of ``max_epochs``; ``base_lr`` is optim.lr.

    constant     η
    inv_sqrt     η / √epoch                      (COURSE.md §1 with t counted from 1)
    step         η · γ^(number of milestones < epoch)
    piecewise    the lr of the table entry with the largest table epoch ≤ epoch − 1;
                 η before the first entry (or with an empty table)
    exponential  η · γ^(epoch − 1)
    cosine       η · ½ (1 + cos(π (epoch − 1) / max_epochs))   (η at epoch 1, never 0)
    """
    if epoch < 1:
        raise ValueError(f"epochs count from 1, got {epoch}")
    kind = schedule.kind
    done = epoch - 1  # completed epochs before this one
    if kind == "constant":
        return base_lr
    if kind == "inv_sqrt":
        return base_lr / math.sqrt(epoch)
    if kind == "step":
        return base_lr * schedule.gamma ** sum(1 for m in schedule.milestones if m <= done)
    if kind == "piecewise":
        table = sorted(schedule.table)
        i = bisect.bisect_right([e for e, _ in table], done)
        return table[i - 1][1] if i > 0 else base_lr
    if kind == "exponential":
        return base_lr * schedule.gamma ** done
    if kind == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * done / max_epochs))
    raise ValueError(f"unknown schedule {kind!r}")
