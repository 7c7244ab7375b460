"""Which spec changes keep a run's start and minibatch order (SPEC.md "Forks and controlled
comparisons"). No torch: the API decides forks and "same start and order" with it.

``seed`` alone decides z0, the split and the minibatch order (datasets.derive_seed), so two
specs that differ only in optimisation knobs start from the same z0 and see the same
minibatches: their difference is the knobs' doing. The knobs are η, momentum, the schedule,
λ, patience and which model is kept; a label (``name``) changes nothing trained.
"""

from __future__ import annotations

from typing import Any

from .spec import Spec

# Field paths whose change keeps z0 and the minibatch order; a path covers what is below it.
KNOBS: tuple[str, ...] = (
    "optim.lr", "optim.momentum", "optim.schedule", "optim.weight_decay",
    "training.early_stopping.patience", "training.keep",
)
LABELS: tuple[str, ...] = ("name",)
# How the returned model is measured after training (dropout strategy A's masks come from a
# generator of their own): two runs differing here train identically. Not a fork's knob.
MEASUREMENT: tuple[str, ...] = ("model.dropout.inference", "model.dropout.mc_samples")


def merged(base: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    """``partial`` over ``base``, dicts merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in partial.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def changed_paths(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """The leaf field paths (``optim.lr``) whose values differ between two spec dicts."""
    paths = []
    for key in sorted(set(a) | set(b)):
        path = f"{prefix}{key}"
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            paths += changed_paths(x, y, path + ".")
        elif x != y:
            paths.append(path)
    return paths


def _covered(path: str, by: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in by)


def not_knobs(a: Spec, b: Spec) -> list[str]:
    """The changed field paths that are not optimisation knobs (nor the label)."""
    return [p for p in changed_paths(a.model_dump(mode="json"), b.model_dump(mode="json"))
            if not _covered(p, KNOBS + LABELS)]


def start_changes(a: Spec, b: Spec) -> list[str]:
    """The changed field paths that change z0 or the minibatch order: neither a knob, nor the
    label, nor how the returned model is measured."""
    return [p for p in not_knobs(a, b) if not _covered(p, MEASUREMENT)]


def same_start_and_order(a: Spec, b: Spec) -> bool:
    """Same seed, same data, same architecture and initialisation, same everything that draws
    randomness: the two runs share z0 and the minibatch order, whatever their knobs."""
    return not start_changes(a, b)
