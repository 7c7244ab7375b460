"""The examples of one confusion cell of a run's returned model (GET /api/runs/{id}/examples):
the model from the predictor cache, S_v rebuilt from the run's spec by the engine (torch is
loaded on the first call, as for /predict)."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy.orm import Session

from backend.config import get_settings
from backend.errors import Conflict
from backend.runs import service
from backend.runs.predictors import predictors
from backend.spec_errors import SpecInvalid
from worker.engine.spec import parse_spec


def cell_examples(*, session: Session, run_id: int, true: int | None, pred: int | None,
                  epoch: int | None, limit: int) -> list[dict[str, Any]]:
    stored = service.model_info(session=session, run_id=run_id)  # 409 while it has none
    run = service.get_run(session=session, run_id=run_id)
    returned = service.returned_epoch(run.result)
    if epoch is not None and epoch != returned:
        # Only the returned model is kept; other epochs have their matrix but no model.
        raise Conflict(f"examples are those of the returned model (epoch {returned}); "
                       f"run {run_id} keeps no model of epoch {epoch}")
    predictor = predictors.get(
        (run_id, stored.created_at), stored.size,
        lambda: service.get_model(session=session, run_id=run_id),
        entries=get_settings().predictor_cache)
    classes = len(predictor.classes)
    for name, value in (("true", true), ("pred", pred)):
        if value is not None and not 0 <= value < classes:
            raise SpecInvalid.one(name, f"must be a class index from 0 to {classes - 1}")
    from worker.engine.examples import cell_examples as engine_examples  # torch: loaded above

    try:
        found = engine_examples(predictor.model, parse_spec(run.spec), true=true, pred=pred,
                                limit=limit, data_root=get_settings().data_dir / "datasets")
    except (OSError, ValueError):
        raise Conflict(f"the dataset of run {run_id} is not available to the API here") from None
    for example in found:
        if example["png"] is not None:
            example["png"] = base64.b64encode(example["png"]).decode("ascii")
    return found
