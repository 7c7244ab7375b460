"""The training loop: minibatch SGD with the course's momentum, z* tracking, early stopping.

Read top to bottom: set up (data on the device, seeded model, optimiser), evaluate the initial
model (z* starts there, COURSE.md §3), then one block per epoch. The loop reports through
``Callbacks`` only, so Celery, the CLI, tests and benchmarks all drive the same code.
Threads are the caller's business (the worker process sets them), not the engine's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .datasets import derive_seed, load_dataset
from .diagnostics import distinct_units, grad_stds, weight_norm
from .early_stopping import EarlyStopping
from .models import MLP, build_model
from .optim import MomentumSGD, param_groups
from .schedules import lr_at
from .spec import Spec

# Figures that depend on the machine's speed, not on the seed.
TIMING_KEYS = ("epoch_seconds", "examples_per_second")
# Evaluation runs in chunks so large validation sets never need one giant activation tensor.
EVAL_CHUNK = 8192


def _no_epoch(epoch: int, metrics: dict[str, float]) -> None:
    pass


@dataclass
class Callbacks:
    # After each epoch: epoch from 1 and {metric key: value}; values may be NaN or inf.
    on_epoch: Callable[[int, dict[str, float]], None] = _no_epoch
    # Polled after each epoch; True cancels the run (z* is kept, test figures computed).
    should_stop: Callable[[], bool] = lambda: False
    # Before each epoch: (epoch, scheduled η) -> η chosen by hand, or None to follow the schedule.
    current_lr: Callable[[int, float], float | None] = lambda epoch, scheduled: None


@dataclass
class TrainOutcome:
    status: str  # "succeeded" | "cancelled" | "diverged"
    result: dict  # SPEC.md's result object, every figure computed on z*
    state_dict: dict[str, torch.Tensor]  # z*, on the CPU
    classes: list[str]
    input_shape: tuple[int, ...] = ()  # one example's shape, e.g. (1, 8, 8) for digits
    metrics: list[dict[str, float]] = field(default_factory=list)  # what on_epoch received


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available here")
    return torch.device(requested)


@torch.no_grad()
def evaluate(
    model: MLP, X: torch.Tensor, y: torch.Tensor, *, act_stats: bool = False
) -> dict[str, torch.Tensor]:
    """Mean loss and accuracy over (X, y) in eval mode, as device scalars (no host sync).

    With ``act_stats``, also ``act_std/<layer>``: the std of each hidden layer's
    post-activation output over this whole set — the validation set during training, so the
    figure is comparable from epoch to epoch and the training step pays nothing for it.
    """
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=X.device)
    correct = torch.zeros((), device=X.device, dtype=torch.int64)
    # Sum and sum of squares (float64) give the std across chunks in one pass.
    moments: dict[str, tuple] = {}
    for start in range(0, len(y), EVAL_CHUNK):
        xb, yb = X[start:start + EVAL_CHUNK], y[start:start + EVAL_CHUNK]
        if act_stats:
            logits, acts = model.forward_with_activations(xb)
            for name, a in acts.items():
                a = a.double()
                s, s2 = moments.get(name, (0.0, 0.0))
                moments[name] = (s + a.sum(), s2 + (a * a).sum())
        else:
            logits = model(xb)
        loss_sum += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(dim=1) == yb).sum()
    model.train(was_training)

    n = len(y)
    out = {"loss": loss_sum / n, "accuracy": correct / n}
    hidden_width = {name: model.linear(name).out_features for name in model.hidden_names}
    for name, (s, s2) in moments.items():
        count = n * hidden_width[name]
        mean = s / count
        out[f"act_std/{name}"] = (s2 / count - mean * mean).clamp_min(0).sqrt()
    return out


def _read(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Device scalars to Python floats in one host sync."""
    if not values:
        return {}
    keys = list(values)
    nums = torch.stack([values[k].double() for k in keys]).tolist()
    return dict(zip(keys, nums))


