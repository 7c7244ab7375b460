"""Runs that differ only in their seed, trained together as one stacked network (a *pack*).

Member k of a pack *is* the run ``specs[k]`` trained alone: its network initialised from its
seed, its data generated and split from its seed, its minibatch order drawn from its seed. The
stacked network (models.py) only batches the K runs' steps into one; each member has its own
rows of the stacked data, its own figures, early stopping, z*, result and checkpoints, and they
equal those of the run trained alone up to float round-off (tests/engine/test_pack.py). A
member's checkpoint is a single run's snapshot, so a run taken over after a crash goes on alone.

A member that stops (early stopping, divergence, cancel) stops reporting and keeps its z*; the
stack trains on while any member is active. η is the schedule's, shared by the pack: a hand-set
η (``Callbacks.current_lr``) is not consulted, and the API refuses one for a packed run.

``pack_reason`` says why a spec cannot be packed: dropout and augmentation draw their random
numbers for the whole stack, so a member would no longer be its run; an ensemble is a stack
already; full-pass batchnorm statistics are measured on one shared set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from os import PathLike

import torch
import torch.nn.functional as F

from .boundary import boundary_grid, wants_boundary
from .datasets import derive_seed, load_dataset
from .diagnostics import distinct_units, grad_stds, member_weight_norms
from .early_stopping import EarlyStopping
from .gradnoise import grad_variance
from .models import CNN, build_network
from .optim import build_optimizer, set_lr
from .schedules import lr_at
from .spec import Spec, pack_key, pack_reason
from .train import (
    BOUNDARY_TIMES,
    EVAL_CHUNK,
    GRAD_NOISE_TIMES,
    STEPS_REGION,
    Callbacks,
    TrainOutcome,
    _cpu,
    _every,
    _read,
    apply_speed,
    evaluate,
    resolve_device,
    stacked_epoch,
)

# The K members' datasets live side by side on the device; past this a pack is refused.
PACK_MEMORY_BYTES = 1 << 30


class PackTooLarge(ValueError):
    """The members' datasets together would take more than PACK_MEMORY_BYTES."""


def _by_member(model: torch.nn.Module, a: torch.Tensor, k: int) -> torch.Tensor:
    """A stacked hidden layer's output as (K, values of member k)."""
    if isinstance(model, CNN):  # (B, K·C, …): member k's channels are block k
        return a.unflatten(1, (k, -1)).transpose(0, 1).reshape(k, -1)
    return a.reshape(k, -1)  # MLP: feature-major (K, d, B)


@torch.no_grad()
def evaluate_members(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, *, act_stats: bool = False
) -> dict[str, torch.Tensor]:
    """Each member on its own set, X (K, N, …) and y (K, N): K-vectors of mean loss, accuracy
    and, with ``act_stats``, ``act_std/<layer>`` — per member what ``train.evaluate`` gives a
    single run. Device tensors, no host sync."""
    was_training = model.training
    model.eval()
    k, n = y.shape
    loss = torch.zeros(k, device=X.device)
    correct = torch.zeros(k, device=X.device, dtype=torch.int64)
    moments: dict[str, tuple] = {}
    for start in range(0, n, EVAL_CHUNK):
        xb, yb = X[:, start:start + EVAL_CHUNK], y[:, start:start + EVAL_CHUNK]
        if act_stats:
            logits, acts = model.forward_with_activations(xb)
            for name, a in acts.items():
                a = _by_member(model, a, k).double()
                s, s2, c = moments.get(name, (0.0, 0.0, 0))
                moments[name] = (s + a.sum(1), s2 + (a * a).sum(1), c + a.shape[1])
        else:
            logits = model(xb)
        lp = logits.contiguous().log_softmax(-1)  # (K, B, C)
        loss += F.nll_loss(lp.transpose(1, 2), yb, reduction="none").sum(1)
        correct += (lp.argmax(-1) == yb).sum(1)
    model.train(was_training)
    out = {"loss": loss / n, "accuracy": correct / n}
    for name, (s, s2, count) in moments.items():
        mean = s / count
        out[f"act_std/{name}"] = (s2 / count - mean * mean).clamp_min(0).sqrt()
    return out


