"""Live control of a run through the database, so it works on every broker.

The API records a request; the worker reads it once per epoch (cancel after the epoch, η from
the next one) and records the change it applied as a point of the ``events/lr`` series.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from backend.db import utcnow
from backend.errors import Conflict
from backend.runs.models import FINAL_STATUSES, Run
from backend.runs.service import get_run


def _live(session: Session, run_id: int) -> Run:
    run = get_run(session=session, run_id=run_id)
    if run.status in FINAL_STATUSES:
        raise Conflict(f"run {run_id} has already ended ({run.status})")
    return run


def request_cancel(*, session: Session, run_id: int) -> Run:
    _live(session, run_id)
    # A queued run is cancelled at once; the worker that later receives it claims nothing.
    session.execute(
        update(Run).where(Run.id == run_id, Run.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=utcnow())
    )
    session.execute(update(Run).where(Run.id == run_id).values(cancel_requested=True))
    session.commit()
    session.expire_all()
    return get_run(session=session, run_id=run_id)


def request_lr(*, session: Session, run_id: int, lr: float) -> Run:
    run = _live(session, run_id)
    if run.pack is not None:
        # One stacked network has one η: a hand-set η would change every run of the pack.
        raise Conflict(
            f"run {run_id} trains packed with the other seeds of its study (pack {run.pack}), "
            f"which share one η; create the study with \"pack\": false to steer runs one by one"
        )
    run.requested_lr = lr
    session.commit()
    return run
