"""POST /api/lr-range-tests: thin, parse → service → answer."""

from __future__ import annotations

from fastapi import APIRouter, status

from backend.deps import SessionDep
from backend.runs import lr_range
from backend.runs.schemas import RunOut
from backend.workers.service import served_queues

router = APIRouter(prefix="/api/lr-range-tests", tags=["runs"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RunOut)
def create_lr_range_test(session: SessionDep, body: lr_range.LrRangeIn) -> RunOut:
    """A run of kind "lr_range": η grows geometrically from ``start`` to ``end`` over at most
    ``steps`` minibatches (stopping once the smoothed loss passes 4× its minimum), 3 seeds.
    Its series lr_range/loss and lr_range/smoothed_loss have x = η; its result holds
    lr_range: {suggested_lr, rule, min_lr, alternative_lr, alternative_rule, seeds, spread}."""
    served = served_queues(session=session)
    return RunOut.of(lr_range.submit(session=session, body=body), served)
