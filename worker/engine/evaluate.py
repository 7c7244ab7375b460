"""Evaluation of K members: on one shared set (a run, an ensemble: X (N, …)) or each on its own
(a pack: X (K, N, …)), in eval mode, as device tensors read in one host sync (``read``)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from . import diagnostics
from . import ensemble as ens
from .models import CNN

# Evaluation runs in chunks so large validation sets never need one giant activation tensor.
EVAL_CHUNK = 8192


class _Moments:
    """Sum, sum of squares (float64) and count give each layer's std across chunks in one
    pass; ``dim``: None pools everything, 1 keeps one figure per member row."""

    def __init__(self, dim: int | None) -> None:
        self.dim, self.sums = dim, {}

    def add(self, name: str, a: torch.Tensor) -> None:
        a = a.double()
        s, s2, c = self.sums.get(name, (0.0, 0.0, 0))
        if self.dim is None:
            self.sums[name] = (s + a.sum(), s2 + (a * a).sum(), c + a.numel())
        else:
            self.sums[name] = (s + a.sum(1), s2 + (a * a).sum(1), c + a.shape[1])

    def stds(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, (s, s2, count) in self.sums.items():
            mean = s / count
            out[f"act_std/{name}"] = (s2 / count - mean * mean).clamp_min(0).sqrt()
        return out


class _Sums:
    """Running sums of the figures of (K, B, C) log-probabilities against labels (B,)."""

    def __init__(self, k: int, dev: torch.device) -> None:
        self.loss = torch.zeros((), device=dev)
        self.correct = torch.zeros((), device=dev, dtype=torch.int64)
        self.member_loss = torch.zeros(k, device=dev)
        self.member_correct = torch.zeros(k, device=dev, dtype=torch.int64)
        self.vote_correct = torch.zeros((), device=dev, dtype=torch.int64)

    def add(self, lp: torch.Tensor, yb: torch.Tensor, stacked: bool) -> None:
        combined = ens.mean_log_probs(lp)  # (B, C)
        self.loss += F.nll_loss(combined, yb, reduction="sum")
        self.correct += (combined.argmax(dim=1) == yb).sum()
        if stacked:
            k = lp.shape[0]
            self.member_loss += F.nll_loss(lp.transpose(1, 2), yb.expand(k, -1),
                                           reduction="none").sum(1)
            self.member_correct += (lp.argmax(-1) == yb).sum(1)
            self.vote_correct += (ens.vote(lp) == yb).sum()

    def figures(self, n: int, stacked: bool, combine: str) -> dict[str, torch.Tensor]:
        out = {"loss": self.loss / n, "accuracy": self.correct / n}
        if stacked:
            out["mean_accuracy"] = out["accuracy"]
            out["vote_accuracy"] = self.vote_correct / n
            if combine == "vote":
                out["accuracy"] = out["vote_accuracy"]
            out["member_loss"] = self.member_loss / n
            out["member_accuracy"] = self.member_correct / n
        return out


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, *, act_stats: bool = False,
    combine: str = "mean", mc_samples: int = 0, generator: torch.Generator | None = None,
    confusion: bool = False,
) -> dict[str, torch.Tensor]:
    """Mean loss and accuracy over (X, y) in eval mode, as device tensors (no host sync).

    loss is −log p(y) of the prediction (an ensemble's: the members' mean probability);
    accuracy follows ``combine`` for an ensemble, which also gets ``mean_accuracy``,
    ``vote_accuracy`` and per-member ``member_loss``, ``member_accuracy`` (K-vectors).
    ``mc_samples``: dropout strategy A with that many masks from ``generator``, drawn as
    ``ensemble.mc_curve`` draws them (mask after mask over the whole set), so the figure equals
    the curve's point at that many masks; else strategy B.
    With ``act_stats``, also ``act_std/<layer>``: the std of each hidden layer's post-activation
    output over this whole set — the validation set during training, so the figure is
    comparable from epoch to epoch and the training step pays nothing for it — and, from the
    same pass, ``dead_fraction/<layer>`` (ReLU family) or ``saturation/<layer>`` (tanh,
    sigmoid): diagnostics.UnitHealth. With ``confusion``, ``confusion``: the (C, C) counts of
    (true class, predicted class), the prediction the accuracy counts (``combine``).
    """
    if mc_samples:
        return evaluate_mc(model, X, y, mc_samples, generator, combine)[0]
    was_training = model.training
    model.eval()
    stacked = getattr(model, "members", None) is not None
    sums = _Sums(model.members if stacked else 1, X.device)
    moments = _Moments(None)
    health = _health(model, act_stats)
    counts = None
    for start in range(0, len(y), EVAL_CHUNK):
        xb, yb = X[start:start + EVAL_CHUNK], y[start:start + EVAL_CHUNK]
        if act_stats:
            logits, acts = model.forward_with_activations(xb)
            for name, a in acts.items():
                moments.add(name, a)
                if health is not None:
                    health.add(name, a)
            lp = (logits if stacked else logits[None]).log_softmax(-1)
        else:
            lp = ens.member_log_probs(model, xb)
        sums.add(lp, yb, stacked)
        if confusion:
            pred = (ens.vote(lp) if stacked and combine == "vote"
                    else ens.mean_log_probs(lp).argmax(1))
            counts = _confusion(counts, yb[None], pred[None], lp.shape[-1])[0]
    model.train(was_training)
    # An ensemble pools its members (the mean of equal-sized shares), as act_std does.
    units = {} if health is None else {k: v.mean() for k, v in health.figures().items()}
    matrix = {} if counts is None else {"confusion": counts}
    return {**sums.figures(len(y), stacked, combine), **moments.stds(), **units, **matrix}


def _confusion(counts: torch.Tensor | None, y: torch.Tensor, pred: torch.Tensor,
               c: int) -> torch.Tensor:
    """Running (K, C, C) counts of (true, predicted) for K rows of labels and predictions."""
    k = y.shape[0]
    cell = (torch.arange(k, device=y.device)[:, None] * c + y) * c + pred
    new = torch.bincount(cell.reshape(-1), minlength=k * c * c).reshape(k, c, c)
    return new if counts is None else counts + new


def _health(model: torch.nn.Module, act_stats: bool) -> diagnostics.UnitHealth | None:
    if act_stats and diagnostics.HEALTH_FIGURES:
        return diagnostics.UnitHealth(model)
    return None


@torch.no_grad()
def evaluate_mc(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, samples: int,
    generator: torch.Generator | None, combine: str = "mean",
) -> tuple[dict[str, torch.Tensor], list[list[float]]]:
    """Dropout strategy A with ``samples`` masks: (``evaluate``'s figures, ``ensemble.mc_curve``'s
    curve), from one set of masks, so the figure is the curve's last point."""
    stacked = getattr(model, "members", None) is not None
    lp, curve = ens.mc_curve(model, X, y, samples, generator, EVAL_CHUNK)
    sums = _Sums(lp.shape[0], X.device)
    sums.add(lp, y, stacked)
    return sums.figures(len(y), stacked, combine), curve


