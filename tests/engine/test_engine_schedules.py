"""COURSE.md §4: η for each training epoch (counted from 1), against hand-written tables."""

import pytest
import torch

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


def _steps(spec_data: dict) -> tuple[list[tuple[int, float]], list[float]]:
    from worker.engine import Callbacks, train

    seen: list[tuple[int, float]] = []
    out = train(parse_spec(spec_data),
                Callbacks(on_step=lambda t, m: seen.append((t, m["step_lr"]))), device="cpu")
    return seen, [m["lr"] for m in out.metrics]


def test_inv_sqrt_per_step_is_the_slide_eta_over_root_t() -> None:
    # digits: 1149 training rows, m = 128: ⌊1149/128⌋ = 8 steps an epoch, t = 1..24.
    seen, epoch_lrs = _steps({
        "model": {"hidden": [8]}, "optim": {"lr": 0.4, "batch_size": 128, "momentum": 0,
                                            "schedule": {"kind": "inv_sqrt", "per": "step"}},
        "training": {"max_epochs": 3, "log_every_steps": 1}})
    assert [t for t, _ in seen] == list(range(1, 25))
    for t, lr in seen:
        assert lr == 0.4 / t ** 0.5
    assert epoch_lrs == [0.4, 0.4 / 9 ** 0.5, 0.4 / 17 ** 0.5]  # each epoch's first step


def test_milestones_per_step_count_steps() -> None:
    seen, _ = _steps({
        "model": {"hidden": [8]}, "optim": {"lr": 1.0, "batch_size": 256,
                                            "schedule": {"kind": "step", "milestones": [3, 5],
                                                         "gamma": 0.5, "per": "step"}},
        "training": {"max_epochs": 2, "log_every_steps": 1}})
    # 4 steps an epoch; steps 1-3 at η, 4-5 at η/2, 6-8 at η/4.
    assert [lr for _, lr in seen] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25]


def test_a_constant_rate_is_the_same_run_whatever_t_counts() -> None:
    from worker.engine import train

    base = {"model": {"hidden": [8]}, "training": {"max_epochs": 2}}
    a = train(parse_spec(base), device="cpu")
    b = train(parse_spec({**base, "optim": {"schedule": {"per": "step"}}}), device="cpu")
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
