"""A run's life as the worker drives it: claim, record each epoch, finish.

Every transition is a conditional UPDATE, so the database (not the broker) decides who may
execute a run: a message delivered twice, or to a second worker, claims nothing. Each claim
draws a fresh random token stored on the run, and every later write of the worker (points,
progress, boundaries, checkpoints, heartbeats, the final status, result and model) must name
it: a worker whose run was deleted, recovered or re-claimed writes nothing anywhere, whatever
ids or attempt numbers happen to match.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from backend.db import utcnow
from backend.errors import Conflict, NotFound
from backend.runs import blobs
from backend.runs.models import Run, RunCheckpoint, RunModel, RunSnapshot
from backend.runs.service import Point, insert_for, log_boundaries, log_confusions, log_points
from backend.runs.trajectory import Sketch, log_trajectory


class RunGone(NotFound):
    """The run was deleted while it trained."""


class LeaseLost(Conflict):
    """This attempt no longer owns the run (it was recovered and re-queued): stop at once."""


def _lost(session: Session, run_id: int) -> Exception:
    session.rollback()
    if session.get(Run, run_id) is None:
        return RunGone(f"run {run_id} was deleted")
    return LeaseLost(f"run {run_id} is owned by another attempt now")


def _owned(run_id: int, token: str) -> Any:
    return (Run.id == run_id) & (Run.token == token) & (Run.status == "running")


def claim_run(*, session: Session, run_id: int, worker: str, **also: Any) -> Run | None:
    """The run, now ``running`` under a new attempt and a new ``token`` (which every later
    write of this attempt must name), or None if it was not queued. ``also``: more columns
    set by the same statement (a class run's ``class_seq``)."""
    now = utcnow()
    claimed = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == "queued")
        .values(status="running", started_at=now, heartbeat_at=now, worker=worker,
                attempt=Run.attempt + 1, token=uuid.uuid4().hex, **also)
    ).rowcount
    session.commit()
    # Read back, not from the session's cache: a run created in this session holds no token.
    return session.get(Run, run_id, populate_existing=True) if claimed else None


def unpack_runs(*, session: Session, leases: Iterable[tuple[int, str]]) -> None:
    """The runs of a pack train one by one after all: each is steered alone again (η).
    ``leases``: (run id, token) of each; a run no longer ours is left as it is."""
    owned = [_owned(run_id, token) for run_id, token in leases]
    if owned:
        session.execute(update(Run).where(or_(*owned)).values(pack=None))
    session.commit()


class EpochUpdate(NamedTuple):
    """What one flush writes for one run, if ``token`` still owns it."""

    run_id: int
    token: str
    epoch: int
    points: Iterable[Point]
    boundaries: Iterable[tuple[int, dict[str, Any]]] = ()
    checkpoint: bytes | None = None
    snapshots: Iterable[tuple[int, bytes]] = ()  # (epoch, bytes) kept for forks
    # (epoch, matrix) on S_v, in the points' transaction: a viewer told of an epoch's
    # validation points finds its matrix (a second commit left a moment of 404s).
    confusions: Iterable[tuple[int, list[list[int]]]] = ()
    sketches: Iterable[tuple[int, Sketch]] = ()  # (epoch, weight sketch): the landscape's path


Controls = tuple[bool, float | None]  # (cancel requested, η requested by hand)


def record_epoch(
    *, session: Session, run_id: int, token: str, epoch: int, points: Iterable[Point],
    boundaries: Iterable[tuple[int, dict[str, Any]]] = (), checkpoint: bytes | None = None,
    snapshots: Iterable[tuple[int, bytes]] = (),
    confusions: Iterable[tuple[int, list[list[int]]]] = (),
    sketches: Iterable[tuple[int, Sketch]] = (),
) -> Controls:
    """One transaction per flush: the points, the progress they represent, the epochs' weight
    sketches and, sometimes, the checkpoint of that same epoch — if the run is still ours. Returns the live controls
    (cancel requested, η requested by hand), read by the same statement."""
    answer = record_epochs(session=session, updates=[
        EpochUpdate(run_id, token, epoch, points, boundaries, checkpoint, snapshots, confusions,
                    sketches)])
    if run_id not in answer:
        raise _lost(session, run_id)
    return answer[run_id]


def record_epochs(*, session: Session, updates: Iterable[EpochUpdate]) -> dict[int, Controls]:
    """``record_epoch`` for several runs (a pack's members) in one transaction and a few
    statements whatever their number. A run no longer ours (deleted, or taken over) has
    nothing written and is left out of the answer, {run id: controls}."""
    updates = list(updates)
    if not updates:
        return {}
    owned = session.execute(
        update(Run).where(or_(*(_owned(u.run_id, u.token) for u in updates)))
        .values(epoch=case({u.run_id: u.epoch for u in updates}, value=Run.id),
                heartbeat_at=utcnow())
        .returning(Run.id, Run.attempt, Run.cancel_requested, Run.requested_lr)
        .execution_options(synchronize_session=False)
    ).all()
    answer = {run_id: (bool(cancel), lr) for run_id, _, cancel, lr in owned}
    attempts = {run_id: attempt for run_id, attempt, _, _ in owned}
    log_points(session=session, points={u.run_id: u.points for u in updates if u.run_id in answer})
    checkpoints = []
    kept = [{"run_id": u.run_id, "epoch": e, "size": len(data), "data": data}
            for u in updates if u.run_id in answer for e, data in u.snapshots]
    if kept:  # an epoch a taken-over attempt stores again keeps its first snapshot
        session.execute(insert_for(session)(RunSnapshot.__table__).on_conflict_do_nothing(), kept)
    for u in updates:
        if u.run_id not in answer:
            continue
        log_boundaries(session=session, run_id=u.run_id, grids=u.boundaries)
        log_confusions(session=session, run_id=u.run_id, matrices=u.confusions)
        log_trajectory(session=session, run_id=u.run_id, sketches=u.sketches)
        if u.checkpoint is not None:
            checkpoints.append({"run_id": u.run_id, "attempt": attempts[u.run_id],
                                "epoch": u.epoch,
                                "size": blobs.write_blob(session, "checkpoint", u.run_id,
                                                         u.checkpoint),
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


def beat_run(*, session: Session, run_id: int, token: str) -> bool:
    """Keep the lease alive between flushes (long epochs); False if it was lost."""
    changed = session.execute(
        update(Run).where(_owned(run_id, token)).values(heartbeat_at=utcnow())
    ).rowcount
    session.commit()
    return bool(changed)


def finish_run(
    *, session: Session, run_id: int, token: str, status: str,
    result: dict[str, Any] | None = None, error: str | None = None, model: bytes | None = None,
) -> None:
    """The final status, result and returned model z*, in one transaction, if still ours."""
    changed = session.execute(
        update(Run)
        .where(_owned(run_id, token))
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
