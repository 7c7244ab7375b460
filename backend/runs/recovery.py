"""Recover runs whose worker died: re-queue them, or fail them after too many attempts.

Recovery never depends on the broker (the embedded one forgets a SIGKILLed worker's message):
a running run whose heartbeat is older than the timeout is taken back with a conditional
UPDATE, so several API processes may run this side by side and only one acts.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.db import utcnow
from backend.runs.models import Run

log = logging.getLogger(__name__)


def recover_stale_runs(
    *, session: Session, timeout_seconds: float, max_attempts: int
) -> list[tuple[int, str, str]]:
    """[(run id, queue, "requeued" | "failed")] for the runs taken back."""
    cutoff = utcnow() - timedelta(seconds=timeout_seconds)
    stale = session.execute(
        select(Run.id, Run.attempt, Run.queue, Run.worker)
        .where(Run.status == "running", Run.heartbeat_at < cutoff)
    ).all()
    actions = []
    for run_id, attempt, queue, worker in stale:
        still_stale = (Run.id == run_id) & (Run.status == "running") & (Run.attempt == attempt) \
            & (Run.heartbeat_at < cutoff)
        if attempt < max_attempts:
            values = {"status": "queued", "worker": None}
            action = "requeued"
        else:
            values = {
                "status": "failed", "finished_at": utcnow(),
                "error": f"worker {worker} stopped answering (no heartbeat for "
                         f"{timeout_seconds:.0f} s) and {attempt} attempts are used up",
            }
            action = "failed"
        if session.execute(update(Run).where(still_stale).values(**values)).rowcount:
            actions.append((run_id, queue, action))
            log.warning("run %s: worker %s lost at attempt %s: %s", run_id, worker, attempt, action)
    session.commit()
    return actions
