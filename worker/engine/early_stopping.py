"""The best model z* and early stopping, exactly as COURSE.md §3 writes the loop:

    t ← 0; T ← p; z* ← z
    while t < T:
        one epoch of minibatch updates
        if Accuracy(z, S_v) > Accuracy(z*, S_v):  z* ← z;  T ← t + p
        t ← t + 1
    return z*

Training epoch e (from 1) is the slide's t = e − 1. Taken literally the loop runs p − 1 more
epochs after the best one (an improvement at epoch e sets T = e − 1 + p, the last epoch run).
The lab follows the slide on purpose and says so where a run is shown. z* starts as the
initial model, so "best epoch 0" means no epoch beat the untrained network.
"""

from __future__ import annotations

import math


class EarlyStopping:
    """Tracks z*'s score and the slide's deadline T. patience None: only track z*."""

    def __init__(self, patience: int | None, monitor: str, initial: float) -> None:
        if monitor not in ("val_accuracy", "val_loss"):
            raise ValueError(f"cannot monitor {monitor!r}")
        self.patience = patience
        self.higher_is_better = monitor == "val_accuracy"
        self.best_value = initial  # score of the initial model: z* ← z before any epoch
        self.best_epoch = 0
        self.deadline = patience  # T, in the slide's t units

    def update(self, epoch: int, value: float) -> bool:
        """Record epoch ``epoch``'s score; True when z* ← z (strictly better: ties keep the
        older model). NaN never counts as better."""
        if math.isnan(value):
            return False
        better = value > self.best_value if self.higher_is_better else value < self.best_value
        if math.isnan(self.best_value):
            better = True
        if better:
            self.best_value = value
            self.best_epoch = epoch
            if self.patience is not None:
                self.deadline = (epoch - 1) + self.patience  # T ← t + p with t = e − 1
        return better

    def should_stop(self, epoch: int) -> bool:
        """After epoch e the slide has done t ← t + 1, so t = e; it stops when t ≥ T."""
        return self.deadline is not None and epoch >= self.deadline


def replay(values: list[float | None], patience: int | None, monitor: str,
           initial: float | None) -> tuple[int, int, bool]:
    """(best epoch, stopped epoch, whether patience stopped it) that this rule gives on a stored
    validation curve (epoch e's score at index e − 1; None for a non-finite one), starting from
    z0's score ``initial`` (None: unknown, so epoch 1 sets z*). Where patience has not run out
    the curve's end is the stop: the early-stopping what-if (backend) and the loop
    (``EarlyStopping``) are one rule."""
    nan = math.nan
    stopper = EarlyStopping(patience, monitor, nan if initial is None else initial)
    for epoch, value in enumerate(values, start=1):
        stopper.update(epoch, nan if value is None else value)
        if stopper.should_stop(epoch):
            return stopper.best_epoch, epoch, True
    return stopper.best_epoch, len(values), False
