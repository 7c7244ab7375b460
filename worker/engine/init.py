"""Weight initialisation (COURSE.md §5), with the bound or std actually used per layer.

For a weight of shape (out, in, *kernel): fan_in = in·k, fan_out = out·k (k = kernel size
product, 1 for Linear), as torch.nn.init computes them.

    pytorch          keep torch's default: U[−1/√fan_in, 1/√fan_in] (weights and biases)
    xavier_uniform   U[−b, b],  b = √6 / √(fan_in + fan_out)      (Glorot; not the slide's "+1")
    xavier_normal    N(0, s²),  s = √2 / √(fan_in + fan_out)
    kaiming_uniform  U[−b, b],  b = √(6 / fan_in)                 (He, ReLU; not the slide's 2/√d)
    kaiming_normal   N(0, s²),  s = √(2 / fan_in)
    normal           N(0, std²)  (init.std)
    constant         every weight = init.value
    zeros            every weight = 0

Biases: the pytorch scheme keeps torch's default U[±1/√fan_in]; every other scheme sets them to
0. Zero biases are the common companion of Glorot/He, and they are what makes the course's
question honest: with a constant scheme every unit of a layer starts identical — incoming
weights *and* bias — and so stays identical forever. Batchnorm's γ, β always start at 1, 0.
Xavier and Kaiming use gain 1 and √2 whatever the activation (the course's formulas).

Draws use the torch RNG the caller has seeded, with the same calls as torch.nn.init, so the
same generator state gives the same tensors as torch.nn.init.xavier_uniform_ and friends.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .spec import InitSpec


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a (out, in, *kernel) weight."""
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def init_parameters(scheme: str, fan_in: int, fan_out: int, init: InitSpec) -> dict[str, Any]:
    """What a scheme draws from for a layer with these fans: {"scheme", "bound"|"std"|"value"}."""
    if scheme == "pytorch":
        return {"scheme": scheme, "bound": 1 / math.sqrt(fan_in)}
    if scheme == "xavier_uniform":
        return {"scheme": scheme, "bound": math.sqrt(6) / math.sqrt(fan_in + fan_out)}
    if scheme == "xavier_normal":
        return {"scheme": scheme, "std": math.sqrt(2) / math.sqrt(fan_in + fan_out)}
    if scheme == "kaiming_uniform":
        return {"scheme": scheme, "bound": math.sqrt(6 / fan_in)}
    if scheme == "kaiming_normal":
        return {"scheme": scheme, "std": math.sqrt(2 / fan_in)}
    if scheme == "normal":
        return {"scheme": scheme, "std": init.std}
    if scheme == "constant":
        return {"scheme": scheme, "value": init.value}
    if scheme == "zeros":
        return {"scheme": scheme, "value": 0.0}
    raise ValueError(f"unknown init scheme {init.scheme!r}")


@torch.no_grad()
def initialise(layers: dict[str, nn.Module], init: InitSpec) -> dict[str, dict[str, Any]]:
    """Initialise each named layer's weight (and bias) in order; return what was used per layer.
    ``layers``: name → a module with ``weight`` (out, in, *kernel) and ``bias``."""
    report = {}
    for name, layer in layers.items():
        w: torch.Tensor = layer.weight  # type: ignore[assignment]
        fan_in, fan_out = fans(w)
        used = init_parameters(init.scheme, fan_in, fan_out, init)
        report[name] = used
        if init.scheme == "pytorch":
            continue  # the layer's constructor already drew torch's default
        if "bound" in used:
            w.uniform_(-used["bound"], used["bound"])
        elif "std" in used:
            w.normal_(0.0, used["std"])
        else:
            w.fill_(used["value"])
        bias = getattr(layer, "bias", None)
        if bias is not None:
            bias.zero_()
    return report