def train(
    spec: Spec, callbacks: Callbacks | None = None, *, device: str | None = None
) -> TrainOutcome:
    """Train the network ``spec`` describes and return z*, the best model on S_v."""
    cb = callbacks or Callbacks()
    dev = resolve_device(device or spec.device)

    # Data: whole tensors on the device; minibatches are slices of a permuted copy.
    data = load_dataset(spec)
    X_train, y_train = data.X_train.to(dev), data.y_train.to(dev)
    X_val, y_val = data.X_val.to(dev), data.y_val.to(dev)
    n = len(y_train)
    # m larger than n would mean ⌊n/m⌋ = 0 updates per epoch; treat it as full batch.
    m = n if spec.optim.batch_size == "full" else min(spec.optim.batch_size, n)
    n_batches = n // m  # the n mod m left over are skipped this epoch (COURSE.md §2)

    # Model: initialised on the CPU from the seed (same z0 on any device), without disturbing
    # the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = build_model(spec, data.input_shape, len(data.classes))
    model.to(dev).train()
    groups = param_groups(model)
    weights = [p for g in groups if g["kind"] == "weights" for p in g["params"]]
    optimizer = MomentumSGD(groups, lr=spec.optim.lr, momentum=spec.optim.momentum)
    # Own generator for the minibatch order: a CPU one, so the order is the same on any device.
    order = torch.Generator().manual_seed(derive_seed(spec.seed, "order"))

    layer_stats = spec.diagnostics.layer_stats
    es = spec.training.early_stopping
    initial = _read(evaluate(model, X_val, y_val))
    monitored = "loss" if es.monitor == "val_loss" else "accuracy"
    stopper = EarlyStopping(es.patience, es.monitor, initial=initial[monitored])
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}  # z* ← z

    status, diverged_epoch, history = "succeeded", None, []
    epoch = 0
    for epoch in range(1, spec.training.max_epochs + 1):
        t0 = time.perf_counter()
        scheduled = lr_at(spec.optim.schedule, spec.optim.lr, epoch, spec.training.max_epochs)
        override = cb.current_lr(epoch, scheduled)
        lr = scheduled if override is None else float(override)
        optimizer.set_lr(lr)

        # One epoch of minibatch updates. Running sums stay on the device: no per-step sync.
        perm = torch.randperm(n, generator=order).to(dev)
        Xs, ys = X_train[perm], y_train[perm]
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.int64)
        for i in range(n_batches):
            xb, yb = Xs[i * m:(i + 1) * m], ys[i * m:(i + 1) * m]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)  # mean over the minibatch: g = (1/m) Σ ∇F_k
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            correct += (logits.detach().argmax(dim=1) == yb).sum()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)  # once per epoch, so the throughput figure is honest
        train_seconds = time.perf_counter() - t0

        # Epoch figures: validation pass, ‖w‖, per-layer spreads, all read in one sync.
        val = evaluate(model, X_val, y_val, act_stats=layer_stats)
        pending = {
            "train_loss": loss_sum / n_batches,  # equal-size minibatches: mean of means
            "train_accuracy": correct / (n_batches * m),
            "val_loss": val.pop("loss"),
            "val_accuracy": val.pop("accuracy"),
            "weight_norm": weight_norm(weights),
            **val,
        }
        if layer_stats:
            pending.update(grad_stds(model))
        metrics = {"lr": lr, **_read(pending)}
        metrics["epoch_seconds"] = time.perf_counter() - t0
        metrics["examples_per_second"] = n_batches * m / max(train_seconds, 1e-9)
        history.append(metrics)
        cb.on_epoch(epoch, metrics)

        if not math.isfinite(metrics["train_loss"]):
            status, diverged_epoch = "diverged", epoch
            break
        if stopper.update(epoch, metrics[es.monitor]):
            for k, v in model.state_dict().items():
                best_state[k].copy_(v)  # z* ← z
        if cb.should_stop():
            status = "cancelled"
            break
        if stopper.should_stop(epoch):
            break

    # Every result figure is computed on z*, not on the last z.
    model.load_state_dict(best_state)
    test = _read(evaluate(model, data.X_test.to(dev), data.y_test.to(dev)))
    result = {
        "best_epoch": stopper.best_epoch,
        "stopped_epoch": epoch,
        "epochs_run": epoch,
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "test_accuracy_mc": None,  # dropout strategy A: not available yet
        "distinct_units": distinct_units(model),
        "ensemble": None,  # ensembles: not available yet
        "diverged_epoch": diverged_epoch,
    }
    return TrainOutcome(
        status=status,
        result=result,
        state_dict={k: v.detach().cpu() for k, v in best_state.items()},
        classes=list(data.classes),
        input_shape=tuple(data.input_shape),
        metrics=history,
    )
