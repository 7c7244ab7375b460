"""Forks (SPEC.md "Forks and controlled comparisons"): a new run that holds its parent's
points up to an epoch, copied, and that a worker trains on from there with changed
optimisation knobs (worker/engine/fork.py replays the parent to that epoch).

A fork is decided here, before anything trains: the change must be a knob (else 409), the
parent must have reached that epoch with finite figures, and be reachable there: from its
nearest stored snapshot (backend/runs/snapshots.py) or by replay from z0, which no η set by
hand before it allows (it is in no spec): then only that epoch's own snapshot will do (409).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.broker import enqueue_class_run, enqueue_run
from backend.config import get_settings
from backend.errors import Conflict, Unavailable
from backend.runs import snapshots
from backend.runs.models import MetricPoint, Run, RunBoundary, RunConfusion
from backend.runs.service import (
    check_queue_room,
    delete_run,
    get_run,
    lock_queue,
    log_points,
    new_run,
)
from backend.spec_errors import SpecInvalid
from backend.spec_limits import check_spec_limits
from worker.engine.forkspec import KNOBS, merged, not_knobs
from worker.engine.spec import parse_spec

# Series whose x counts minibatch steps, not epochs: the worker copies them once it knows
# where epoch e ends (worker/tasks.py).
STEP_SERIES = ("step_",)


def replay_path(parent: Run, epoch: int) -> list[list[Any]]:
    """How to replay ``parent`` to ``epoch``: [[spec, until epoch], ...] (engine/fork.py)."""
    if parent.forked_from is None:
        return [[parent.spec, epoch]]
    path = [list(s) for s in parent.forked_from["path"]]
    if epoch > parent.forked_from["epoch"]:
        return [*path, [parent.spec, epoch]]
    kept = [s for s in path if s[1] < epoch]
    cover = next(s for s in path if s[1] >= epoch)  # the segment that trained epoch e
    return [*kept, [cover[0], epoch]]


def _check_parent(session: Session, parent: Run, epoch: int) -> tuple[int | None, bool]:
    """(the parent's stored snapshot epoch to start from, or None: replay from z0; whether a
    replay from z0 would reproduce it). Conflict when neither reaches ``epoch``."""
    loss = session.scalar(select(MetricPoint.value).where(
        MetricPoint.run_id == parent.id, MetricPoint.key == "train_loss", MetricPoint.x == epoch))
    if loss is None or not math.isfinite(loss):
        raise Conflict(f"run {parent.id} has no finite epoch {epoch} to fork from (it has "
                       f"recorded {parent.epoch} epochs)")
    stored = snapshots.nearest(session=session, run_id=parent.id, epoch=epoch)
    by_hand = session.scalar(select(MetricPoint.x).where(
        MetricPoint.run_id == parent.id, MetricPoint.key == "events/lr",
        MetricPoint.x <= epoch).limit(1))
    if by_hand is None:
        return stored, True
    # A hand-set η holds for every later epoch and is in no spec: only that epoch's own
    # snapshot reaches it.
    if stored == epoch:
        return stored, False
    raise Conflict(f"η of run {parent.id} was set by hand at epoch {by_hand} and no snapshot "
                   f"of epoch {epoch} was kept: no replay reproduces it, so it cannot be "
                   f"forked there")


def _copy(session: Session, parent: Run, child: Run, epoch: int) -> None:
    """The parent's points, confusion matrices and boundaries of epochs ≤ ``epoch``."""
    rows = session.execute(select(MetricPoint.key, MetricPoint.x, MetricPoint.value).where(
        MetricPoint.run_id == parent.id, MetricPoint.x <= epoch)).all()
    log_points(session=session, points={child.id: [
        (key, x, value) for key, x, value in rows if not key.startswith(STEP_SERIES)]})
    for table in (RunConfusion, RunBoundary):
        for row in session.scalars(select(table).where(table.run_id == parent.id,
                                                       table.epoch <= epoch)):
            values = {c.name: getattr(row, c.name) for c in table.__table__.columns}
            session.add(table(**{**values, "run_id": child.id}))


def fork_run(*, session: Session, run_id: int, epoch: int, changes: dict[str, Any]) -> Run:
    """The fork, stored with its copied points and enqueued."""
    parent = get_run(session=session, run_id=run_id)
    try:
        spec = parse_spec(merged(parent.spec, changes))
    except ValidationError as exc:
        raise SpecInvalid.from_validation(exc, prefix=("spec",)) from None
    check_spec_limits(spec, get_settings())
    moved = not_knobs(parse_spec(parent.spec), spec)
    if moved:
        raise Conflict(f"a fork changes only optimisation knobs ({', '.join(KNOBS)}); "
                       f"{', '.join(moved)} would change z0 or the minibatch order: start a "
                       "new run instead")
    if epoch > parent.max_epochs:
        raise SpecInvalid.one("epoch", f"run {run_id} has {parent.max_epochs} epochs at most")
    stored, replayable = _check_parent(session, parent, epoch)
    lock_queue(session)
    run = new_run(spec)
    run.epoch = epoch
    run.forked_from = {"run": parent.id, "epoch": epoch, "path": replay_path(parent, epoch),
                       "snapshot": stored, "replayable": replayable}
    # A student's fork stays theirs, in their class's fair queue (classmates' runs answer 403
    # before this: backend/classes/guard.py).
    run.class_id, run.student, run.class_preset = (parent.class_id, parent.student,
                                                   parent.class_preset)
    session.add(run)
    session.flush()
    _copy(session, parent, run, epoch)
    check_queue_room(session=session, limit=get_settings().max_queued_runs)
    session.commit()
    try:
        if run.class_id is None:
            enqueue_run(run.id, run.queue)
        else:
            enqueue_class_run(run.id, run.class_id, run.queue)
    except Exception as exc:
        delete_run(session=session, run_id=run.id)
        raise Unavailable(f"the broker could not take the run: {type(exc).__name__}") from exc
    return run


def parent_step_points(*, session: Session, run_id: int, until: int) -> list[tuple[str, int,
                                                                                  float | None]]:
    """The run's step-level points with x ≤ ``until`` (a fork's copy of them; none if the
    parent was deleted meanwhile)."""
    rows = session.execute(select(MetricPoint.key, MetricPoint.x, MetricPoint.value).where(
        MetricPoint.run_id == run_id, MetricPoint.x <= until,
        MetricPoint.key.startswith(STEP_SERIES[0]))).all()
    return [(key, x, value) for key, x, value in rows]
