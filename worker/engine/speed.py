"""``spec.speed``: how the same computation runs (bfloat16 autocast, torch.compile), never what
is trained."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .spec import SpeedSpec

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
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out = fn(*args, **kwargs)
        if isinstance(out, tuple):  # forward_with_activations: (logits, {layer: activations})
            return (out[0].float(), *out[1:])
        return out.float()

    return run
