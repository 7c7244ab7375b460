"""``train(spec)``: one run (or one ensemble) with the course's minibatch SGD, z* tracking,
early stopping and the diagnostics the lessons show; the loop itself is loop.py, shared with
packs. The run reports through ``Callbacks`` only, so Celery, the CLI, tests and benchmarks all
drive the same code. Threads are the caller's business (the worker process sets them).

An ensemble (``ensemble.members`` = K > 1) is one stacked network trained by the same loop:
each step takes K minibatches (one per member, each in its member's own order) and one batched
forward/backward.

``spec.speed`` changes how the network runs, never what is trained (speed.py).
"""

from __future__ import annotations

from os import PathLike

import torch

from .evaluate import EVAL_CHUNK, evaluate
from .loop import Callbacks, Snapshot, Stack, TrainOutcome, make_members, run
from .spec import Spec
from .speed import COMPILE_BACKEND, apply_speed
from .step import STEPS_REGION

__all__ = [
    "COMPILE_BACKEND", "EVAL_CHUNK", "STEPS_REGION", "TIMING_KEYS", "Callbacks", "CompileError",
    "TrainOutcome", "apply_speed", "evaluate", "resolve_device", "train",
]

# Figures that depend on the machine's speed, not on the seed.
TIMING_KEYS = ("epoch_seconds", "examples_per_second")


class CompileError(RuntimeError):
    """speed.compile was asked for and torch.compile could not compile the network here."""


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available here")
    return torch.device(requested)


def train(
    spec: Spec, callbacks: Callbacks | None = None, *, device: str | None = None,
    data_root: PathLike | str | None = None, resume: dict | None = None,
) -> TrainOutcome:
    """Train the network ``spec`` describes and return the model ``training.keep`` asks for.

    ``resume``: a snapshot given to ``on_checkpoint``; training goes on after its epoch with
    the same parameters, optimiser state, z*, early-stopping deadline and random streams, so
    the epochs that follow are those of an uninterrupted run.

    With ``speed.compile``, a failure of torch.compile (no C++ compiler for the CPU backend,
    no Triton for the GPU one, an unsupported operation) is a CompileError whose message says
    what failed, instead of the compiler's own deep traceback. The run fails rather than going
    on uncompiled: its timings would then silently measure something else than was asked."""
    if not spec.speed.compile:
        return _train(spec, callbacks, device, data_root, resume)
    from torch._dynamo.exc import TorchDynamoException  # imported only when compiling (~2 s)

    try:
        return _train(spec, callbacks, device, data_root, resume)
    except TorchDynamoException as e:
        inner = getattr(e, "inner_exception", None) or e  # what the backend itself raised
        lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
        why = type(inner).__name__ + (f": {lines[0]}" if lines else "")
        raise CompileError(
            f"speed.compile: torch.compile could not compile the network on this worker "
            f"({why}); run with speed.compile off"
        ) from None


def _train(
    spec: Spec, callbacks: Callbacks | None, device: str | None,
    data_root: PathLike | str | None, resume: dict | None,
) -> TrainOutcome:
    # Member k of an ensemble is initialised from seed + k and draws its own order.
    seeds = [spec.seed + k for k in range(spec.ensemble.members)]
    stack = Stack([spec], seeds, resolve_device(device or spec.device), data_root,
                  own_data=False)
    members = make_members(stack, [spec], [callbacks or Callbacks()],
                           None if resume is not None else stack.start())
    snap = None if resume is None else Snapshot.from_dict(resume)
    return run(stack, members, resume=snap)[0]
