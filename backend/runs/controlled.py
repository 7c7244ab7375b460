"""Controlled A/B (SPEC.md "Forks and controlled comparisons"): whether two runs share z0 and
the minibatch order, i.e. their specs differ only in optimisation knobs (engine/forkspec.py),
so that the difference of their curves is the knobs' doing and not the seed's. How the returned
model is measured (dropout inference A or B) changes nothing trained either."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from backend.runs.service import get_run
from worker.engine.forkspec import KNOBS, changed_paths, start_changes
from worker.engine.spec import parse_spec


def same_start(*, session: Session, run_id: int, other_id: int) -> dict[str, Any]:
    """{run, other, same_start_and_order, differences (every changed field path), not_knobs
    (those of them that change z0 or the order), knobs (the fields that may differ)}."""
    a, b = get_run(session=session, run_id=run_id), get_run(session=session, run_id=other_id)
    spec_a, spec_b = parse_spec(a.spec), parse_spec(b.spec)
    moved = start_changes(spec_a, spec_b)
    return {"run": a.id, "other": b.id, "same_start_and_order": not moved,
            "differences": [p for p in changed_paths(spec_a.model_dump(mode="json"),
                                                     spec_b.model_dump(mode="json"))
                            if p != "name"],
            "not_knobs": moved, "knobs": list(KNOBS)}
