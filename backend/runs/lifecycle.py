"""A run's life as the worker drives it: claim, record each epoch, finish.

Every transition is a conditional UPDATE, so the database (not the broker) decides who may
execute a run: a message delivered twice, or to a second worker, claims nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from backend.db import utcnow
from backend.errors import Conflict, NotFound
from backend.runs import blobs
from backend.runs.models import Run, RunCheckpoint, RunModel
from backend.runs.service import Point, insert_for, log_boundaries, log_points


class RunGone(NotFound):
    """The run was deleted while it trained."""


class LeaseLost(Conflict):
    """This attempt no longer owns the run (it was recovered and re-queued): stop at once."""


def _lost(session: Session, run_id: int) -> Exception:
    session.rollback()
    if session.get(Run, run_id) is None:
        return RunGone(f"run {run_id} was deleted")
    return LeaseLost(f"run {run_id} is owned by another attempt now")


def _owned(run_id: int, attempt: int) -> Any:
    return (Run.id == run_id) & (Run.attempt == attempt) & (Run.status == "running")


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


def unpack_runs(*, session: Session, run_ids: list[int]) -> None:
    """The runs of a pack train one by one after all: each is steered alone again (η)."""
    session.execute(update(Run).where(Run.id.in_(run_ids)).values(pack=None))
    session.commit()


def record_epoch(
    *, session: Session, run_id: int, attempt: int, epoch: int, points: Iterable[Point],
    boundaries: Iterable[tuple[int, dict[str, Any]]] = (), checkpoint: bytes | None = None,
) -> tuple[bool, float | None]:
    """One transaction per flush: the points, the progress they represent and, sometimes, the
    checkpoint of that same epoch — if the run is still ours. Returns the live controls
    (cancel requested, η requested by hand), read by the same statement."""
    answer = record_epochs(session=session,
                           updates=[(run_id, attempt, epoch, points, boundaries, checkpoint)])
    if run_id not in answer:
        raise _lost(session, run_id)
    return answer[run_id]


Update = tuple[int, int, int, Iterable[Point], Iterable[tuple[int, dict[str, Any]]], bytes | None]


def record_epochs(*, session: Session, updates: Iterable[Update]) -> dict[int, tuple[bool, float | None]]:
    """``record_epoch`` for several runs — a pack's members, each (run id, attempt, epoch,
    points, boundaries, checkpoint) — in one transaction and a few statements whatever their
    number. A run no longer ours (deleted, or taken over) has nothing written and is left out
    of the answer, {run id: controls}."""
    updates = list(updates)
    owned = session.execute(
        update(Run).where(or_(*(_owned(run_id, attempt) for run_id, attempt, *_ in updates)))
        .values(epoch=case({u[0]: u[2] for u in updates}, value=Run.id), heartbeat_at=utcnow())
        .returning(Run.id, Run.cancel_requested, Run.requested_lr)
        .execution_options(synchronize_session=False)
    ).all()
    answer = {run_id: (bool(cancel), lr) for run_id, cancel, lr in owned}
    log_points(session=session, points={u[0]: u[3] for u in updates if u[0] in answer})
    checkpoints = []
    for run_id, attempt, epoch, _, boundaries, checkpoint in updates:
        if run_id not in answer:
            continue
        log_boundaries(session=session, run_id=run_id, grids=boundaries)
        if checkpoint is not None:
            checkpoints.append({"run_id": run_id, "attempt": attempt, "epoch": epoch,
                                "size": blobs.write_blob(session, "checkpoint", run_id,
                                                         checkpoint),
                                "created_at": utcnow()})
    if checkpoints:  # one upsert for them all: a run keeps only its newest checkpoint
        stmt = insert_for(session)(RunCheckpoint.__table__)
        session.execute(stmt.on_conflict_do_update(index_elements=["run_id"], set_={
            name: stmt.excluded[name] for name in ("attempt", "epoch", "size", "created_at")}),
            checkpoints)
    session.commit()
    return answer


def load_checkpoint(*, session: Session, run_id: int) -> tuple[int, bytes] | None:
    """(epoch, snapshot bytes) of the newest checkpoint, for an attempt taking a run over."""
    epoch = session.scalar(select(RunCheckpoint.epoch).where(RunCheckpoint.run_id == run_id))
    return None if epoch is None else (epoch, blobs.read_blob(session, "checkpoint", run_id))


def beat_run(*, session: Session, run_id: int, attempt: int) -> bool:
    """Keep the lease alive between flushes (long epochs); False if it was lost."""
    changed = session.execute(
        update(Run).where(_owned(run_id, attempt)).values(heartbeat_at=utcnow())
    ).rowcount
    session.commit()
    return bool(changed)


def finish_run(
    *, session: Session, run_id: int, attempt: int, status: str,
    result: dict[str, Any] | None = None, error: str | None = None, model: bytes | None = None,
) -> None:
    """The final status, result and returned model z*, in one transaction, if still ours."""
    changed = session.execute(
        update(Run)
        .where(_owned(run_id, attempt))
        .values(status=status, result=result, error=error, finished_at=utcnow())
    ).rowcount
    if not changed:
        raise _lost(session, run_id)
    if model is not None:
        size = blobs.write_blob(session, "model", run_id, model)
        session.merge(RunModel(run_id=run_id, size=size, created_at=utcnow()))
    # A finished run never resumes: its checkpoint would only take space.
    session.execute(delete(RunCheckpoint).where(RunCheckpoint.run_id == run_id))
    blobs.delete_blob(session, "checkpoint", run_id)
    session.commit()
