"""LR range tests (POST /api/lr-range-tests): a run of kind "lr_range" that the worker sweeps
η over instead of training (worker/engine/lr_range.py). Its loss series are stored per
minibatch i (metric x is an integer); the API gives them with x = η_i, which the schedule
determines exactly from the run's options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from backend.broker import enqueue_run
from backend.config import get_settings
from backend.errors import Unavailable
from backend.runs import service
from backend.runs.models import Run
from backend.spec_limits import check_spec_limits
from worker.engine.lr_range import lr_at
from worker.engine.spec import Spec

KIND = "lr_range"
SEEDS = 3  # the suggestion's spread is taken over this many sweeps
SERIES = ("lr_range/loss", "lr_range/smoothed_loss")


class LrRangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    spec: Spec = Field(default_factory=Spec, description="The network and data to sweep η on.")
    start: float = Field(1e-6, gt=0, le=100, description="η of the first minibatch.")
    end: float = Field(10.0, gt=0, le=1000, description="η of the last minibatch.")
    steps: int = Field(100, ge=5, le=2000, description="Minibatches of the sweep (at most).")

    @model_validator(mode="after")
    def _grows(self) -> LrRangeIn:
        if self.end <= self.start:
            raise ValueError("end must be larger than start (η grows from start to end)")
        return self


def submit(*, session: Session, body: LrRangeIn) -> Run:
    spec = body.spec
    check_spec_limits(spec, get_settings())
    service.lock_queue(session)
    run = service.new_run(spec)
    run.name = spec.name or "LR range test"
    run.kind, run.max_epochs = KIND, SEEDS  # progress: sweeps done
    run.options = {"start": body.start, "end": body.end, "steps": body.steps, "seeds": SEEDS}
    session.add(run)
    session.flush()
    service.check_queue_room(session=session, limit=get_settings().max_queued_runs)
    session.commit()
    try:
        enqueue_run(run.id, run.queue)
    except Exception as exc:
        service.delete_run(session=session, run_id=run.id)
        raise Unavailable(f"the broker could not take the run: {type(exc).__name__}") from exc
    return run


def eta_axis(run: Run, series: Mapping[str, list[list[Any]]]) -> dict[str, list[list[Any]]]:
    """``series`` with x = η for an LR range test's loss series (stored with x = step i)."""
    if run.kind != KIND or not run.options:
        return dict(series)
    o = run.options
    return {key: [[lr_at(int(x), o["start"], o["end"], o["steps"]), v] for x, v in points]
            if key in SERIES else points for key, points in series.items()}