def _by_member(model: torch.nn.Module, a: torch.Tensor, k: int) -> torch.Tensor:
    """A stacked hidden layer's output as (K, values of member k)."""
    if isinstance(model, CNN):  # (B, K·C, …): member k's channels are block k
        return a.unflatten(1, (k, -1)).transpose(0, 1).reshape(k, -1)
    return a.reshape(k, -1)  # MLP: feature-major (K, d, B)


@torch.no_grad()
def evaluate_members(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, *, act_stats: bool = False,
    confusion: bool = False,
) -> dict[str, torch.Tensor]:
    """Each member on its own set, X (K, N, …) and y (K, N): K-vectors of mean loss, accuracy
    and, with ``act_stats``, ``act_std/<layer>`` and the health figures; with ``confusion``,
    (K, C, C) counts — per member what ``evaluate`` gives a single run. Device tensors, no
    host sync."""
    was_training = model.training
    model.eval()
    k, n = y.shape
    loss = torch.zeros(k, device=X.device)
    correct = torch.zeros(k, device=X.device, dtype=torch.int64)
    moments = _Moments(1)
    health = _health(model, act_stats)
    counts = None
    for start in range(0, n, EVAL_CHUNK):
        xb, yb = X[:, start:start + EVAL_CHUNK], y[:, start:start + EVAL_CHUNK]
        if act_stats:
            logits, acts = model.forward_with_activations(xb)
            for name, a in acts.items():
                moments.add(name, _by_member(model, a, k))
                if health is not None:
                    health.add(name, a)
        else:
            logits = model(xb)
        lp = logits.contiguous().log_softmax(-1)  # (K, B, C)
        loss += F.nll_loss(lp.transpose(1, 2), yb, reduction="none").sum(1)
        correct += (lp.argmax(-1) == yb).sum(1)
        if confusion:
            counts = _confusion(counts, yb, lp.argmax(-1), lp.shape[-1])
    model.train(was_training)
    units = {} if health is None else health.figures()
    matrix = {} if counts is None else {"confusion": counts}
    return {"loss": loss / n, "accuracy": correct / n, **moments.stds(), **units, **matrix}


def read(values: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Device tensors to Python floats (scalars) or lists (vectors) in one host sync."""
    if not values:
        return {}
    keys = list(values)
    flat = [values[k].detach().double().reshape(-1) for k in keys]
    nums = torch.cat(flat).tolist()
    out: dict[str, Any] = {}
    i = 0
    for k, v, f in zip(keys, (values[k] for k in keys), flat):
        out[k] = nums[i] if v.ndim == 0 else nums[i:i + len(f)]
        i += len(f)
    return out
