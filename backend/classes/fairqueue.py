"""The fair queue of a class: its runs are claimed round-robin across its students.

Each run of a class goes to the broker as one message naming the class (broker.py,
``enqueue_class_run``), in whichever broker mode; the worker that takes a message does not
claim the run it names but the class's next run in the fair order, decided here in the
database at claim time. So the order holds for any number of workers on either broker: a
student's grid of 256 runs only ever puts one run in front of each classmate's next one.

The order: the teacher's queued runs first (they jump the queue), then, among the students
with queued runs, the one served least recently (never served first; ties by who asked
first), each taking their own oldest queued run. Between two runs of one student every other
student with a queued run gets exactly one.

Messages and runs: every class message claims at most one run, and there is one message per
run submitted (or re-queued), so no queued run is left without a message; a message whose
run was cancelled or deleted claims another one or, when none is left, nothing. A run taken
back from a dead worker (runs/recovery.py) is re-sent as a message of its own and claimed
as soon as a worker takes it: it had its turn already.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backend.runs.lifecycle import claim_run
from backend.runs.models import Run


def fair_order(*, session: Session, class_id: int, queue: str) -> list[int]:
    """The class's queued runs of ``queue``, heads first: [teacher's runs..., then for each
    student in turn their oldest run]. Only the first is claimed; the rest are fallbacks
    should another worker take it first."""
    queued = session.execute(
        select(Run.id, Run.student)
        .where(Run.class_id == class_id, Run.status == "queued", Run.queue == queue)
        .order_by(Run.id)).all()
    teacher = [run_id for run_id, student in queued if student is None]
    heads: dict[int, int] = {}
    for run_id, student in queued:
        if student is not None:
            heads.setdefault(student, run_id)
    served = dict(session.execute(
        select(Run.student, func.max(Run.class_seq))
        .where(Run.class_id == class_id, Run.student.in_(list(heads)),
               Run.class_seq.is_not(None))
        .group_by(Run.student)).all())
    order = sorted(heads, key=lambda student: (served.get(student, -1), heads[student]))
    return teacher + [heads[student] for student in order]


def _lock_class(session: Session, class_id: int) -> None:
    """One claim of a class at a time, so two workers never both read the same head. SQLite
    already lets one writer in at a time; PostgreSQL takes a transaction lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(4243, :class_id)"),
                        {"class_id": class_id})
    else:  # an early write: SQLite's lock is taken now, before the reads
        session.execute(text("UPDATE runs SET class_seq = class_seq WHERE id = -1"))


def claim_next(*, session: Session, class_id: int, queue: str, worker: str) -> Run | None:
    """Claim the class's next run in the fair order (``running`` under a new token, with its
    ``class_seq``: its place in the class's dispatch order), or None when none is queued."""
    _lock_class(session, class_id)
    order = fair_order(session=session, class_id=class_id, queue=queue)
    seq = (session.scalar(select(func.max(Run.class_seq)).where(Run.class_id == class_id))
           or 0) + 1
    for run_id in order:
        run = claim_run(session=session, run_id=run_id, worker=worker, class_seq=seq)
        if run is not None:
            return run
    session.commit()
    return None
