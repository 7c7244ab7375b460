"""``spec.speed``: how the same computation runs (bfloat16 autocast, torch.compile), never what
is trained."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .spec import Spec, SpeedSpec

Clock = Callable[[], float]

# torch.compile's backend for speed.compile (inductor: C++ kernels on the CPU, Triton on GPUs).
COMPILE_BACKEND: str | Callable = "inductor"


def apply_speed(model: torch.nn.Module, speed: SpeedSpec, device: torch.device) -> None:
    """``spec.speed`` on a built network, in place; its parameters and state_dict keys are
    unchanged, so checkpoints, resume and the stored model are the same as without it.

    bfloat16: ``forward`` and ``forward_with_activations`` run under torch.autocast(bfloat16)
    and hand back float32 logits, so every caller (training step, evaluation, Monte-Carlo
    dropout, diagnostics) gets the same autocast and reduces in float32; parameters, gradients
    and the optimiser stay float32. compile: ``Module.compile()``, which compiles the module's
    call and keeps the module itself (``torch.compile(model)`` would wrap it and prefix every
    state_dict key). Compilation is lazy: it happens at the first call of each kind (training,
    evaluation), and a failure then is turned into a CompileError by ``train``.
    """
    if speed.precision == "bfloat16":
        for name in ("forward", "forward_with_activations"):
            if hasattr(model, name):
                setattr(model, name, _autocast_bf16(getattr(model, name), device.type))
    if speed.compile:
        model.compile(backend=COMPILE_BACKEND)


def _autocast_bf16(fn: Callable, device_type: str) -> Callable:
    def run(*args: Any, **kwargs: Any) -> Any:
        # No cast cache: each weight is cast once per forward anyway, and a CUDA graph
        # capture (graph.py) must not hold on to cached casts (torch.cuda.graphs' rule).
        with torch.autocast(device_type, dtype=torch.bfloat16, cache_enabled=False):
            out = fn(*args, **kwargs)
        if isinstance(out, tuple):  # forward_with_activations: (logits, {layer: activations})
            return (out[0].float(), *out[1:])
        return out.float()

    return run


# --- speed.auto: on a GPU, time the ways to run the same step and keep the fastest -------------

# Timed steps per candidate, after AUTO_WARMUP untimed ones (compilation, capture, allocations).
AUTO_STEPS = 10
AUTO_WARMUP = 5
# A candidate must be this much faster than float32 eager to be kept: never slower, and not a
# different precision for a gain inside the timing's noise.
AUTO_MIN_GAIN = 1.05
# torch.compile takes seconds to tens of seconds per network (26.7 s for a compiled shapes CNN's
# 3 epochs against 2.2 s eager on the H200, issue 19): only a run this long may pay it back.
AUTO_COMPILE_MIN_STEPS = 5000
# Timing costs some (AUTO_WARMUP + AUTO_STEPS) × 4 throwaway steps: a run shorter than this is
# not timed (what the timing costs would be a sizeable part of the run; under 5 % from here).
AUTO_MIN_RUN_STEPS = 1000

BASELINE = "float32 eager"


@dataclass(frozen=True)
class SpeedChoice:
    """One way to run the step: the spec.speed fields it sets."""

    name: str
    precision: str = "float32"
    compile: bool = False
    cuda_graph: bool = False

    def applied_to(self, speed: SpeedSpec) -> SpeedSpec:
        return speed.model_copy(update={"precision": self.precision, "compile": self.compile,
                                        "cuda_graph": self.cuda_graph})


CHOICES = {
    BASELINE: SpeedChoice(BASELINE),
    "bfloat16": SpeedChoice("bfloat16", precision="bfloat16"),
    "compiled": SpeedChoice("compiled", compile=True),
    "cuda graph": SpeedChoice("cuda graph", cuda_graph=True),
}


def auto_candidates(spec: Spec, device: torch.device, total_steps: int) -> tuple[list[str], str]:
    """(the choices speed.auto times, why): none on the CPU, with auto off, or when the spec
    already asks for an option (it is then run as asked)."""
    from .graph import graph_reason

    speed = spec.speed
    if not speed.auto:
        return [], "speed.auto is off: run as set"
    if device.type != "cuda":
        return [], "on the CPU nothing is timed: the options stay as set"
    if speed.precision != "float32" or speed.compile or speed.cuda_graph:
        return [], "speed options set in the spec: run as set"
    if total_steps < AUTO_MIN_RUN_STEPS:
        return [], (f"a run of {total_steps} steps is too short to pay for timing: "
                    "float32 eager")
    names = [BASELINE, "bfloat16"]
    if total_steps >= AUTO_COMPILE_MIN_STEPS:
        names.append("compiled")
    if graph_reason(spec, device) is None:
        names.append("cuda graph")
    return names, "timed on throwaway steps"


def choose_fastest(seconds: dict[str, float]) -> str:
    """The fastest choice if it is at least AUTO_MIN_GAIN× faster than float32 eager, else
    float32 eager. A choice whose trial failed (inf) is never kept."""
    best = min(seconds, key=lambda name: seconds[name])
    base = seconds.get(BASELINE, math.inf)
    if best != BASELINE and math.isfinite(seconds[best]) and base >= AUTO_MIN_GAIN * seconds[best]:
        return best
    return BASELINE


def median_step_seconds(step: Callable[[], None], clock: Clock, *, warmup: int = AUTO_WARMUP,
                        steps: int = AUTO_STEPS) -> float:
    """Median seconds of ``step()`` after ``warmup`` untimed calls; the clock is read once
    before the timed steps and once after each (``step`` waits for its kernels itself)."""
    for _ in range(warmup):
        step()
    times, last = [], clock()
    for _ in range(steps):
        step()
        now = clock()
        times.append(now - last)
        last = now
    return statistics.median(times)


def resolve_speed(
    spec: Spec, device: torch.device, total_steps: int,
    trial: Callable[[SpeedChoice], Callable[[], None]], clock: Clock = time.perf_counter,
) -> tuple[SpeedSpec, dict[str, Any]]:
    """(the speed options to train with, ``result.speed``). ``trial(choice)`` builds one
    throwaway training step run that way (a copy of the network on random data: the run's own
    network, data and random streams are not touched). A trial that fails (a compiler missing,
    a capture refused) counts as infinitely slow and its error is reported."""
    names, why = auto_candidates(spec, device, total_steps)
    if not names:
        return spec.speed, {"chosen_by": "spec", "why": why, **_options(spec.speed)}
    seconds: dict[str, float] = {}
    failed: dict[str, str] = {}
    for name in names:
        try:
            seconds[name] = median_step_seconds(trial(CHOICES[name]), clock)
        except Exception as exc:  # noqa: BLE001 - any failure means: not this way
            seconds[name] = math.inf
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    chosen = choose_fastest(seconds)
    speed = CHOICES[chosen].applied_to(spec.speed)
    report: dict[str, Any] = {
        "chosen_by": "auto", "chosen": chosen, "why": why, **_options(speed),
        "step_seconds": {n: (s if math.isfinite(s) else None) for n, s in seconds.items()},
    }
    if failed:
        report["failed"] = failed
    return speed, report


def _options(speed: SpeedSpec) -> dict[str, Any]:
    return {"precision": speed.precision, "compile": speed.compile,
            "cuda_graph": speed.cuda_graph}
