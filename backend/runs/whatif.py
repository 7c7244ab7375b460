"""Early-stopping what-ifs (SPEC.md "Forks and controlled comparisons"): what early stopping
with patience p would have returned, read off one ended run's stored curves with the engine's
own rule (``worker.engine.early_stopping.replay``, torch-free), no new run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from backend.errors import Conflict
from backend.runs import service
from backend.runs.models import FINAL_STATUSES
from worker.engine.early_stopping import replay

TEST_ACCURACY = service.HELD_OUT + "test_accuracy"


def _by_epoch(points: list[list[Any]]) -> dict[int, float | None]:
    return {int(x): value for x, value in points}


def early_stopping(*, session: Session, run_id: int, patiences: Sequence[int]
                   ) -> list[dict[str, Any]]:
    """For each p: {patience, best_epoch, stopped_epoch, val_accuracy, test_accuracy} of the
    run's curves replayed under the run's monitor; ``complete`` is false where the stored curve
    ends before that p would have stopped (the run was cancelled, or stopped by its own smaller
    patience): the figures are then those of the epochs there are."""
    run = service.get_run(session=session, run_id=run_id)
    if run.status not in FINAL_STATUSES:
        raise Conflict(f"run {run_id} has not ended (status {run.status}): its held-out test "
                       "figures are shown once it has")
    if run.spec.get("ensemble", {}).get("members", 1) > 1 and \
            run.spec["ensemble"].get("select") == "per_member":
        raise Conflict("an ensemble whose members each keep their own z* (select per_member) "
                       "has no single early-stopping curve; select joint has")
    monitor = run.spec["training"]["early_stopping"]["monitor"]
    keys = sorted({monitor, "val_accuracy", TEST_ACCURACY})
    series, _ = service.get_points(session=session, run_id=run_id, keys=keys, held_out=True)
    curves = {key: _by_epoch(series.get(key, [])) for key in keys}
    last = max(curves[monitor], default=0)
    if not curves[TEST_ACCURACY]:
        raise Conflict(f"run {run_id} has no held-out test figures per epoch (trained before "
                       "they were stored)")
    result = run.result or {}
    initial = result.get("initial") or {}
    ran_out = result.get("diverged_epoch") is not None or last >= run.max_epochs
    out = []
    for p in patiences:
        values = [curves[monitor].get(e) for e in range(1, last + 1)]
        best, stopped, by_patience = replay(values, p, monitor, initial.get(monitor))

        def at(key: str, epoch: int) -> float | None:
            if epoch == 0:
                return initial.get(key.removeprefix(service.HELD_OUT))
            return curves[key].get(epoch)

        out.append({"patience": p, "best_epoch": best, "stopped_epoch": stopped,
                    "val_accuracy": at("val_accuracy", best),
                    "test_accuracy": at(TEST_ACCURACY, best),
                    "complete": by_patience or ran_out})
    return out
