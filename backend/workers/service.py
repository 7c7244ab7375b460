"""Worker registry: register, beat, list the live ones, forget on exit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.config import get_settings
from backend.db import utcnow as now
from backend.workers.models import Worker

# A worker that has missed this many heartbeats is not listed as alive (it was killed; a worker
# that stops cleanly forgets itself at once).
MISSED_BEATS = 3


def register_worker(*, session: Session, name: str, device: str, threads: int, queues: str) -> None:
    worker = session.get(Worker, name) or Worker(name=name, started_at=now())
    worker.device, worker.threads, worker.queues = device, threads, queues
    worker.current_run_id, worker.heartbeat_at = None, now()
    session.merge(worker)
    session.commit()


def beat(*, session: Session, name: str, current_run_id: int | None) -> bool:
    """False when the worker is not registered (it should register again)."""
    worker = session.get(Worker, name)
    if worker is None:
        return False
    worker.heartbeat_at, worker.current_run_id = now(), current_run_id
    session.commit()
    return True


def forget_worker(*, session: Session, name: str) -> None:
    session.execute(delete(Worker).where(Worker.name == name))
    session.commit()


def live_workers(*, session: Session) -> list[Worker]:
    since = now() - timedelta(seconds=MISSED_BEATS * get_settings().heartbeat_seconds)
    return list(session.scalars(select(Worker).where(Worker.heartbeat_at >= since)))


def served_queues(*, session: Session) -> set[str]:
    """The queues some live worker consumes."""
    return {queue for worker in live_workers(session=session)
            for queue in (worker.queues or "").split(",") if queue}


def waiting_for(queue: str, served: set[str]) -> str | None:
    """What a run queued on ``queue`` waits for, when no live worker serves it (else None)."""
    if queue in served:
        return None
    kind = "a GPU worker" if queue == "gpu" else "a worker"
    return f"waits for {kind} serving the {queue} queue: none is live"
