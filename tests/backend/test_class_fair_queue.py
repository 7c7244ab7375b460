"""The fair queue of a class: runs are dispatched round-robin across its students, the teacher's
first, whatever order they were submitted in; with real workers on both broker modes.

The order asserted is the stored one (each claimed run's ``class_seq``), never a time."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.app import create_app
from backend.classes import fairqueue
from backend.classes.service import Principal, create_class, join_class, submit_class_run
from backend.db import new_session
from backend.runs.models import Run
from tests.conftest import wait_for

# A run of a second or so: a 2-D set of 200 points, one epoch.
TINY = {"data": {"dataset": "moons", "n_samples": 200}, "model": {"hidden": [8]},
        "optim": {"batch_size": 32}, "training": {"max_epochs": 1}}


def assert_round_robin(students: list[int]) -> None:
    """No student waits behind more than one run of each other student: in every prefix of
    the dispatch order, the students who still had runs waiting are at most one apart."""
    total = Counter(students)
    seen: Counter[int] = Counter()
    for student in students:
        seen[student] += 1
        waiting = [s for s in total if seen[s] < total[s] or s == student]
        counts = [seen[s] for s in waiting]
        assert max(counts) - min(counts) <= 1, (students, seen)


def dispatch_order(class_id: int) -> list[int | None]:
    with new_session() as session:
        return list(session.scalars(
            select(Run.student).where(Run.class_id == class_id, Run.class_seq.is_not(None))
            .order_by(Run.class_seq)))


def _class_of_three(runs_each: int) -> tuple[int, list[int]]:
    """A class with 3 students who submit ``runs_each`` runs each, one student after the other
    (the worst case for a first-come queue)."""
    with new_session() as session:
        klass, _ = create_class(session=session, name="c", presets=["sgd-momentum"], locked=[],
                                max_runs_per_student=100, max_queued_per_student=100)
        students = [join_class(session=session, join_code=klass.join_code, name=n)[0].id
                    for n in ("ann", "ben", "cid")]
        for student in students:
            for _ in range(runs_each):
                submit_class_run(session=session, principal=Principal(klass.id, student, "s"),
                                 given=TINY)
        return klass.id, students


def test_claims_go_round_robin_and_the_teacher_jumps_the_queue(db_url, configure) -> None:
    configure(db_url)
    class_id, students = _class_of_three(10)
    claimed = []
    with new_session() as session:
        for _ in range(4):
            claimed.append(fairqueue.claim_next(session=session, class_id=class_id,
                                                queue="cpu", worker="w").student)
        # the teacher's run, submitted now, is the next one taken
        teacher = submit_class_run(session=session, principal=Principal(class_id, None, "t"),
                                   given=TINY)
        run = fairqueue.claim_next(session=session, class_id=class_id, queue="cpu", worker="w")
        assert run.id == teacher.id and run.student is None
        while (run := fairqueue.claim_next(session=session, class_id=class_id, queue="cpu",
                                           worker="w")) is not None:
            claimed.append(run.student)
    assert claimed[:6] == students + students
    assert len(claimed) == 30 and Counter(claimed) == {s: 10 for s in students}
    assert_round_robin(claimed)
    order = dispatch_order(class_id)
    assert order[:5] == [*students, students[0], None]  # the stored order says the same
    # another queue's runs are not this queue's to claim
    with new_session() as session:
        assert fairqueue.claim_next(session=session, class_id=class_id, queue="gpu",
                                    worker="w") is None


def test_a_late_student_is_not_stuck_behind_a_grid(configure) -> None:
    configure()
    class_id, (ann, ben, _cid) = _class_of_three(0)
    with new_session() as session:
        for _ in range(8):
            submit_class_run(session=session, principal=Principal(class_id, ann, "s"), given=TINY)
        first = [fairqueue.claim_next(session=session, class_id=class_id, queue="cpu",
                                      worker="w").student for _ in range(3)]
        submit_class_run(session=session, principal=Principal(class_id, ben, "s"), given=TINY)
        nxt = fairqueue.claim_next(session=session, class_id=class_id, queue="cpu", worker="w")
    assert first == [ann, ann, ann] and nxt.student == ben


@pytest.mark.timeout(600)
@pytest.mark.parametrize("broker,workers", [("sqlite", 1), ("sqlite", 2), ("redis", 1),
                                            ("redis", 2)])
def test_real_workers_dispatch_three_students_fairly(configure, start_worker, broker, workers,
                                                     request) -> None:
    """3 students × 10 runs submitted one student after the other before any worker runs;
    then 1 or 2 workers on the embedded broker or Redis take them all, interleaved."""
    env = configure(broker_url=request.getfixturevalue("redis_url") if broker == "redis"
                    else None)
    class_id, students = _class_of_three(10)
    for _ in range(workers):
        start_worker(env)
    with TestClient(create_app()) as client:
        def done() -> bool:
            runs = [r for r in client.get("/api/runs?limit=100").json()
                    if r["class_id"] == class_id]
            return all(r["status"] == "succeeded" for r in runs)

        wait_for(done, 480, "every class run to succeed", every=0.5)
    order = dispatch_order(class_id)
    assert len(order) == 30
    assert order[:3] == students  # one of each first, in the order they asked
    assert_round_robin(order)
