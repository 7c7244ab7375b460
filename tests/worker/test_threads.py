"""The thread count follows the model size: one thread for small steps, the faster of one and
every core for big ones, as timed on the engine's own step. The timings here are stated by a
clock that charges each step by the thread count it runs on: the rule is tested, not the
machine."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from worker.engine import parse_spec
from worker.timing import (
    FULL_BATCH_GUESS,
    SMALL_STEP_MACS,
    choose_threads,
    macs_per_example,
    pack_pays,
    timing_batch,
)

CNN = parse_spec({"data": {"dataset": "shapes"}, "model": {"arch": "cnn", "hidden": [16, 32]}})


def idle() -> float:
    """No other process keeps a core busy (the rules, not this machine's load)."""
    return 0.0


class ThreadClock:
    """Each reading advances by the stated seconds a step takes on the current thread count."""

    def __init__(self, seconds: dict[int, float]) -> None:
        self.seconds, self.now, self.threads_seen = seconds, 0.0, set()

    def __call__(self) -> float:
        threads = torch.get_num_threads()
        self.threads_seen.add(threads)
        self.now += self.seconds[threads]
        return self.now


def test_multiply_adds_are_counted_like_by_hand() -> None:
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    assert macs_per_example(mlp, (1, 8, 8)) == 64 * 128 + 128 * 10
    conv = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
    assert macs_per_example(conv, (3, 16, 16)) == 3 * 9 * 16 * 16 * 16
    conv1d = nn.Conv1d(1, 8, 5)
    assert macs_per_example(conv1d, (1, 40)) == 5 * 8 * 36


def test_small_steps_get_one_thread_without_timing() -> None:
    never = ThreadClock({})  # any reading would raise KeyError
    assert choose_threads(parse_spec({}), cores=2, clock=never) == 1  # digits MLP: 0.8 M MACs
    assert (64 * 128 + 128 * 128 + 128 * 10) * 32 < SMALL_STEP_MACS
    assert choose_threads(CNN, cores=1, clock=never) == 1  # one core: nothing to choose


@pytest.mark.parametrize(("seconds", "expected"), [
    ({1: 0.010, 4: 0.006}, 4),  # faster on every core
    ({1: 0.010, 4: 0.0099}, 1),  # within 5 %: a tie leaves the cores to other workers
    ({1: 0.006, 4: 0.010}, 1),  # slower on every core
])
def test_big_steps_get_the_faster_count(seconds: dict[int, float], expected: int) -> None:
    clock = ThreadClock(seconds)
    assert choose_threads(CNN, cores=4, clock=clock, busy=idle) == expected
    assert clock.threads_seen == {1, 4}


def test_a_step_too_long_to_time_twice_gets_every_core() -> None:
    clock = ThreadClock({4: 1.0})  # one step on all cores is enough: one thread never timed
    assert choose_threads(CNN, cores=4, clock=clock, busy=idle) == 4
    assert clock.threads_seen == {4}


@pytest.mark.parametrize(("busy", "timed", "expected"), [
    (0.4, {1, 4}, 4),  # nearly idle: every core timed, and faster
    (2.2, {1, 2}, 2),  # two cores busy elsewhere: the two others timed
    (3.0, set(), 1),  # one core left: one thread, nothing timed
    (7.5, set(), 1),  # more load than cores
])
def test_cores_busy_with_other_runs_are_left_to_them(busy, timed, expected) -> None:
    """Threads chosen on an idle machine collapse when another run trains beside them (the
    lesson-9 crop run at 1,284 examples/s instead of 12,884): only idle cores are offered."""
    clock = ThreadClock({1: 0.010, 2: 0.007, 4: 0.006})
    assert choose_threads(CNN, cores=4, clock=clock, busy=lambda: busy) == expected
    assert clock.threads_seen == timed


def test_an_ensemble_times_all_its_members() -> None:
    """Ten members of a 2.9 M-MAC step are 29 M a step: timed, not judged small."""
    spec = parse_spec({"model": {"hidden": [256, 256]}, "optim": {"batch_size": 32},
                       "ensemble": {"members": 10}})
    assert choose_threads(spec.model_copy(update={"ensemble": spec.ensemble.model_copy(
        update={"members": 1})}), cores=2, clock=ThreadClock({})) == 1
    assert choose_threads(spec, cores=2, clock=ThreadClock({1: 0.02, 2: 0.01}),
                          busy=idle) == 2


def test_choosing_threads_leaves_the_global_state_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    before = torch.get_num_threads()
    choose_threads(CNN, cores=2)
    assert torch.get_num_threads() == before
    assert torch.equal(torch.rand(3), expected)  # the run's random stream is untouched


def test_a_gpu_run_takes_one_thread_without_timing_cpu_steps() -> None:
    from worker import tasks

    before = torch.get_num_threads()
    try:
        big = {"model": {"hidden": [2048, 2048]}}
        assert tasks.run_threads(parse_spec({**big, "device": "cuda"}),
                                 clock=ThreadClock({})) == 1
        with pytest.raises(KeyError):  # a CPU run of that size is timed (on two cores or more)
            tasks.run_threads(parse_spec({**big, "device": "cpu"}), clock=ThreadClock({}),
                              cores=2, busy=idle)
    finally:
        torch.set_num_threads(before)


def test_a_huge_batch_size_is_timed_on_a_bounded_batch() -> None:
    """Throwaway timing steps never allocate the spec's batch size as such (a huge one once
    crashed pack_pays, leaving runs 'running')."""
    spec = parse_spec({"optim": {"batch_size": 10**15}, "model": {"hidden": [256, 256]}})
    assert timing_batch(spec) == FULL_BATCH_GUESS
    assert timing_batch(parse_spec({"optim": {"batch_size": 32}})) == 32
    steady = ThreadClock({1: 0.001, 2: 0.001})
    assert choose_threads(spec, cores=2, clock=steady, busy=idle) == 1  # 1000 rows: a tie
    every_ms = itertools.count(0.0, 0.001).__next__  # each reading 1 ms later
    assert pack_pays(spec, 4, "cpu", clock=every_ms)[1].startswith("4 runs stacked stepped")


def test_busy_cores_are_the_runnable_threads_of_others_now(tmp_path) -> None:
    """The kernel's running count less the asking thread, the median of the looks; not the
    1-minute load average (which lags and counts this worker's own last run)."""
    from worker.timing import busy_cores

    loadavg = tmp_path / "loadavg"
    loadavg.write_text("7.90 3.10 1.00 1/312 4242\n")  # a high average, but only us running
    assert busy_cores(samples=3, gap=0, source=loadavg) == 0.0
    loadavg.write_text("0.10 0.20 0.30 3/312 4242\n")  # two others runnable right now
    assert busy_cores(samples=3, gap=0, source=loadavg) == 2.0
    assert busy_cores(samples=1, gap=0, source=tmp_path / "absent") == 0.0
