"""GET /api/presets and POST /api/presets/{id}/launch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from backend.deps import SessionDep
from backend.errors import NotFound
from backend.presets.catalog import BY_ID, PRESETS
from backend.runs import service as runs
from backend.runs.schemas import RunOut
from backend.studies import service as studies
from backend.studies.router import study_out

router = APIRouter(prefix="/api/presets", tags=["presets"])


@router.get("")
def list_presets() -> list[dict[str, Any]]:
    return PRESETS


@router.post("/{preset_id}/launch", status_code=status.HTTP_201_CREATED)
def launch_preset(preset_id: str, session: SessionDep) -> dict[str, Any]:
    """Creates the preset's study (or single run) and returns it with its kind."""
    preset = BY_ID.get(preset_id)
    if preset is None:
        raise NotFound(f"preset {preset_id!r} not found")
    if "spec" in preset:
        run = runs.submit_run(session=session, spec_data={"name": preset["title"], **preset["spec"]})
        return {"kind": "run", "run": RunOut.of(run).model_dump(mode="json")}
    study, study_runs = studies.submit_study(session=session, name=preset["title"],
                                             **preset["study"])
    return {"kind": "study", "study": study_out(study, study_runs).model_dump(mode="json")}
