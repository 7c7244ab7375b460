"""speed.auto: on a GPU the fastest of float32 eager, bfloat16, compiled and a captured step,
timed on throwaway steps; on the CPU nothing is timed. The decision is tested on stated timings
(an injected clock), never on the wall clock."""

from __future__ import annotations

import math

import pytest
import torch

from worker.engine import parse_spec, train
from worker.engine.speed import (
    AUTO_COMPILE_MIN_STEPS,
    AUTO_MIN_RUN_STEPS,
    AUTO_STEPS,
    AUTO_WARMUP,
    BASELINE,
    auto_candidates,
    choose_fastest,
    resolve_speed,
)
from worker.engine.speed_trial import speed_trial

CUDA = torch.device("cuda")  # a device object only: nothing here runs on a GPU
CPU = torch.device("cpu")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _trials(clock: _Clock, seconds: dict[str, float], failing: tuple[str, ...] = ()):
    """A trial per choice whose step advances the clock by the stated seconds."""
    calls: dict[str, int] = {}

    def trial(choice):
        if choice.name in failing:
            raise RuntimeError("no Triton here\nmore lines")

        def step() -> None:
            calls[choice.name] = calls.get(choice.name, 0) + 1
            clock.now += seconds[choice.name]

        return step

    return trial, calls


def test_on_the_cpu_auto_times_nothing_and_runs_float32_eager() -> None:
    spec = parse_spec({"training": {"max_epochs": 1}})

    def trial(choice):
        raise AssertionError("nothing may be timed on the CPU")

    speed, report = resolve_speed(spec, CPU, 10_000, trial, clock=_Clock())
    assert speed == spec.speed and (speed.precision, speed.compile) == ("float32", False)
    assert report == {"chosen_by": "spec", "precision": "float32", "compile": False,
                      "cuda_graph": False,
                      "why": "on the CPU nothing is timed: the options stay as set"}
    out = train(spec, device="cpu")
    assert out.result["speed"] == report


def test_auto_keeps_the_fastest_and_says_so() -> None:
    spec = parse_spec({"training": {"max_epochs": 100}})  # 4 500 steps: compile not tried
    clock = _Clock()
    trial, calls = _trials(clock, {BASELINE: 0.010, "bfloat16": 0.008, "cuda graph": 0.004})
    speed, report = resolve_speed(spec, CUDA, 4_500, trial, clock=clock)
    assert (speed.precision, speed.compile, speed.cuda_graph) == ("float32", False, True)
    assert report["chosen_by"] == "auto" and report["chosen"] == "cuda graph"
    assert report["step_seconds"] == pytest.approx(
        {BASELINE: 0.010, "bfloat16": 0.008, "cuda graph": 0.004})
    assert calls == {name: AUTO_WARMUP + AUTO_STEPS for name in calls}
    assert set(calls) == {BASELINE, "bfloat16", "cuda graph"}


def test_a_gain_inside_the_margin_keeps_float32_eager() -> None:
    assert choose_fastest({BASELINE: 0.0100, "bfloat16": 0.0098}) == BASELINE  # 2 %
    assert choose_fastest({BASELINE: 0.0100, "bfloat16": 0.0094}) == "bfloat16"  # 6 %
    assert choose_fastest({BASELINE: 0.0100, "compiled": 0.02}) == BASELINE  # slower
    assert choose_fastest({BASELINE: 0.01, "bfloat16": math.inf}) == BASELINE


def test_a_failed_trial_is_never_kept_and_is_reported() -> None:
    spec = parse_spec({"training": {"max_epochs": 10_000}})
    clock = _Clock()
    trial, _ = _trials(clock, {BASELINE: 0.01, "bfloat16": 0.02, "cuda graph": 0.02},
                       failing=("compiled",))
    speed, report = resolve_speed(spec, CUDA, 10_000 * 45, trial, clock=clock)
    assert report["chosen"] == BASELINE and not speed.compile
    assert report["step_seconds"]["compiled"] is None
    assert report["failed"] == {"compiled": "RuntimeError: no Triton here"}


@pytest.mark.parametrize("spec_data, steps, expected", [
    ({}, 1_000, [BASELINE, "bfloat16", "cuda graph"]),
    ({}, AUTO_COMPILE_MIN_STEPS, [BASELINE, "bfloat16", "compiled", "cuda graph"]),
    ({"optim": {"method": "adam"}}, 1_000, [BASELINE, "bfloat16"]),
    ({"model": {"dropout": {"p_inc_hidden": 0.5}}}, 1_000, [BASELINE, "bfloat16"]),
    ({"data": {"dataset": "shapes"}, "augment": [{"op": "random_horizontal_flip"}]}, 1_000,
     [BASELINE, "bfloat16"]),
    ({}, AUTO_MIN_RUN_STEPS - 1, []),  # too short to pay for the timing
    ({"speed": {"precision": "bfloat16"}}, 1_000, []),  # asked for: run as set
    ({"speed": {"compile": True}}, 1_000, []),
    ({"speed": {"cuda_graph": True}}, 1_000, []),
    ({"speed": {"auto": False}}, 1_000, []),
])
def test_what_auto_times(spec_data: dict, steps: int, expected: list[str]) -> None:
    names, _ = auto_candidates(parse_spec(spec_data), CUDA, steps)
    assert names == expected
    assert auto_candidates(parse_spec(spec_data), CPU, steps)[0] == []


def test_options_set_in_the_spec_are_run_as_set_without_timing() -> None:
    spec = parse_spec({"speed": {"precision": "bfloat16"}})

    def trial(choice):
        raise AssertionError("not timed")

    speed, report = resolve_speed(spec, CUDA, 10_000, trial, clock=_Clock())
    assert speed.precision == "bfloat16" and report["chosen_by"] == "spec"


@pytest.mark.parametrize("name", ["float32 eager", "bfloat16", "cuda graph"])
def test_the_throwaway_trials_step_on_the_cpu(name: str) -> None:
    """The trial steps themselves (what a GPU times) run, and leave torch's RNG alone."""
    from worker.engine.speed import CHOICES

    spec = parse_spec({"model": {"hidden": [8]}})
    before = torch.get_rng_state()
    step = speed_trial(spec, 3, (1, 8, 8), 10, 4, CPU, CHOICES[name])
    step()
    step()
    assert torch.equal(torch.get_rng_state(), before)
