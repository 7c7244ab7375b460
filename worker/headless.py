"""``epoque train``: one run without server or broker, a progress bar, results in a folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from tqdm import tqdm

from worker.engine import Callbacks, Spec, TrainOutcome, train
from worker.engine.modelfile import write_model
from worker.timing import choose_threads


def train_to_folder(
    spec: Spec, out: Path, *, threads: int | None = None, data_root: Path | None = None
) -> TrainOutcome:
    torch.set_num_threads(threads or choose_threads(spec, data_root=data_root))
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, int, float]] = []
    bar = tqdm(total=spec.training.max_epochs, unit="epoch", desc=spec.name or "train")

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        rows.extend((key, epoch, value) for key, value in metrics.items())
        bar.set_postfix(loss=f"{metrics['train_loss']:.4f}", val_acc=f"{metrics['val_accuracy']:.3f}")
        bar.update(1)

    try:
        outcome = train(spec, Callbacks(on_epoch=on_epoch), data_root=data_root)
    finally:
        bar.close()
    with (out / "metrics.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "x", "value"])
        writer.writerows(rows)
    (out / "spec.json").write_text(spec.model_dump_json(indent=2))
    (out / "result.json").write_text(
        json.dumps({"status": outcome.status, **outcome.result}, indent=2)
    )
    write_model(out / "model.pt", spec, outcome)
    return outcome
