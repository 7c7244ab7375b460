"""Forks: a run that reproduces another's first epochs, then goes on with changed
optimisation knobs (SPEC.md "Forks and controlled comparisons").

Where a fork starts is the parent's snapshot after its epoch e (loop.Snapshot: weights,
optimiser state, z*, the early-stopping deadline and every random stream): a stored one (the
worker keeps some per run, backend/runs/snapshots.py) or one got by replay from the nearest
stored epoch before e, or from z0: training the parent's spec with the same seed is
deterministic on one device, so it lands on the parent's state exactly.
The snapshot is then given the child's knobs (``with_knobs``) and training resumes from it:
epoch e+1 on is what a run given the new knobs from epoch e+1 on would do.
"""

from __future__ import annotations

from os import PathLike
from typing import Any

from .datasets import load_dataset
from .loop import Callbacks, Snapshot
from .spec import Spec
from .train import train


class ForkUnavailable(Exception):
    """The parent cannot be brought to that epoch (it diverged or stopped before it)."""


class _Reached(Exception):
    pass


def replay(spec: Spec, epoch: int, *, device: str | None = None,
           data_root: PathLike | str | None = None,
           start: dict[str, Any] | None = None) -> dict[str, Any]:
    """The snapshot of ``spec``'s run after ``epoch``. ``start``: a snapshot of that run at an
    earlier epoch (or at ``epoch`` itself) to replay from, else z0."""
    got: dict[str, Any] = {}

    def on_checkpoint(e: int, snapshot: Any) -> None:
        if e == epoch:
            got["snapshot"] = snapshot()
            raise _Reached

    if start is not None and start["epoch"] == epoch:
        return start
    try:
        train(spec, Callbacks(on_checkpoint=on_checkpoint), device=device,
              data_root=data_root, resume=start)
    except _Reached:
        return got["snapshot"]
    raise ForkUnavailable(f"the run stops (or diverges) before epoch {epoch}")


def steps_per_epoch(spec: Spec, data_root: PathLike | str | None = None) -> int:
    """⌊n/m⌋, the minibatch steps of one epoch (loop.Stack): where a step-level series of the
    run's epoch e ends (x = e·⌊n/m⌋)."""
    n = len(load_dataset(spec, data_root).y_train)
    m = n if spec.optim.batch_size == "full" else min(spec.optim.batch_size, n)
    return n // m


def with_knobs(snapshot: dict[str, Any], spec: Spec) -> dict[str, Any]:
    """The snapshot as a run of ``spec`` would hold it: the optimiser's momentum and λ (η is
    set before every epoch from the schedule), and each tracker's deadline from its z*'s epoch
    and the new patience p (T = best epoch − 1 + p, or p while z* is z0: EarlyStopping)."""
    snap = Snapshot.from_dict(snapshot).to_dict()
    optim = spec.optim
    for group in snap["optimizer"]["param_groups"]:
        group["weight_decay"] = optim.weight_decay if group.get("kind") == "weights" else 0.0
        if "momentum" in group:
            group["momentum"] = optim.momentum
    p = spec.training.early_stopping.patience
    for stopper in snap["stoppers"]:
        best = stopper["best_epoch"]
        stopper["deadline"] = None if p is None else (p if best == 0 else best - 1 + p)
    return snap


def start_of_fork(path: list[tuple[Spec, int]], child: Spec, *, device: str | None = None,
                  data_root: PathLike | str | None = None,
                  start: dict[str, Any] | None = None) -> dict[str, Any]:
    """The snapshot ``train(child, resume=…)`` forks from. ``path``: how the parent reached the
    fork's epoch, as (spec, until epoch) segments: one, (parent spec, e), for a parent trained
    from z0; a fork of a fork first replays its own parent's segments, each later segment
    resuming the one before with its knobs. ``start``: a stored snapshot of the first segment's
    run to replay from instead of z0."""
    snapshot = start
    for i, (spec, until) in enumerate(path):
        begin = snapshot if i == 0 or snapshot is None else with_knobs(snapshot, spec)
        snapshot = replay(spec, until, device=device, data_root=data_root, start=begin)
    if snapshot is None:
        raise ForkUnavailable("nothing to replay")
    return with_knobs(snapshot, child)
