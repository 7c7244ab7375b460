"""The training loop: minibatch SGD with the course's momentum (or Adam), z* tracking, early
stopping, and the diagnostics the lessons show.

Read top to bottom: set up (data on the device, seeded network, optimiser), evaluate the initial
model (z* starts there, COURSE.md §3), then one block per epoch. The loop reports through
``Callbacks`` only, so Celery, the CLI, tests and benchmarks all drive the same code.
Threads are the caller's business (the worker process sets them), not the engine's.

An ensemble (``ensemble.members`` = K > 1) is one stacked network trained by the same loop:
each step takes K minibatches (one per member, each in its member's own order) and one batched
forward/backward. Per-step work is only what the spec asks for: with the diagnostics off, a
step is forward, loss, backward, optimiser step and two on-device running sums — no host sync.

``spec.speed`` changes how the network runs, never what is trained (``apply_speed``):
bfloat16 autocast around every forward pass, and torch.compile of the network, in place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import torch
import torch.nn.functional as F

from . import ensemble as ens
from .augment import make_augmenter
from .boundary import boundary_grid, wants_boundary
from .datasets import derive_seed, load_dataset
from .diagnostics import distinct_units, grad_stds, weight_norm
from .early_stopping import EarlyStopping
from .gradnoise import grad_variance
from .layers import full_pass_statistics
from .models import build_network
from .optim import build_optimizer, set_lr, stepper
from .schedules import lr_at
from .spec import Spec, SpeedSpec

# Figures that depend on the machine's speed, not on the seed.
TIMING_KEYS = ("epoch_seconds", "examples_per_second")
# Evaluation runs in chunks so large validation sets never need one giant activation tensor.
EVAL_CHUNK = 8192
# Gradient noise and decision boundary: at epoch 1, then every max(1, T // N) epochs.
GRAD_NOISE_TIMES = 10
BOUNDARY_TIMES = 25
# The profiler region around each epoch's training steps (bench/gpu.py reads it from traces).
STEPS_REGION = "epoque.train_steps"
# torch.compile's backend for speed.compile (inductor: C++ kernels on the CPU, Triton on GPUs).
COMPILE_BACKEND: str | Callable = "inductor"


class CompileError(RuntimeError):
    """speed.compile was asked for and torch.compile could not compile the network here."""


def _no_epoch(epoch: int, metrics: dict[str, float]) -> None:
    pass


def _no_step(step: int, metrics: dict[str, float]) -> None:
    pass


def _no_boundary(epoch: int, grid: dict) -> None:
    pass


def _no_checkpoint(epoch: int, snapshot: Callable[[], dict]) -> None:
    pass


@dataclass
class Callbacks:
    # After each epoch: epoch from 1 and {metric key: value}; values may be NaN or inf.
    on_epoch: Callable[[int, dict[str, float]], None] = _no_epoch
    # Polled after each epoch; True cancels the run (z* is kept, test figures computed).
    should_stop: Callable[[], bool] = lambda: False
    # Before each epoch: (epoch, scheduled η) -> η chosen by hand, or None to follow the schedule.
    current_lr: Callable[[int, float], float | None] = lambda epoch, scheduled: None
    # Every training.log_every_steps steps: (global step from 1, {"step_loss": minibatch loss}).
    on_step: Callable[[int, dict[str, float]], None] = _no_step
    # Some epochs, 2-D datasets: (epoch, {"x", "y", "labels", "probs", "probs_of"}), boundary.py.
    on_boundary: Callable[[int, dict], None] = _no_boundary
    # After each epoch: (epoch, snapshot). Calling snapshot() gives, on the CPU, everything
    # train(resume=…) needs to go on after that epoch exactly as if never interrupted; it is a
    # thunk so that a caller who checkpoints rarely pays nothing on the other epochs.
    on_checkpoint: Callable[[int, Callable[[], dict]], None] = _no_checkpoint


@dataclass
class TrainOutcome:
    status: str  # "succeeded" | "cancelled" | "diverged"
    result: dict  # SPEC.md's result object, every figure computed on z*
    state_dict: dict[str, torch.Tensor]  # z*, on the CPU (stacked for an ensemble)
    classes: list[str]
    input_shape: tuple[int, ...] = ()  # one example's shape, e.g. (1, 8, 8) for digits
    metrics: list[dict[str, float]] = field(default_factory=list)  # what on_epoch received


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


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available here")
    return torch.device(requested)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, *, act_stats: bool = False,
    combine: str = "mean", mc_samples: int = 0, generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Mean loss and accuracy over (X, y) in eval mode, as device tensors (no host sync).

    loss is −log p(y) of the prediction (an ensemble's: the members' mean probability);
    accuracy follows ``combine`` for an ensemble, which also gets ``mean_accuracy``,
    ``vote_accuracy`` and per-member ``member_loss``, ``member_accuracy`` (K-vectors).
    ``mc_samples``: dropout strategy A with that many masks (from ``generator``); else B.
    With ``act_stats``, also ``act_std/<layer>``: the std of each hidden layer's post-activation
    output over this whole set — the validation set during training, so the figure is
    comparable from epoch to epoch and the training step pays nothing for it.
    """
    was_training = model.training
    model.eval()
    dev = X.device
    stacked = getattr(model, "members", None) is not None
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.int64)
    if stacked:
        k = model.members
        member_loss = torch.zeros(k, device=dev)
        member_correct = torch.zeros(k, device=dev, dtype=torch.int64)
        vote_correct = torch.zeros((), device=dev, dtype=torch.int64)
    # Sum, sum of squares (float64) and count give the std across chunks in one pass.
    moments: dict[str, tuple] = {}
    for start in range(0, len(y), EVAL_CHUNK):
        xb, yb = X[start:start + EVAL_CHUNK], y[start:start + EVAL_CHUNK]
        if act_stats:
            logits, acts = model.forward_with_activations(xb)
            for name, a in acts.items():
                a = a.double()
                s, s2, c = moments.get(name, (0.0, 0.0, 0))
                moments[name] = (s + a.sum(), s2 + (a * a).sum(), c + a.numel())
            lp = (logits if stacked else logits[None]).log_softmax(-1)
        else:
            lp = ens.member_log_probs(model, xb, mc_samples=mc_samples, generator=generator)
        combined = ens.mean_log_probs(lp)  # (B, C)
        loss_sum += F.nll_loss(combined, yb, reduction="sum")
        correct += (combined.argmax(dim=1) == yb).sum()
        if stacked:
            member_loss += F.nll_loss(lp.transpose(1, 2), yb.expand(k, -1),
                                      reduction="none").sum(1)
            member_correct += (lp.argmax(-1) == yb).sum(1)
            vote_correct += (ens.vote(lp) == yb).sum()
    model.train(was_training)

    n = len(y)
    out = {"loss": loss_sum / n, "accuracy": correct / n}
    if stacked:
        out["mean_accuracy"] = out["accuracy"]
        out["vote_accuracy"] = vote_correct / n
        if combine == "vote":
            out["accuracy"] = out["vote_accuracy"]
        out["member_loss"] = member_loss / n
        out["member_accuracy"] = member_correct / n
    for name, (s, s2, count) in moments.items():
        mean = s / count
        out[f"act_std/{name}"] = (s2 / count - mean * mean).clamp_min(0).sqrt()
    return out


