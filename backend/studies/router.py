"""HTTP routes of studies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from backend.deps import MAX_ID, SessionDep, StudyId
from backend.runs.schemas import RunOut
from backend.spec_errors import SpecInvalid
from backend.studies import service
from worker.engine.spec import Spec

router = APIRouter(prefix="/api/studies", tags=["studies"])


class StudyIn(BaseModel):
    name: str | None = Field(None, max_length=200)
    base: Spec = Field(default_factory=Spec, description="The spec every run starts from.")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description='Dotted field paths and their values, e.g. {"optim.batch_size": [1, 32, 256]}.',
    )
    seeds: int | None = Field(
        None, ge=1, le=64, description="Repeat every grid point with this many seeds."
    )
    pack: bool = Field(
        True, description="Train runs that differ only in seed as one stacked network each "
        "(the same results, several times faster); false: one task per run, each run's η "
        "adjustable by hand.",
    )


class StudyOut(BaseModel):
    id: int
    name: str | None
    created_at: datetime
    status: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    runs: list[RunOut]
    summary: list[dict[str, Any]]


def study_out(study: Any, runs: Any) -> StudyOut:
    return StudyOut(
        id=study.id, name=study.name, created_at=study.created_at,
        status=service.study_status(runs), base=study.base,
        grid=study.grid, runs=[RunOut.of(r) for r in runs], summary=service.summary(study, runs),
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=StudyOut)
def create_study(body: StudyIn, session: SessionDep) -> StudyOut:
    study, runs = service.submit_study(
        session=session, name=body.name, base=body.base.model_dump(mode="json"), grid=body.grid,
        seeds=body.seeds, pack=body.pack,
    )
    return study_out(study, runs)


@router.get("", response_model=list[StudyOut])
def list_studies(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[StudyOut]:
    """The newest studies first, a page at a time (each carries all its runs)."""
    return [study_out(s, service.study_runs(session=session, study_id=s.id))
            for s in service.list_studies(session=session, limit=limit, offset=offset)]


@router.get("/{study_id}", response_model=StudyOut)
def get_study(study_id: StudyId, session: SessionDep) -> StudyOut:
    study = service.get_study(session=session, study_id=study_id)
    return study_out(study, service.study_runs(session=session, study_id=study_id))


@router.delete("/{study_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_study(study_id: StudyId, session: SessionDep) -> Response:
    service.delete_study(session=session, study_id=study_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{study_id}/stats")
def get_stats(
    study_id: StudyId, session: SessionDep,
    metric: Annotated[str, Query(max_length=100, description="A result figure: " + ", ".join(
        service.STATS_METRICS) + ".")] = "test_accuracy",
) -> dict[str, Any]:
    """Per grid point, the figure's mean and 95 % interval over seeds; every pair of points
    compared by a t-test (paired by seed where both have the same seeds), with a verdict."""
    if metric not in service.STATS_METRICS:
        raise SpecInvalid.one("metric", "must be one of " + ", ".join(service.STATS_METRICS))
    study = service.get_study(session=session, study_id=study_id)
    return service.seed_stats(study, service.study_runs(session=session, study_id=study_id),
                              metric)
