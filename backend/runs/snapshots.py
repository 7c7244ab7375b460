"""Snapshots kept for forks: a run's resumable state (loop.Snapshot bytes) after some of its
epochs, within a byte budget per run (``EPOQUE_FORK_SNAPSHOT_MB``), so a fork from epoch e
starts from the stored epoch nearest below e instead of replaying the run from z0.

Which epochs: every epoch when they all fit; else the powers of two (early epochs, where the
curves change fastest) and evenly spaced epochs with what the budget leaves, so replay from the
nearest one costs at most that spacing. Unlike the crash checkpoint (lifecycle.py), they stay
after the run ends and go with it (ON DELETE CASCADE).
"""

from __future__ import annotations

import math

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.runs.models import RunSnapshot


def snapshot_epochs(max_epochs: int, size: int, budget: int) -> frozenset[int]:
    """The epochs of a ``max_epochs`` run whose ``size``-byte snapshots fit ``budget`` bytes."""
    slots = budget // max(size, 1)
    if slots >= max_epochs:
        return frozenset(range(1, max_epochs + 1))
    if slots < 1:
        return frozenset()
    powers = sorted(2**k for k in range(max_epochs.bit_length()) if 2**k <= max_epochs)
    left = slots - len(powers)
    if left <= 0:
        return frozenset(powers[:slots])
    stride = math.ceil(max_epochs / left)
    return frozenset(powers) | frozenset(range(stride, max_epochs + 1, stride))


def nearest(*, session: Session, run_id: int, epoch: int) -> int | None:
    """The run's latest stored snapshot epoch at or before ``epoch``, or None."""
    return session.scalar(select(func.max(RunSnapshot.epoch)).where(
        RunSnapshot.run_id == run_id, RunSnapshot.epoch <= epoch))


def load(*, session: Session, run_id: int, epoch: int) -> bytes | None:
    row = session.get(RunSnapshot, (run_id, epoch))
    return None if row is None else row.data


def stored_epochs(*, session: Session, run_id: int) -> list[int]:
    return list(session.scalars(select(RunSnapshot.epoch).where(RunSnapshot.run_id == run_id)
                                .order_by(RunSnapshot.epoch)))
