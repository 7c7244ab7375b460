"""What the API says about a run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from backend.public_text import public_text
from backend.runs.models import Run
from backend.workers.service import waiting_for


class Progress(BaseModel):
    epoch: int
    max_epochs: int


class RunOut(BaseModel):
    id: int
    name: str | None
    status: str
    spec: dict[str, Any]
    study_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    progress: Progress
    result: dict[str, Any] | None
    attempt: int
    worker: str | None
    pack: int | None = None  # first run id of the pack it trains in (seed studies)
    # Why a queued run does not start: no live worker serves its queue (e.g. device cuda on a
    # lab without a GPU worker). None when some worker will take it.
    waiting: str | None = None
    # Classrooms: the class and student (id; None: the teacher) it was launched for.
    class_id: int | None = None
    student: int | None = None
    kind: str = "train"  # or "lr_range": an LR range test (options: start, end, steps, seeds)
    options: dict[str, Any] | None = None
    # A fork's parent run and the epoch it forked at (SPEC.md: forked_from {run, epoch}).
    forked_from: dict[str, int] | None = None
    # Whether this request's sender may cancel, fork, set η of or delete it (a class's student:
    # her own runs only; backend/classes/service.may_change). None where the answer is shared
    # by every viewer (the stream, a study's runs): keep what the run's own GET said.
    can_control: bool | None = None

    @classmethod
    def of(cls, run: Run, served: set[str] | None = None) -> RunOut:
        """``served``: the queues live workers consume, to say what a queued run waits for."""
        waiting = None
        if served is not None and run.status == "queued":
            waiting = waiting_for(run.queue, served)
        return cls(
            id=run.id, name=run.name, status=run.status, spec=run.spec, study_id=run.study_id,
            created_at=run.created_at, started_at=run.started_at, finished_at=run.finished_at,
            error=run.error and public_text(run.error), progress=Progress(epoch=run.epoch, max_epochs=run.max_epochs),
            result=run.result, attempt=run.attempt, worker=run.worker, pack=run.pack,
            waiting=waiting, class_id=run.class_id, student=run.student,
            kind=run.kind or "train", options=run.options, forked_from=run.forked_from and {
                "run": run.forked_from["run"], "epoch": run.forked_from["epoch"]},
        )


class MetricsOut(BaseModel):
    series: dict[str, list[list[float | None]]]
    cursor: int
