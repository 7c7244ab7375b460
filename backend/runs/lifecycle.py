"""A run's life as the worker drives it: claim, record each epoch, finish.

Every transition is a conditional UPDATE, so the database (not the broker) decides who may
execute a run: a message delivered twice, or to a second worker, claims nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.db import utcnow
from backend.errors import NotFound
from backend.runs.models import Run, RunModel
from backend.runs.service import Point, log_batch


class RunGone(NotFound):
    """The run was deleted while it trained."""


def claim_run(*, session: Session, run_id: int, worker: str) -> Run | None:
    now = utcnow()
    claimed = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == "queued")
        .values(status="running", started_at=now, heartbeat_at=now, worker=worker,
                attempt=Run.attempt + 1)
    ).rowcount
    session.commit()
    return session.get(Run, run_id) if claimed else None


def record_epoch(*, session: Session, run_id: int, epoch: int, points: Iterable[Point]) -> None:
    """One transaction per flush: the points and the progress they represent."""
    changed = session.execute(
        update(Run).where(Run.id == run_id).values(epoch=epoch, heartbeat_at=utcnow())
    ).rowcount
    if not changed:
        session.rollback()
        raise RunGone(f"run {run_id} was deleted")
    log_batch(session=session, run_id=run_id, points=points)
    session.commit()


def read_controls(*, session: Session, run_id: int) -> tuple[bool, float | None]:
    """(cancel requested, η requested by hand) for the running worker."""
    row = session.execute(
        select(Run.cancel_requested, Run.requested_lr).where(Run.id == run_id)
    ).first()
    if row is None:
        raise RunGone(f"run {run_id} was deleted")
    return bool(row[0]), row[1]


def finish_run(
    *, session: Session, run_id: int, status: str, result: dict[str, Any] | None = None,
    error: str | None = None, model: bytes | None = None,
) -> None:
    """The final status, result and returned model z*, in one transaction."""
    if model is not None and session.get(Run, run_id) is not None:
        session.merge(RunModel(run_id=run_id, blob=model, created_at=utcnow()))
    session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(status=status, result=result, error=error, finished_at=utcnow())
    )
    session.commit()
