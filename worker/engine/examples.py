"""The examples of one confusion-matrix cell (SPEC.md "Looking inside"): the validation
examples of a true class that a model predicts as a class, with its probabilities and, for
image data, a PNG; for other data (a 1-D signal, a 2-D point) the input itself, as the model
sees it (2-D sets standardised, as the decision-boundary grid is). The prediction is the one the confusion matrix counts (evaluate.py): the
argmax of the (members' mean) probability, or an ensemble's vote when it combines by vote.

``spread`` is the uncertainty of those probabilities, per class: the std across an ensemble's
members, or across dropout masks for a run that infers with them (strategy A: its
``mc_samples`` masks, from its own seed-derived stream); null otherwise."""

from __future__ import annotations

import copy
from os import PathLike
from typing import Any

import torch

from . import ensemble as ens
from .datasets import derive_seed, load_dataset
from .datasets.catalog import dataset_info
from .evaluate import EVAL_CHUNK
from .previews import to_png
from .spec import Spec


@torch.no_grad()
def cell_examples(
    model: torch.nn.Module, spec: Spec, *, true: int | None, pred: int | None, limit: int,
    data_root: PathLike | str | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` examples of S_v (rebuilt from ``spec``: same seed, same split) with
    label ``true`` and prediction ``pred`` (None: any), in S_v's order: {index (in S_v),
    label, pred, probabilities, spread, png (bytes, image data only; else None), input (the
    flattened input, non-image data only; else None)}."""
    data = load_dataset(spec, data_root)
    model.eval()
    stacked = getattr(model, "members", None) is not None
    vote = stacked and spec.ensemble.combine == "vote"
    probs, preds = [], []
    for start in range(0, len(data.y_val), EVAL_CHUNK):
        lp = ens.member_log_probs(model, data.X_val[start:start + EVAL_CHUNK])
        mean = ens.mean_log_probs(lp)
        probs.append(mean.exp())
        preds.append(ens.vote(lp) if vote else mean.argmax(1))
    p, predicted, y = torch.cat(probs), torch.cat(preds), data.y_val
    keep = torch.ones_like(y, dtype=torch.bool)
    if true is not None:
        keep &= y == true
    if pred is not None:
        keep &= predicted == pred
    image = dataset_info(spec.data.dataset, data_root).kind == "image"
    chosen = keep.nonzero().flatten()[:limit]
    spread = _spread(model, spec, data.X_val[chosen], stacked)
    out = []
    for j, i in enumerate(chosen.tolist()):
        out.append({"index": i, "label": int(y[i]), "pred": int(predicted[i]),
                    "probabilities": p[i].tolist(),
                    "spread": None if spread is None else spread[j].tolist(),
                    "png": to_png(data.X_val[i].reshape(data.input_shape)) if image else None,
                    "input": None if image else data.X_val[i].flatten().tolist()})
    return out


def _spread(model: torch.nn.Module, spec: Spec, x: torch.Tensor,
            stacked: bool) -> torch.Tensor | None:
    """(B, C) std of the class probabilities across members or dropout masks; None: neither."""
    if stacked:
        return ens.member_log_probs(model, x).exp().std(0, correction=0)
    dropout = spec.model.dropout
    if dropout.inference != "mc" or not model.dropouts():  # type: ignore[operator]
        return None
    # A copy: the caller's model may serve other requests meanwhile, and mc_dropout switches
    # its dropout layers on while it runs.
    net = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(derive_seed(spec.seed, "mc"))
    with ens.mc_dropout(net, gen):
        draws = torch.stack([ens.probabilities(net, x) for _ in range(dropout.mc_samples)])
    return draws.std(0, correction=0)