def train_pack(
    specs: Sequence[Spec], callbacks: Sequence[Callbacks] | None = None, *,
    device: str | None = None, data_root: PathLike | str | None = None,
    after_epoch: Callable[[int], None] | None = None,
    on_member_done: Callable[[int, TrainOutcome], None] | None = None,
) -> list[TrainOutcome]:
    """Train the runs ``specs`` (two or more, differing only in seed) as one stacked network;
    member k reports through ``callbacks[k]`` and ends as ``outcome[k]``, what ``train`` would
    return for ``specs[k]``. ``after_epoch(epoch)`` follows every member's callbacks of an
    epoch (a caller storing the figures writes all members at once there); ``on_member_done(k,
    outcome)`` comes as soon as member k stops, with its final outcome. Raises ValueError if
    they cannot be packed (``pack_reason``), PackTooLarge if their datasets would not fit side
    by side."""
    K = len(specs)
    spec = specs[0]
    if K < 2 or any(pack_key(s) != pack_key(spec) for s in specs):
        raise ValueError("a pack needs two or more runs that differ only in seed")
    if (reason := pack_reason(spec)) is not None:
        raise ValueError(f"these runs cannot be packed: {reason}")
    cbs = list(callbacks) if callbacks is not None else [Callbacks() for _ in specs]
    dev = resolve_device(device or spec.device)

    # Data: member k's splits of its own seed, stacked (K, n, …); rows of a flattened view.
    splits, size = [], 0
    for s in specs:
        d = load_dataset(s, data_root)
        size += sum(t.numel() * t.element_size() for t in (d.X_train, d.X_val, d.X_test))
        if size > PACK_MEMORY_BYTES:
            raise PackTooLarge(f"{K} runs' datasets exceed {PACK_MEMORY_BYTES >> 20} MiB together")
        splits.append(d)
    data = splits[0]

    def stack(name: str) -> torch.Tensor:
        return torch.stack([getattr(d, name) for d in splits]).to(dev)

    X_train, y_train, X_val, y_val = (stack(a) for a in ("X_train", "y_train", "X_val", "y_val"))
    n = y_train.shape[1]
    m = n if spec.optim.batch_size == "full" else min(spec.optim.batch_size, n)
    n_batches = n // m
    if spec.model.batchnorm and m < 2:
        raise ValueError("batchnorm needs minibatches of at least 2 examples")
    flat_X, flat_y = X_train.flatten(0, 1), y_train.flatten(0, 1)
    offsets = torch.arange(K, device=dev)[:, None] * n  # member k's rows start at k·n

    seeds = [s.seed for s in specs]
    model, init_report = build_network(spec, data.input_shape, len(data.classes), seeds)
    model.to(dev).train()
    apply_speed(model, spec.speed, dev)
    optimizer = build_optimizer(spec.optim, model)
    weights = [p for g in optimizer.param_groups if g["kind"] == "weights" for p in g["params"]]
    orders = [torch.Generator().manual_seed(derive_seed(s, "order")) for s in seeds]
    noise_gens = [torch.Generator().manual_seed(derive_seed(s, "grad_noise")) for s in seeds]
    # Unused (no dropout in a pack), but part of a single run's snapshot.
    dropout_states = [torch.Generator(dev).manual_seed(derive_seed(s, "dropout")).get_state()
                      for s in seeds]

    layer_stats = spec.diagnostics.layer_stats
    grad_noise = spec.diagnostics.grad_noise
    boundary = wants_boundary(spec.diagnostics.boundary, tuple(data.input_shape))
    log_every = spec.training.log_every_steps or 0
    es = spec.training.early_stopping
    max_epochs = spec.training.max_epochs

    initial = _read(evaluate_members(model, X_val, y_val))
    monitored = "loss" if es.monitor == "val_loss" else "accuracy"
    stoppers = [EarlyStopping(es.patience, es.monitor, initial=v) for v in initial[monitored]]
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}  # z* ← z

    def snapshot(k: int) -> dict:
        """Member k's checkpoint, exactly a single run's (train.py's snapshot)."""
        opt = optimizer.state_dict()
        opt["state"] = {i: {name: t[k] if torch.is_tensor(t) and t.ndim else t
                            for name, t in st.items()} for i, st in opt["state"].items()}
        return _cpu({
            "epoch": epoch, "model": {name: v[k] for name, v in model.state_dict().items()},
            "optimizer": opt, "best_state": {name: v[k] for name, v in best_state.items()},
            "stopper": dict(vars(stoppers[k])), "orders": [orders[k].get_state()],
            "dropout_gen": dropout_states[k], "dropout_device": dev.type,
            "noise_gen": noise_gens[k].get_state(),
        })  # type: ignore[return-value]

    active = list(range(K))
    status, diverged = ["succeeded"] * K, [None] * K
    histories: list[list[dict[str, float]]] = [[] for _ in specs]
    outcomes: dict[int, TrainOutcome] = {}

    def finish(k: int) -> None:
        """Member k has stopped: its result, every figure on its z* and its own test set, now
        (``on_member_done``), while the others train on."""
        member = model.member(k)
        member.load_state_dict({name: v[k] for name, v in best_state.items()})
        X_test, y_test = splits[k].X_test.to(dev), splits[k].y_test.to(dev)
        test = _read(evaluate(member, X_test, y_test))
        result = {
            "best_epoch": stoppers[k].best_epoch,
            "stopped_epoch": epoch,
            "epochs_run": epoch,
            "test_loss": test["loss"],
            "test_accuracy": test["accuracy"],
            "test_accuracy_mc": None,
            "distinct_units": distinct_units(member),
            "ensemble": None,
            "diverged_epoch": diverged[k],
            "init": init_report,
            "dropout": None,
        }
        outcomes[k] = TrainOutcome(
            status=status[k], result=result,
            state_dict={name: v.detach().cpu() for name, v in member.state_dict().items()},
            classes=list(data.classes), input_shape=tuple(data.input_shape),
            metrics=histories[k],
        )
        active.remove(k)
        if on_member_done is not None:
            on_member_done(k, outcomes[k])

    epoch = 0
    for epoch in range(1, max_epochs + 1):
        if not active:
            break
        t0 = time.perf_counter()
        lr = lr_at(spec.optim.schedule, spec.optim.lr, epoch, max_epochs)
        set_lr(optimizer, lr)
        step0 = (epoch - 1) * n_batches

        def log_step(step: int, member_loss: torch.Tensor) -> None:
            losses = member_loss.tolist()
            for k in active:
                cbs[k].on_step(step, {"step_loss": losses[k]})

        with torch.profiler.record_function(STEPS_REGION):
            perms = torch.stack([torch.randperm(n, generator=g) for g in orders]).to(dev)
            loss_sum, correct = stacked_epoch(
                model, optimizer, flat_X, flat_y, perms + offsets, m, n_batches, None, step0,
                log_every, log_step)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
        train_seconds = time.perf_counter() - t0

        val = evaluate_members(model, X_val, y_val, act_stats=layer_stats)
        read = _read({
            "train_loss": loss_sum / n_batches, "train_accuracy": correct / (n_batches * m),
            "val_loss": val.pop("loss"), "val_accuracy": val.pop("accuracy"),
            "weight_norm": member_weight_norms(weights),
            **(grad_stds(model, per_member=True) if layer_stats else {}), **val,
        })
        epoch_seconds = time.perf_counter() - t0
        for k in list(active):
            metrics = {"lr": lr, **{key: values[k] for key, values in read.items()}}
            if grad_noise and _every(epoch, max_epochs, GRAD_NOISE_TIMES):
                metrics.update(_read(grad_variance(model.member(k), X_train[k], y_train[k],
                                                   generator=noise_gens[k])))
            metrics["epoch_seconds"] = epoch_seconds
            metrics["examples_per_second"] = n_batches * m / max(train_seconds, 1e-9)
            histories[k].append(metrics)
            cbs[k].on_epoch(epoch, metrics)

            stop = epoch == max_epochs
            if not math.isfinite(metrics["train_loss"]):
                status[k], diverged[k] = "diverged", epoch
                finish(k)
                continue
            if stoppers[k].update(epoch, metrics[es.monitor]):
                for name, v in model.state_dict().items():
                    best_state[name][k].copy_(v[k])  # member k's z* ← z
            cbs[k].on_checkpoint(epoch, lambda k=k: snapshot(k))
            if cbs[k].should_stop():
                status[k], stop = "cancelled", True
            stop = stop or stoppers[k].should_stop(epoch)
            if boundary and (stop or _every(epoch, max_epochs, BOUNDARY_TIMES)):
                cbs[k].on_boundary(epoch, boundary_grid(model.member(k), X_train[k],
                                                        y=y_train[k]))
            if stop:
                finish(k)
        if after_epoch is not None:
            after_epoch(epoch)

    return [outcomes[k] for k in range(K)]
