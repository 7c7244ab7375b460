"""COURSE.md §4: η for each training epoch (counted from 1), against hand-written tables."""

import pytest

from worker.engine.schedules import lr_at
from worker.engine.spec import ScheduleSpec, parse_spec


def rates(schedule: dict, base_lr: float, max_epochs: int) -> list[float]:
    s = ScheduleSpec(**schedule)
    return [lr_at(s, base_lr, e, max_epochs) for e in range(1, max_epochs + 1)]


def test_constant():
    assert rates({"kind": "constant"}, 0.1, 3) == [0.1, 0.1, 0.1]


def test_inv_sqrt():
    # η/√t: 0.5/1, 0.5/1.41421356, 0.5/1.73205081, 0.5/2
    assert rates({"kind": "inv_sqrt"}, 0.5, 4) == pytest.approx(
        [0.5, 0.35355339, 0.28867513, 0.25], abs=1e-8
    )


def test_step():
    # milestones count completed epochs: after 2 epochs ×0.5, after 4 epochs ×0.5 again.
    got = rates({"kind": "step", "milestones": [2, 4], "gamma": 0.5}, 1.0, 6)
    assert got == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25])


def test_piecewise_slide_table():
    table = [[0, 0.1], [75, 0.01], [125, 0.001], [175, 0.0001]]
    s = ScheduleSpec(kind="piecewise", table=table)
    expected = {1: 0.1, 75: 0.1, 76: 0.01, 125: 0.01, 126: 0.001, 175: 0.001, 176: 0.0001,
                200: 0.0001}
    for epoch, lr in expected.items():
        assert lr_at(s, 0.5, epoch, 200) == lr, epoch


def test_piecewise_before_first_entry_and_unsorted():
    # Before the first table epoch the base η applies; the table order does not matter.
    got = rates({"kind": "piecewise", "table": [[4, 0.01], [2, 0.05]]}, 0.1, 6)
    assert got == [0.1, 0.1, 0.05, 0.05, 0.01, 0.01]


def test_step_reproduces_the_slide_table():
    step = rates({"kind": "step", "milestones": [75, 125, 175], "gamma": 0.1}, 0.1, 200)
    table = rates({"kind": "piecewise",
                   "table": [[0, 0.1], [75, 0.01], [125, 0.001], [175, 0.0001]]}, 0.1, 200)
    assert step == pytest.approx(table, rel=1e-12)


def test_exponential():
    assert rates({"kind": "exponential", "gamma": 0.5}, 0.1, 4) == pytest.approx(
        [0.1, 0.05, 0.025, 0.0125]
    )


def test_cosine():
    # ½(1 + cos(π(e−1)/4)) for e = 1..4: 1, 0.85355339, 0.5, 0.14644661
    assert rates({"kind": "cosine"}, 1.0, 4) == pytest.approx(
        [1.0, 0.85355339, 0.5, 0.14644661], abs=1e-8
    )


def test_every_schedule_is_accepted_by_the_spec():
    for kind in ("constant", "inv_sqrt", "step", "piecewise", "exponential", "cosine"):
        assert parse_spec({"optim": {"schedule": {"kind": kind}}}).optim.schedule.kind == kind


def test_epochs_count_from_one():
    with pytest.raises(ValueError):
        lr_at(ScheduleSpec(), 0.1, 0, 10)
