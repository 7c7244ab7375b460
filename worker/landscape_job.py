"""A run's loss landscape on the worker: read the returned model, the run's weight sketches
and its training data, let the engine compute the surface (worker/engine/landscape.py), and
store it with its progress (backend/runs/landscape.py answers from that row)."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import update

from backend.db import new_session, utcnow
from backend.errors import DomainError
from backend.public_text import public_error
from backend.runs import service
from backend.runs.models import RunLandscape
from backend.runs.trajectory import trajectory
from worker.engine import load_dataset
from worker.engine.landscape import MAX_EXAMPLES, landscape
from worker.engine.modelfile import read_model
from worker.engine.models import build_model

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 0.5  # progress is written at most this often


def _set(run_id: int, resolution: int, **values: Any) -> None:
    with new_session() as session:
        session.execute(update(RunLandscape).where(
            RunLandscape.run_id == run_id, RunLandscape.resolution == resolution)
            .values(updated_at=utcnow(), **values))
        session.commit()


def execute_landscape(run_id: int, resolution: int, data_root: Any) -> str:
    with new_session() as session:
        row = session.get(RunLandscape, (run_id, resolution))
        if row is None or row.status != "queued":
            return "skipped"  # deleted with its run, or another delivery already took it
        row.status, row.updated_at = "running", utcnow()
        session.commit()
        try:
            blob = service.get_model(session=session, run_id=run_id)
            sketches = trajectory(session=session, run_id=run_id)
        except DomainError as exc:  # the run, or its model, is gone
            _set(run_id, resolution, status="failed", error=exc.message)
            return "failed"
    last = [time.monotonic()]

    def progress(fraction: float) -> None:
        if time.monotonic() - last[0] >= PROGRESS_SECONDS:
            last[0] = time.monotonic()
            _set(run_id, resolution, progress=fraction)

    try:
        saved = read_model(blob)
        net = build_model(saved.spec, saved.input_shape, len(saved.classes))
        net.load_state_dict(saved.state_dict)
        data = load_dataset(saved.spec, data_root)
        result = landscape(net, saved.spec.seed, data.X_train[:MAX_EXAMPLES],
                           data.y_train[:MAX_EXAMPLES], resolution=resolution,
                           sketches=sketches, on_progress=progress)
    except Exception as exc:
        log.exception("landscape of run %s failed", run_id)
        _set(run_id, resolution, status="failed", error=public_error(exc))
        return "failed"
    _set(run_id, resolution, status="done", progress=1.0, result=result)
    log.info("landscape of run %s (%d×%d) done", run_id, resolution, resolution)
    return "done"
