"""HTTP routes of runs: thin, parse → service → answer."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import ValidationError

from backend.broker import enqueue_run
from backend.deps import SessionDep
from backend.errors import Unavailable
from backend.runs import service
from backend.runs.schemas import MetricsOut, RunOut
from backend.spec_errors import SpecInvalid
from worker.engine.spec import parse_spec

router = APIRouter(prefix="/api/runs", tags=["runs"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RunOut)
def create_run(session: SessionDep, spec: Annotated[dict[str, Any], Body()]) -> RunOut:
    try:
        parsed = parse_spec(spec)
    except ValidationError as exc:
        raise SpecInvalid(exc) from None
    run = service.create_run(session=session, spec=parsed)
    try:
        enqueue_run(run.id, run.queue)
    except Exception as exc:
        # Nothing half-created: a run that no worker will ever see is removed again.
        service.delete_run(session=session, run_id=run.id)
        raise Unavailable(f"the broker could not take the run: {type(exc).__name__}") from exc
    return RunOut.of(run)


@router.get("", response_model=list[RunOut])
def list_runs(
    session: SessionDep,
    status: str | None = None,
    study_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[RunOut]:
    runs = service.list_runs(
        session=session, status=status, study_id=study_id, limit=limit, offset=offset
    )
    return [RunOut.of(run) for run in runs]


@router.get("/{run_id}", response_model=RunOut)
def get_run(run_id: int, session: SessionDep) -> RunOut:
    return RunOut.of(service.get_run(session=session, run_id=run_id))


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_run(run_id: int, session: SessionDep) -> Response:
    service.delete_run(session=session, run_id=run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _keys(keys: str | None) -> list[str] | None:
    return [k for k in keys.split(",") if k] if keys else None


@router.get("/{run_id}/metrics", response_model=MetricsOut)
def get_metrics(
    run_id: int,
    session: SessionDep,
    keys: Annotated[str | None, Query(description="Comma-separated metric keys.")] = None,
    after: Annotated[int, Query(ge=0, description="Cursor: only points after it.")] = 0,
) -> MetricsOut:
    service.get_run(session=session, run_id=run_id)
    series, cursor = service.get_points(
        session=session, run_id=run_id, after=after, keys=_keys(keys)
    )
    return MetricsOut(series=series, cursor=cursor)


@router.get("/{run_id}/metrics.csv", response_class=Response)
def get_metrics_csv(
    run_id: int, session: SessionDep, keys: str | None = None
) -> Response:
    service.get_run(session=session, run_id=run_id)
    series, _ = service.get_points(session=session, run_id=run_id, keys=_keys(keys))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["key", "x", "value"])
    for key, points in series.items():
        writer.writerows([key, x, "" if v is None else v] for x, v in points)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.csv"'},
    )
