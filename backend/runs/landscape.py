"""Loss landscapes (GET /api/runs/{id}/landscape): the first GET of a resolution queues the
computation on the worker (worker/landscape_job.py) and answers 202 with its progress, later
ones 202 until it is done, then 200 with the stored result. The path comes from the weight
sketches the run stored per epoch (backend/runs/trajectory.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from backend.broker import enqueue_landscape
from backend.db import utcnow
from backend.errors import Conflict, Unavailable
from backend.runs import service
from backend.runs.models import RunLandscape

# A queued or running landscape not touched for this long lost its worker (its progress is
# written at least every row of the grid): the next request queues it again.
STALE_SECONDS = 600


def get_or_start(*, session: Session, run_id: int, resolution: int,
                 now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """(200, the landscape) once computed; else (202, {status, progress}), queuing it first if
    nobody asked for it yet, or again if it went stale (``now``: the clock, for tests). A failed
    computation answers 409 with its reason, once: the next GET starts it again."""
    now = now or utcnow()
    service.model_info(session=session, run_id=run_id)  # 409 while the run has no model
    run = service.get_run(session=session, run_id=run_id)
    if (run.spec.get("ensemble") or {}).get("members", 1) > 1:
        raise Conflict(f"run {run_id} is an ensemble: the loss landscape is drawn for a single "
                       "network")
    row = session.get(RunLandscape, (run_id, resolution))
    if row is not None and row.status == "done":
        return 200, {**(row.result or {}), "status": "done", "progress": 1.0}
    if row is not None and row.status == "failed":
        error = row.error
        session.delete(row)
        session.commit()
        raise Conflict(f"the loss landscape of run {run_id} could not be computed: {error}")
    stale = row is not None and now - row.updated_at > timedelta(seconds=STALE_SECONDS)
    if row is None or stale:
        if row is None:
            row = RunLandscape(run_id=run_id, resolution=resolution, created_at=now)
            session.add(row)
        row.status, row.progress, row.updated_at = "queued", 0.0, now
        session.commit()
        try:
            enqueue_landscape(run_id, resolution, run.queue)
        except Exception as exc:
            session.execute(delete(RunLandscape).where(RunLandscape.run_id == run_id,
                                                       RunLandscape.resolution == resolution))
            session.commit()
            raise Unavailable(f"the broker could not take the task: {type(exc).__name__}") from exc
    return 202, {"status": row.status, "progress": row.progress, "resolution": resolution}
