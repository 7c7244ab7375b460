"""Studies: create one run per grid point, read them back with a summary table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.broker import enqueue_pack, enqueue_run
from backend.config import get_settings
from backend.db import utcnow
from backend.errors import NotFound, Unavailable
from backend.runs.models import FINAL_STATUSES, Run
from backend.runs.service import check_queue_room, lock_queue, new_run
from backend.spec_errors import SpecInvalid
from backend.spec_limits import check_spec_limits
from backend.studies.grid import GridError, expand
from backend.studies.models import Study
from backend.workers.service import live_workers
from worker.engine.spec import Spec, pack_key, pack_reason, parse_spec


def plan_packs(runs: Sequence[Run], specs: Sequence[Spec], *, workers: int,
               max_members: int) -> list[list[Run]]:
    """Runs that differ only in seed, grouped to train as one stacked network each (a pack);
    every other run is a group of one. A group larger than ``max_members`` is split, and so
    is one that would leave live workers idle: the packs of a study are at least as many as
    the ``workers`` serving it, where the runs allow (two runs or more per pack)."""
    groups: dict[str, list[Run]] = {}
    for run, spec in zip(runs, specs):
        key = pack_key(spec) if pack_reason(spec) is None else f"alone {run.id}"
        groups.setdefault(key, []).append(run)
    per_group = -(-workers // len(groups)) if groups else 1
    planned = []
    for group in groups.values():
        parts = max(-(-len(group) // max_members), min(per_group, len(group) // 2), 1)
        planned += [group[i::parts] for i in range(parts)]
    return planned


def create_study(
    *, session: Session, name: str | None, base: dict[str, Any], grid: dict[str, list[Any]],
    seeds: int | None = None, pack: bool = True,
) -> tuple[Study, list[Run]]:
    """Validate every grid point first, then store the study and all its runs in one commit.
    With ``pack``, runs that differ only in seed are marked to train as packs (``plan_packs``)."""
    base_spec = parse_spec(base)  # errors here name base.<field>
    grid = dict(grid)
    if seeds:
        grid["seed"] = [base_spec.seed + i for i in range(seeds)]
    settings = get_settings()
    expanded = expand(base_spec.model_dump(mode="json"), grid, settings.max_grid_points)
    for point, spec in expanded:
        try:
            check_spec_limits(spec, settings)
        except SpecInvalid as exc:
            # Named by the grid path that set the value, or else as a field of the base.
            field, msg = exc.detail[0]["field"], exc.detail[0]["msg"]
            path = next((p for p in point if p == field or p.startswith(field + ".")
                         or field.startswith(p + ".")), None)
            raise SpecInvalid.one(f"grid.{path}" if path else f"base.{field}", msg) from None
    lock_queue(session)
    study = Study(name=name, base=base_spec.model_dump(mode="json"), grid=grid, created_at=utcnow())
    session.add(study)
    session.flush()
    runs = []
    for point, spec in expanded:
        if spec.name is None or spec.name == base_spec.name:
            label = ", ".join(f"{k}={v}" for k, v in point.items())
            spec = spec.model_copy(update={"name": f"{name or 'study'} [{label}]"[:200]})
        runs.append(new_run(spec, study.id))
    session.add_all(runs)
    session.flush()
    if pack:
        queues = {run.queue for run in runs}
        serving = sum(1 for w in live_workers(session=session)
                      if queues & set((w.queues or "").split(",")))
        specs = [spec for _, spec in expanded]
        for group in plan_packs(runs, specs, workers=max(serving, 1),
                                max_members=settings.max_members):
            if len(group) > 1:
                for run in group:
                    run.pack = group[0].id
    check_queue_room(session=session, limit=get_settings().max_queued_runs)
    session.commit()
    return study, runs


def submit_study(
    *, session: Session, name: str | None, base: dict[str, Any], grid: dict[str, list[Any]],
    seeds: int | None = None, pack: bool = True,
) -> tuple[Study, list[Run]]:
    """Validate, store and enqueue a study (a pack as one task); if the broker refuses,
    nothing is kept."""
    try:
        study, runs = create_study(session=session, name=name, base=base, grid=grid, seeds=seeds,
                                   pack=pack)
    except ValidationError as exc:
        raise SpecInvalid.from_validation(exc, prefix=("base",)) from None
    except GridError as exc:
        raise SpecInvalid.one(exc.field, exc.message) from None
    try:
        packs: dict[int, list[Run]] = {}
        for run in runs:
            if run.pack is None:
                enqueue_run(run.id, run.queue)
            else:
                packs.setdefault(run.pack, []).append(run)
        for members in packs.values():
            enqueue_pack([run.id for run in members], members[0].queue)
    except Exception as exc:
        delete_study(session=session, study_id=study.id)
        raise Unavailable(f"the broker could not take the runs: {type(exc).__name__}") from exc
    return study, runs


def get_study(*, session: Session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound(f"study {study_id} not found")
    return study


def list_studies(*, session: Session, limit: int = 50, offset: int = 0) -> Sequence[Study]:
    return session.scalars(
        select(Study).order_by(Study.id.desc()).limit(limit).offset(offset)).all()


def study_runs(*, session: Session, study_id: int) -> Sequence[Run]:
    return session.scalars(select(Run).where(Run.study_id == study_id).order_by(Run.id)).all()


def delete_study(*, session: Session, study_id: int) -> None:
    get_study(session=session, study_id=study_id)
    session.execute(delete(Run).where(Run.study_id == study_id))  # their rows cascade
    session.execute(delete(Study).where(Study.id == study_id))
    session.commit()


def study_status(runs: Sequence[Run]) -> str:
    if any(r.status == "running" for r in runs):
        return "running"
    if any(r.status == "queued" for r in runs):
        return "queued"
    return "finished" if all(r.status in FINAL_STATUSES for r in runs) else "running"


def _point(study: Study, run: Run) -> dict[str, Any]:
    def get(path: str) -> Any:
        node: Any = run.spec
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    return {path: get(path) for path in study.grid}


def _kept_epoch(result: dict[str, Any]) -> int | None:
    """The epoch of the model a run returned (``result.kept``: best or last)."""
    kept = result.get("final" if result.get("kept") == "last" else "best")
    return kept.get("epoch") if isinstance(kept, dict) else None


def summary(study: Study, runs: Sequence[Run]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        result = run.result or {}
        seconds = None
        if run.started_at and run.finished_at:
            seconds = (run.finished_at - run.started_at).total_seconds()
        rows.append({
            "run_id": run.id, "point": _point(study, run), "status": run.status,
            "best_epoch": result.get("best_epoch"),
            # The figures that follow are the returned model's: z* or the last epoch's.
            "kept": result.get("kept"), "kept_epoch": _kept_epoch(result),
            "test_accuracy": result.get("test_accuracy"),
            "test_loss": result.get("test_loss"), "seconds": seconds,
        })
    return rows


# The result figures a study's seed statistics can be asked about, and whether higher is better.
STATS_METRICS = {"test_accuracy": True, "test_loss": False}


def seed_stats(study: Study, runs: Sequence[Run], metric: str) -> dict[str, Any]:
    """SPEC.md's ``/stats``: runs grouped by grid point (the seed is the repetition, not part
    of the point); each group's figures over its finished runs, and every pair compared.
    Runs still queued or running are left out and counted as ``pending``; finished runs
    without the figure (failed) as ``missing``."""
    # scipy (and numpy) load with the first statistics asked for, not with the API.
    from backend.studies.stats import compare, describe

    groups: dict[str, dict[str, Any]] = {}
    for run in runs:
        point = {k: v for k, v in _point(study, run).items() if k != "seed"}
        group = groups.setdefault(repr(sorted(point.items())), {
            "point": point, "by_seed": {}, "pending": 0, "missing": 0})
        value = (run.result or {}).get(metric)
        if run.status not in FINAL_STATUSES:
            group["pending"] += 1
        elif isinstance(value, (int, float)) and math.isfinite(value):
            group["by_seed"][run.spec.get("seed")] = float(value)
        else:
            group["missing"] += 1
    listed = list(groups.values())
    out_groups = [{"point": g["point"], **describe(list(g["by_seed"].values())),
                   "values": list(g["by_seed"].values()), "seeds": list(g["by_seed"]),
                   "pending": g["pending"], "missing": g["missing"]} for g in listed]
    comparisons = [
        {"a": i, "b": j, **compare(listed[i]["by_seed"], listed[j]["by_seed"],
                                   higher_is_better=STATS_METRICS[metric], metric=metric)}
        for i in range(len(listed)) for j in range(i + 1, len(listed))]
    return {"metric": metric, "groups": out_groups, "comparisons": comparisons}
