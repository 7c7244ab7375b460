"""Accuracy bars of the engine against published figures (COURSE.md's datasets, CPU-sized)."""

from __future__ import annotations

import statistics

import torch

from bench.common import Row
from worker.engine import parse_spec
from worker.engine.pack import train_pack

# (name, spec, published test accuracy, how close we must come, where the figure comes from)
CASES = [
    ("digits MLP, default spec", {}, 0.97, 0.0, "the issue's bar"),
    ("mnist1d MLP", {"data": {"dataset": "mnist1d"}, "model": {"hidden": [256, 256]},
                     "optim": {"lr": 0.05}, "training": {"max_epochs": 100,
                                                         "early_stopping": {"patience": 30}}},
     0.68, 0.04, "mnist1d paper: MLP 68 %"),
    ("mnist1d CNN", {"data": {"dataset": "mnist1d"},
                     "model": {"arch": "cnn", "hidden": [32, 64, 64]},
                     "optim": {"lr": 0.05}, "training": {"max_epochs": 60,
                                                         "early_stopping": {"patience": 20}}},
     0.90, 0.0, "the issue's bar (paper: CNN 94 %)"),
]


# Seeds each case is trained with (as one pack); the row reports the median. One seed alone
# swung the digits MLP between 0.958 and 0.978 from one machine to the other (float round-off
# of different CPU kernels, same code).
SEEDS = (0, 1, 2)


def run(smoke: bool = False) -> list[Row]:
    torch.set_num_threads(1)
    rows = []
    for name, spec, published, slack, source in CASES[:1] if smoke else CASES:
        data = {**spec, "training": {**spec.get("training", {}), "max_epochs": 2}} if smoke \
            else spec
        outcomes = train_pack([parse_spec({**data, "seed": seed}) for seed in SEEDS])
        accuracies = [o.result["test_accuracy"] for o in outcomes]
        accuracy = statistics.median(accuracies)
        rows.append(Row(f"test accuracy: {name}", source, published, "Époque", accuracy,
                        "accuracy", f"≥ {published - slack:.2f}",
                        None if smoke else accuracy >= published - slack,
                        note=f"median of seeds {', '.join(map(str, SEEDS))}: "
                             + ", ".join(f"{a:.3f}" for a in accuracies)))
    return rows
