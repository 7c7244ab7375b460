"""Engine vs bare PyTorch on the digits MLP: (a) a bare loop, (b) a naive DataLoader loop,
(c-off) the engine with diagnostics off, (c-on) the default spec persisted by a real worker;
and what the training-health figures add to an epoch with layer_stats on."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bench.common import Row, interleaved
from worker.engine import Callbacks, diagnostics, load_dataset, parse_spec, train


def _mlp(d_in: int, hidden: list[int], n_out: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    for d in hidden:
        layers += [nn.Linear(d_in, d), nn.ReLU()]
        d_in = d
    return nn.Sequential(*layers, nn.Linear(d_in, n_out))


def bare_epochs(X: torch.Tensor, y: torch.Tensor, hidden: list[int], m: int,
                epochs: int) -> list[float]:
    """(a) What a careful person writes by hand: in-memory tensors, slices of a permutation.
    Returns each epoch's seconds."""
    torch.manual_seed(0)
    model = _mlp(X[0].numel(), hidden, int(y.max()) + 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, foreach=True)
    n = len(y)
    seconds = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        Xs, ys = X[perm], y[perm]
        for i in range(n // m):
            loss = F.cross_entropy(model(Xs[i * m:(i + 1) * m]), ys[i * m:(i + 1) * m])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds.append(time.perf_counter() - t0)
    return seconds


def dataloader_epochs(X: torch.Tensor, y: torch.Tensor, hidden: list[int], m: int,
                      epochs: int) -> None:
    """(b) The tutorial loop: DataLoader(TensorDataset), loss.item() every step."""
    torch.manual_seed(0)
    model = _mlp(X[0].numel(), hidden, int(y.max()) + 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(TensorDataset(X, y), batch_size=m, shuffle=True, drop_last=True)
    for _ in range(epochs):
        total = 0.0
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()


def engine_epoch_seconds(spec_data: dict) -> float:
    """Median epoch_seconds the engine reports (its whole epoch: training, validation, reads)."""
    out = train(parse_spec(spec_data), Callbacks())
    return statistics.median(m["epoch_seconds"] for m in out.metrics[1:])


def health_epoch_seconds(spec_data: dict, health: bool) -> float:
    """``engine_epoch_seconds`` with the health figures (update ratio, dead units, saturation)
    on or off; the rest of layer_stats is computed either way."""
    diagnostics.HEALTH_FIGURES = health
    try:
        return engine_epoch_seconds(spec_data)
    finally:
        diagnostics.HEALTH_FIGURES = True


def run(smoke: bool = False) -> list[Row]:
    torch.set_num_threads(1)
    epochs = 3 if smoke else 30
    repeats = 1 if smoke else 7
    hidden, m = [128, 128], 32
    spec = {"model": {"hidden": hidden}, "optim": {"batch_size": m},
            "training": {"max_epochs": epochs}}
    off = {**spec, "diagnostics": {"layer_stats": False, "boundary": "off"}}
    data = load_dataset(parse_spec(spec))
    X, y = data.X_train, data.y_train

    # Alternated repetitions, each the median of its epochs after the first (as the engine's).
    stats = {**spec, "diagnostics": {"layer_stats": True, "boundary": "off"}}
    bare_runs, off_runs, on_runs, plain_runs, health_runs = [], [], [], [], []
    for _ in range(repeats):
        bare_runs.append(statistics.median(bare_epochs(X, y, hidden, m, epochs)[1:]))
        off_runs.append(engine_epoch_seconds(off))
        on_runs.append(engine_epoch_seconds(spec))
        plain_runs.append(health_epoch_seconds(stats, health=False))
        health_runs.append(health_epoch_seconds(stats, health=True))
    bare, engine_off, engine_on, plain, health = (
        statistics.median(r) for r in (bare_runs, off_runs, on_runs, plain_runs, health_runs))
    loader = interleaved({"dataloader": lambda: dataloader_epochs(X, y, hidden, m, epochs)},
                         repeats)["dataloader"] / epochs
    return [
        Row("engine, diagnostics off vs bare loop (digits MLP, m=32, 1 thread)",
            "bare loop", bare, "Époque engine", engine_off, "s/epoch", "ratio ≤ 1.05",
            engine_off / bare <= 1.05),
        Row("engine, default metrics on vs bare loop (in process)", "bare loop", bare,
            "Époque engine", engine_on, "s/epoch", "informative", None),
        Row("training-health figures: layer_stats with vs without them (digits MLP)",
            "layer_stats without", plain, "layer_stats with health", health, "s/epoch",
            "ratio ≤ 1.05", health / plain <= 1.05),
        Row("engine vs naive DataLoader loop", "DataLoader loop", loader, "Époque engine",
            engine_off, "s/epoch", "ratio < 1", engine_off < loader),
    ]