def _read(values: dict[str, torch.Tensor]) -> dict[str, Any]:
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


def _every(epoch: int, max_epochs: int, times: int) -> bool:
    """Epochs 1, 2, 4, 8, … (so early-stopped runs get measured too), and every T // times."""
    return epoch & (epoch - 1) == 0 or epoch % max(1, max_epochs // times) == 0


def _cpu(tree: object) -> object:
    """A deep copy of a (nested) state with every tensor on the CPU."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return {k: _cpu(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_cpu(v) for v in tree)
    return tree


def stacked_epoch(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor,
    rows: torch.Tensor, m: int, n_batches: int, augment: Callable | None, step0: int,
    log_every: int, log_step: Callable[[int, torch.Tensor], None],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of a stacked network's steps; (Σ of each member's minibatch losses, each
    member's correct count), K-vectors on the device.

    Member k's minibatch i is the rows ``rows[k, i·m:(i+1)·m]`` of X and y: each member its
    own order over one shared set (an ensemble), or over its own block of rows (a pack, whose
    members each have their own data). Every ``log_every`` steps, ``log_step(step, member
    losses)``."""
    k = rows.shape[0]
    clear_grads, update = stepper(optimizer)
    member_losses, outputs = [], []
    for i in range(n_batches):
        # index_select on the flattened index: the same rows as X[idx], but advanced indexing
        # with a 2-D index is ~5x slower (0.1-0.3 ms of a K = 64 step, measured).
        flat = rows[:, i * m:(i + 1) * m].reshape(-1)
        xb = X.index_select(0, flat).view(k, m, *X.shape[1:])
        yb = y.index_select(0, flat).view(k, m)
        if augment is not None:
            xb = augment(xb, step0 + i)
        # (K, C, m): contiguous for a stacked MLP, whose (K, m, C) logits are a view.
        logits = model(xb).transpose(1, 2)
        # Σ_k of member k's mean loss: each member gets exactly its own gradient.
        member_loss = F.cross_entropy(logits, yb, reduction="none").mean(1)
        clear_grads()
        member_loss.sum().backward()
        update()
        member_losses.append(member_loss.detach())
        # (K, m) predictions. max(dim).indices: argmax over the middle dim of (K, C, m) takes
        # a slow strided path on the CPU (0.6 ms against 0.03 ms at K = 64, measured); both
        # return the first maximum on ties.
        outputs.append(logits.detach().max(dim=1).indices)
        if log_every and (step0 + i + 1) % log_every == 0:
            log_step(step0 + i + 1, member_loss.detach())
    labels = y[rows[:, :n_batches * m]]  # (K, n_batches·m), each member's order
    correct = (torch.cat(outputs, dim=1) == labels).sum(1)
    return torch.stack(member_losses).sum(0), correct


def train(
    spec: Spec, callbacks: Callbacks | None = None, *, device: str | None = None,
    data_root: PathLike | str | None = None, resume: dict | None = None,
) -> TrainOutcome:
    """Train the network ``spec`` describes and return z*, the best model on S_v.

    ``resume``: a snapshot given to ``on_checkpoint``; training goes on after its epoch with
    the same parameters, optimiser state, z*, early-stopping deadline and random streams, so
    the epochs that follow are those of an uninterrupted run.

    With ``speed.compile``, a failure of torch.compile (no C++ compiler for the CPU backend,
    no Triton for the GPU one, an unsupported operation) is a CompileError whose message says
    what failed, instead of the compiler's own deep traceback. The run fails rather than going
    on uncompiled: its timings would then silently measure something else than was asked."""
    if not spec.speed.compile:
        return _train(spec, callbacks, device, data_root, resume)
    from torch._dynamo.exc import TorchDynamoException  # imported only when compiling (~2 s)

    try:
        return _train(spec, callbacks, device, data_root, resume)
    except TorchDynamoException as e:
        inner = getattr(e, "inner_exception", None) or e  # what the backend itself raised
        lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
        why = type(inner).__name__ + (f": {lines[0]}" if lines else "")
        raise CompileError(
            f"speed.compile: torch.compile could not compile the network on this worker "
            f"({why}); run with speed.compile off"
        ) from None


def _train(
    spec: Spec, callbacks: Callbacks | None, device: str | None,
    data_root: PathLike | str | None, resume: dict | None,
) -> TrainOutcome:
    cb = callbacks or Callbacks()
    dev = resolve_device(device or spec.device)

    # Data: whole tensors on the device; minibatches are slices of a permuted copy.
    data = load_dataset(spec, data_root)
    X_train, y_train = data.X_train.to(dev), data.y_train.to(dev)
    X_val, y_val = data.X_val.to(dev), data.y_val.to(dev)
    augment = make_augmenter(spec, data.input_shape, dev)  # training batches only; None = off
    n = len(y_train)
    # m larger than n would mean ⌊n/m⌋ = 0 updates per epoch; treat it as full batch.
    m = n if spec.optim.batch_size == "full" else min(spec.optim.batch_size, n)
    n_batches = n // m  # the n mod m left over are skipped this epoch (COURSE.md §2)
    if spec.model.batchnorm and m < 2:
        raise ValueError("batchnorm needs minibatches of at least 2 examples")

    # Network: member k initialised on the CPU from seed + k (same z0 on any device), without
    # disturbing the caller's global RNG; one member unless spec.ensemble asks for more.
    K = spec.ensemble.members
    seeds = [spec.seed + k for k in range(K)]
    model, init_report = build_network(spec, data.input_shape, len(data.classes), seeds)
    model.to(dev).train()
    apply_speed(model, spec.speed, dev)  # bfloat16 autocast, torch.compile: spec.speed
    stacked = K > 1
    optimizer = build_optimizer(spec.optim, model)
    clear_grads, update = stepper(optimizer)
    weights = [p for g in optimizer.param_groups if g["kind"] == "weights" for p in g["params"]]
    # Own generators: a CPU one per member for the minibatch order, so the order is the same on
    # any device; dropout masks and Monte-Carlo masks on the device.
    orders = [torch.Generator().manual_seed(derive_seed(s, "order")) for s in seeds]
    dropout = bool(model.dropouts())
    dropout_gen = torch.Generator(dev).manual_seed(derive_seed(spec.seed, "dropout"))
    if dropout:
        model.set_dropout(generator=dropout_gen)
    full_pass = spec.model.batchnorm and spec.model.batchnorm_eval == "full_pass"

    layer_stats = spec.diagnostics.layer_stats
    grad_noise = spec.diagnostics.grad_noise
    noise_gen = torch.Generator().manual_seed(derive_seed(spec.seed, "grad_noise"))
    boundary = wants_boundary(spec.diagnostics.boundary, tuple(data.input_shape))
    log_every = spec.training.log_every_steps or 0
    combine = spec.ensemble.combine
    es = spec.training.early_stopping

    if resume is None:
        if full_pass:
            full_pass_statistics(model, X_train, EVAL_CHUNK)
        initial = _read(evaluate(model, X_val, y_val, combine=combine))
        monitored = "loss" if es.monitor == "val_loss" else "accuracy"
        stopper = EarlyStopping(es.patience, es.monitor, initial=initial[monitored])
        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}  # z* ← z
        first_epoch = 1
    else:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        best_state = {k: v.to(dev) for k, v in resume["best_state"].items()}
        stopper = EarlyStopping(es.patience, es.monitor, initial=resume["stopper"]["best_value"])
        stopper.__dict__.update(resume["stopper"])
        for gen, state in zip(orders, resume["orders"]):
            gen.set_state(state)
        # A GPU generator's state means nothing to a CPU one (and vice versa): a run taken over
        # on another kind of device goes on with fresh dropout masks rather than failing.
        if resume.get("dropout_device", dev.type) == dev.type:
            dropout_gen.set_state(resume["dropout_gen"])
        noise_gen.set_state(resume["noise_gen"])
        first_epoch = resume["epoch"] + 1
        if stopper.should_stop(resume["epoch"]):
            first_epoch = spec.training.max_epochs + 1  # it had stopped: nothing left to train

    def snapshot() -> dict:
        return _cpu({
            "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "best_state": best_state, "stopper": dict(vars(stopper)),
            "orders": [g.get_state() for g in orders], "dropout_gen": dropout_gen.get_state(),
            "dropout_device": dev.type, "noise_gen": noise_gen.get_state(),
        })  # type: ignore[return-value]

    status, diverged_epoch, history = "succeeded", None, []
    epoch = resume["epoch"] if resume else 0
    for epoch in range(first_epoch, spec.training.max_epochs + 1):
        t0 = time.perf_counter()
        scheduled = lr_at(spec.optim.schedule, spec.optim.lr, epoch, spec.training.max_epochs)
        override = cb.current_lr(epoch, scheduled)
        lr = scheduled if override is None else float(override)
        set_lr(optimizer, lr)
        step0 = (epoch - 1) * n_batches  # global steps done before this epoch

        # One epoch of minibatch updates. Running sums stay on the device: no per-step sync.
        # A named region, so a profiler trace shows where an epoch's steps begin and end.
        with torch.profiler.record_function(STEPS_REGION):
            if not stacked:
                perm = torch.randperm(n, generator=orders[0]).to(dev)
                Xs, ys = X_train[perm], y_train[perm]
                # The step only keeps references; the epoch's figures are reduced once at its
                # end (a few ops per step would cost more than the whole validation pass).
                losses, outputs = [], []
                for i in range(n_batches):
                    xb, yb = Xs[i * m:(i + 1) * m], ys[i * m:(i + 1) * m]
                    if augment is not None:
                        xb = augment(xb, step0 + i)
                    logits = model(xb)
                    # Mean over the minibatch: g = (1/m) Σ ∇F_k.
                    loss = F.cross_entropy(logits, yb)
                    clear_grads()
                    loss.backward()
                    update()
                    losses.append(loss.detach())
                    outputs.append(logits.detach())
                    if log_every and (step0 + i + 1) % log_every == 0:
                        cb.on_step(step0 + i + 1, {"step_loss": loss.item()})
                loss_sum = torch.stack(losses).sum()
                correct = (torch.cat(outputs).argmax(dim=1) == ys[:n_batches * m]).sum()
            else:
                # K orders, each member's own; a step gathers K minibatches (K, m, …).
                perms = torch.stack([torch.randperm(n, generator=g) for g in orders]).to(dev)

                def log_step(step: int, member_loss: torch.Tensor) -> None:
                    cb.on_step(step, {"step_loss": member_loss.sum().item() / K})

                loss_sum, correct = stacked_epoch(
                    model, optimizer, X_train, y_train, perms, m, n_batches, augment, step0,
                    log_every, log_step)
            if dev.type == "cuda":
                # Once per epoch, so the throughput figure is honest.
                torch.cuda.synchronize(dev)
        train_seconds = time.perf_counter() - t0

        # Epoch figures: validation pass, ‖w‖, per-layer spreads, all read in one sync.
        if full_pass:
            full_pass_statistics(model, X_train, EVAL_CHUNK)
        val = evaluate(model, X_val, y_val, act_stats=layer_stats, combine=combine)
        pending = {
            # Equal-size minibatches: mean of means (an ensemble's: mean over members too).
            "train_loss": loss_sum.sum() / (n_batches * K),
            "train_accuracy": correct.sum() / (n_batches * m * K),
            "val_loss": val.pop("loss"),
            "val_accuracy": val.pop("accuracy"),
            "weight_norm": weight_norm(weights, model.members),
            **{k: v for k, v in val.items() if k.startswith("act_std/")},
        }
        if stacked:
            pending["member_val_loss"] = val["member_loss"]
            pending["member_val_accuracy"] = val["member_accuracy"]
        if layer_stats:
            pending.update(grad_stds(model))
        if grad_noise and _every(epoch, spec.training.max_epochs, GRAD_NOISE_TIMES):
            probe = model.member(0) if stacked else model
            pending.update(grad_variance(probe, X_train, y_train, generator=noise_gen))
        read = _read(pending)
        if stacked:
            for name in ("val_loss", "val_accuracy"):
                for k, v in enumerate(read.pop(f"member_{name}")):
                    read[f"member/{k}/{name}"] = v
        metrics: dict[str, float] = {"lr": lr, **read}
        metrics["epoch_seconds"] = time.perf_counter() - t0
        metrics["examples_per_second"] = n_batches * m * K / max(train_seconds, 1e-9)
        history.append(metrics)
        cb.on_epoch(epoch, metrics)

        stop = epoch == spec.training.max_epochs
        if not math.isfinite(metrics["train_loss"]):
            status, diverged_epoch = "diverged", epoch
            break
        if stopper.update(epoch, metrics[es.monitor]):
            for k, v in model.state_dict().items():
                best_state[k].copy_(v)  # z* ← z
        cb.on_checkpoint(epoch, snapshot)
        if cb.should_stop():
            status, stop = "cancelled", True
        stop = stop or stopper.should_stop(epoch)
        if boundary and (stop or _every(epoch, spec.training.max_epochs, BOUNDARY_TIMES)):
            cb.on_boundary(epoch, boundary_grid(model, X_train, y=y_train))
        if stop:
            break

    # Every result figure is computed on z*, not on the last z.
    model.load_state_dict(best_state)
    X_test, y_test = data.X_test.to(dev), data.y_test.to(dev)
    scale = _read(evaluate(model, X_test, y_test, combine=combine))  # strategy B (or no dropout)
    test = scale
    dropout_result = None
    if dropout:
        mc_gen = torch.Generator(dev).manual_seed(derive_seed(spec.seed, "mc"))
        samples = spec.model.dropout.mc_samples
        mc = _read(evaluate(model, X_test, y_test, combine=combine, mc_samples=samples,
                            generator=mc_gen))
        if spec.model.dropout.inference == "mc":
            test = mc
        curve = ens.mc_curve(model, X_test, y_test, samples, torch.Generator(dev).manual_seed(
            derive_seed(spec.seed, "mc_curve")))
        dropout_result = {"inference": spec.model.dropout.inference,
                          "scale": scale["accuracy"], "mc": mc["accuracy"], "mc_samples": samples,
                          "mc_curve": curve}
    ensemble_result = None
    if stacked:
        ensemble_result = ens.summary(test["member_accuracy"], test["mean_accuracy"],
                                      test["vote_accuracy"], combine)
    result = {
        "best_epoch": stopper.best_epoch,
        "stopped_epoch": epoch,
        "epochs_run": epoch,
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "test_accuracy_mc": dropout_result["mc"] if dropout_result else None,
        "distinct_units": distinct_units(model),
        "ensemble": ensemble_result,
        "diverged_epoch": diverged_epoch,
        "init": init_report,
        "dropout": dropout_result,
    }
    return TrainOutcome(
        status=status,
        result=result,
        state_dict={k: v.detach().cpu() for k, v in best_state.items()},
        classes=list(data.classes),
        input_shape=tuple(data.input_shape),
        metrics=history,
    )
