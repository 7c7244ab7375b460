"""The class board: per student their runs, statuses and best test accuracy, and the
challenge ranking (best held-out test accuracy of a lesson's runs within an epoch budget)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.classes.models import Classroom
from backend.classes.service import Principal, may_change, students_of
from backend.runs.models import FINAL_STATUSES, Run


def test_accuracy(run: Run) -> float | None:
    """The held-out test accuracy of an ended run's returned model (None before it ends: the
    test set is not shown during training)."""
    if run.status not in FINAL_STATUSES or not run.result:
        return None
    value = run.result.get("test_accuracy")
    return float(value) if isinstance(value, int | float) else None


def _run_row(run: Run, detailed: bool, viewer: Principal | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": run.id, "name": run.name, "status": run.status, "preset": run.class_preset,
        "epoch": run.epoch, "max_epochs": run.max_epochs, "test_accuracy": test_accuracy(run)}
    if viewer is not None:  # whether the board's viewer may cancel it (not in the export)
        row["can_control"] = may_change(viewer, run)
    if detailed:  # the teacher's board: enough to grade without opening each run
        row.update(spec=run.spec, result=run.result, error=run.error, worker=run.worker,
                   created_at=run.created_at.isoformat(),
                   started_at=run.started_at and run.started_at.isoformat(),
                   finished_at=run.finished_at and run.finished_at.isoformat(),
                   dispatch_order=run.class_seq)
    return row


def _best(runs: list[Run]) -> tuple[float, int] | None:
    scored = [(acc, run.id) for run in runs if (acc := test_accuracy(run)) is not None]
    # The best accuracy; of equal ones the earliest run (who got there first).
    return max(scored, key=lambda s: (s[0], -s[1])) if scored else None


def challenge_ranking(klass: Classroom, by_student: dict[int, list[Run]],
                      names: dict[int, str]) -> dict[str, Any] | None:
    if not klass.challenge:
        return None
    preset, max_epochs = klass.challenge["preset"], klass.challenge.get("max_epochs")
    rows = []
    for student, runs in by_student.items():
        eligible = [run for run in runs if run.class_preset == preset and (
            max_epochs is None or run.max_epochs <= max_epochs)]
        best = _best(eligible)
        if best is not None:
            rows.append({"student": student, "name": names[student],
                         "test_accuracy": best[0], "run_id": best[1]})
    rows.sort(key=lambda r: (-r["test_accuracy"], r["run_id"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return {"preset": preset, "max_epochs": max_epochs, "ranking": rows}


def board(*, session: Session, klass: Classroom, detailed: bool,
          viewer: Principal | None = None) -> dict[str, Any]:
    students = students_of(session=session, class_id=klass.id)
    names = {s.id: s.name for s in students}
    runs = session.scalars(select(Run).where(Run.class_id == klass.id).order_by(Run.id)).all()
    by_student: dict[int, list[Run]] = {s.id: [] for s in students}
    teacher_runs = []
    for run in runs:
        if run.student is None:
            teacher_runs.append(run)
        elif run.student in by_student:
            by_student[run.student].append(run)
    rows = []
    for student in students:
        mine = by_student[student.id]
        best = _best(mine)
        counts: dict[str, int] = {}
        for run in mine:
            counts[run.status] = counts.get(run.status, 0) + 1
        rows.append({"id": student.id, "name": student.name, "runs": [
            _run_row(run, detailed, viewer) for run in mine], "statuses": counts,
            "best_test_accuracy": best and best[0], "best_run_id": best and best[1]})
    return {"class": {"id": klass.id, "name": klass.name, "presets": klass.presets,
                      "challenge": klass.challenge},
            "students": rows,
            "teacher_runs": [_run_row(run, detailed, viewer) for run in teacher_runs],
            "challenge": challenge_ranking(klass, by_student, names)}
