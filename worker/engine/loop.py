"""The training loop, once, over K stacked members: a single run (K = 1), an ensemble (K
members on one shared set, one run) and a pack (K runs that differ only in seed, each member on
its own data) are the same epochs of the same code.

Read top to bottom: the callbacks and the outcome; ``Tracker`` (one z* and its early stopping,
COURSE.md §3) and ``Member`` (one run the loop serves: its callbacks, trackers, figures and
status); ``Snapshot`` (the checkpoint format: everything ``resume`` needs); ``Stack`` (the data,
network, optimiser and random streams every member shares); then ``run``, the epochs.

A member is a reporting unit. A run and an ensemble are one member owning the whole stack; an
ensemble's member has one tracker per network (``ensemble.select: per_member``, each its own
validation curve and patience) or one for the combined prediction (``joint``). A pack's member k
owns row k of the stack, with one tracker. A member stops (patience run out on every tracker,
divergence, cancel, last epoch) on its own; the stack trains on while any member is active, and
a tracker whose patience has run out no longer moves its z*, so a member's z* is what it would
be trained alone.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import torch

from . import diagnostics
from . import ensemble as ens
from .augment import make_augmenter, make_pack_augmenter
from .boundary import boundary_grid, wants_boundary
from .data_cache import DATA_CACHE, DataCache
from .datasets import Splits, derive_seed, load_dataset
from .diagnostics import distinct_units, grad_stds, member_weight_norms, weight_norm
from .early_stopping import EarlyStopping
from .evaluate import EVAL_CHUNK, evaluate, evaluate_mc, evaluate_members, read
from .gradnoise import grad_variance
from .graph import GraphStep, uses_graph
from .layers import full_pass_statistics
from .models import build_network
from .optim import build_optimizer, set_lr
from .pack import PackTooLarge
from .schedules import lr_at
from .spec import Spec
from .speed import apply_speed, resolve_speed
from .speed_trial import speed_trial
from .step import STEPS_REGION, epoch_rows, run_epoch

# Gradient noise and decision boundary: at epoch 1, then every max(1, T // N) epochs.
GRAD_NOISE_TIMES = 10
BOUNDARY_TIMES = 25


def _no_epoch(epoch: int, metrics: dict[str, float]) -> None:
    pass


def _no_step(step: int, metrics: dict[str, float]) -> None:
    pass


def _no_boundary(epoch: int, grid: dict) -> None:
    pass


def _no_checkpoint(epoch: int, snapshot: Callable[[], dict]) -> None:
    pass


def _no_confusion(epoch: int, matrix: list[list[int]]) -> None:
    pass


def _no_weights(epoch: int, weights: Callable[[], dict[str, torch.Tensor]]) -> None:
    pass


@dataclass
class Callbacks:
    # After each epoch: epoch from 1 and {metric key: value}; values may be NaN or inf.
    on_epoch: Callable[[int, dict[str, float]], None] = _no_epoch
    # Polled after each epoch; True cancels the run (z* is kept, test figures computed).
    should_stop: Callable[[], bool] = lambda: False
    # Before each epoch: (epoch, scheduled η) -> η chosen by hand, or None to follow the schedule.
    current_lr: Callable[[int, float], float | None] = lambda epoch, scheduled: None
    # Every training.log_every_steps steps: (global step from 1, {"step_loss": minibatch loss},
    # with "step_lr", the step's η, when the schedule counts steps).
    on_step: Callable[[int, dict[str, float]], None] = _no_step
    # Some epochs, 2-D datasets: (epoch, {"x", "y", "labels", "probs", "probs_of"}), boundary.py.
    on_boundary: Callable[[int, dict], None] = _no_boundary
    # After each epoch: (epoch, snapshot). Calling snapshot() gives, on the CPU, everything
    # train(resume=…) needs to go on after that epoch exactly as if never interrupted; it is a
    # thunk so that a caller who checkpoints rarely pays nothing on the other epochs.
    on_checkpoint: Callable[[int, Callable[[], dict]], None] = _no_checkpoint
    # After each epoch: (epoch, the current model's confusion matrix on S_v), rows the true
    # class, columns the predicted one, in the order of the outcome's ``classes``.
    on_confusion: Callable[[int, list[list[int]]], None] = _no_confusion
    # A single network only (not an ensemble's or a pack's stack): (epoch, weights) for z0
    # (epoch 0, unless resumed) and after each epoch; weights() gives the model's state_dict,
    # detached (a thunk: a caller who keeps nothing pays nothing). The loss landscape's path.
    on_weights: Callable[[int, Callable[[], dict[str, torch.Tensor]]], None] = _no_weights


@dataclass
class TrainOutcome:
    status: str  # "succeeded" | "cancelled" | "diverged"
    result: dict  # SPEC.md's result object; its test figures are the returned model's
    state_dict: dict[str, torch.Tensor]  # the returned model (result.kept), on the CPU
    classes: list[str]
    input_shape: tuple[int, ...] = ()  # one example's shape, e.g. (1, 8, 8) for digits
    metrics: list[dict[str, float]] = field(default_factory=list)  # what on_epoch received


@dataclass
class Tracker:
    """One z* and its early stopping: ``key`` is the metric it monitors in its member's
    figures; ``row`` the stack row whose z* it keeps (None: the whole network)."""

    stopper: EarlyStopping
    key: str
    row: int | None


@dataclass
class Member:
    """One run the loop serves."""

    spec: Spec
    callbacks: Callbacks
    row: int | None  # its stack row (a pack member); None: the whole stack (a run, an ensemble)
    trackers: list[Tracker]
    history: list[dict[str, float]] = field(default_factory=list)
    status: str = "succeeded"
    diverged_epoch: int | None = None
    epoch: int = 0  # the last epoch it trained
    active: bool = True
    confusion: list[list[int]] = field(default_factory=list)  # the last epoch's, on S_v

    def stopping(self, epoch: int) -> bool:
        """Every tracker's patience has run out after ``epoch``."""
        return all(t.stopper.should_stop(epoch) for t in self.trackers)

    def kept(self) -> str:
        """Which model it returns: training.keep; auto is z* with early stopping, and also when
        the last z is no use (diverged) or the run was cancelled (SPEC.md: best model kept)."""
        keep = self.spec.training.keep
        if keep != "auto":
            return keep
        stopping = self.spec.training.early_stopping.patience is not None
        return "best" if stopping or self.status != "succeeded" else "last"


@dataclass
class Snapshot:
    """A member after an epoch, on the CPU: the checkpoint format (``to_dict``/``from_dict``,
    plain tensors and numbers for torch.save with weights_only). ``stoppers``: each tracker's
    {best_value, best_epoch, deadline}; ``orders``: each stack row's order generator."""

    epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    best_state: dict[str, torch.Tensor]
    stoppers: list[dict[str, Any]]
    orders: list[torch.Tensor]
    dropout_gen: torch.Tensor
    dropout_device: str
    noise_gen: torch.Tensor
    initial: dict[str, float | None] | None = None  # z0's figures (Stack.initial), if known

    STOPPER_FIELDS = ("best_value", "best_epoch", "deadline")

    def to_dict(self) -> dict[str, Any]:
        return _cpu({name: getattr(self, name) for name in self.__dataclass_fields__})

    @staticmethod
    def dumps(snapshot: dict[str, Any]) -> bytes:
        """A snapshot dict (``to_dict``) as the bytes a checkpoint is stored as."""
        buffer = io.BytesIO()
        torch.save(snapshot, buffer)
        return buffer.getvalue()

    @staticmethod
    def loads(blob: bytes) -> dict[str, Any]:
        """The snapshot dict a stored checkpoint holds, on the CPU, for ``train(resume=…)``."""
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Snapshot:
        """Also reads the format before this class, whose ``stopper`` was EarlyStopping's
        attributes; resumed as an ensemble with per-member trackers, such a (joint) stopper
        is each member's, its score unknown (NaN): the next epoch sets each member's z*."""
        d = dict(d)
        if "stopper" in d:
            d["stoppers"] = [d.pop("stopper")]
        d["stoppers"] = [{f: s[f] for f in cls.STOPPER_FIELDS} for s in d["stoppers"]]
        d.setdefault("dropout_device", "cpu")
        d.setdefault("initial", None)
        return cls(**{name: d[name] for name in cls.__dataclass_fields__})


def _cpu(tree: object) -> object:
    """A deep copy of a (nested) state with every tensor on the CPU."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True)
    if isinstance(tree, dict):
        return {k: _cpu(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_cpu(v) for v in tree)
    return tree


def _every(epoch: int, max_epochs: int, times: int) -> bool:
    """Epochs 1, 2, 4, 8, … (so early-stopped runs get measured too), and every T // times."""
    return epoch & (epoch - 1) == 0 or epoch % max(1, max_epochs // times) == 0


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None  # NaN and infinities travel as null (SPEC.md)


def _row(state: dict[str, torch.Tensor], row: int | None) -> dict[str, torch.Tensor]:
    return state if row is None else {name: v[row] for name, v in state.items()}


class Stack:
    """What the members share: data on the device, the stacked network, its optimiser and
    random streams. ``own_data``: each member its own split (a pack: X (K, N, …)); else one
    split for all (X (N, …))."""

    def __init__(self, specs: Sequence[Spec], seeds: list[int], dev: torch.device,
                 data_root: PathLike | str | None, own_data: bool,
                 memory_limit: int | None = None, cache: DataCache | None = DATA_CACHE) -> None:
        spec = self.spec = specs[0]
        self.dev, self.own_data, self.seeds = dev, own_data, seeds
        splits, size = [], 0
        for s in (specs if own_data else specs[:1]):
            # On the device already, and kept there for the worker's next runs (data_cache.py).
            d = (cache.splits(s, data_root, dev) if cache is not None
                 else load_dataset(s, data_root))
            size += sum(t.numel() * t.element_size() for t in (d.X_train, d.X_val, d.X_test))
            if memory_limit is not None and size > memory_limit:
                raise PackTooLarge(f"{len(specs)} runs' datasets exceed "
                                   f"{memory_limit >> 20} MiB together")
            splits.append(d)
        self.splits, data = splits, splits[0]
        self.classes, self.input_shape = list(data.classes), tuple(data.input_shape)

        def put(name: str) -> torch.Tensor:
            if own_data:
                return torch.stack([getattr(d, name) for d in splits]).to(dev)
            return getattr(data, name).to(dev)

        self.X_train, self.y_train, self.X_val, self.y_val, self.X_test, self.y_test = (
            put(a) for a in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"))
        n = self.n = self.y_train.shape[-1]
        # m larger than n would mean ⌊n/m⌋ = 0 updates per epoch; treat it as full batch.
        m = self.m = n if spec.optim.batch_size == "full" else min(spec.optim.batch_size, n)
        self.n_batches = n // m  # the n mod m left over are skipped this epoch (COURSE.md §2)
        if spec.model.batchnorm and m < 2:
            raise ValueError("batchnorm needs minibatches of at least 2 examples")
        self.K = len(seeds)
        if own_data:  # rows of a flattened view; member k's rows start at k·n
            self.flat_X, self.flat_y = self.X_train.flatten(0, 1), self.y_train.flatten(0, 1)
            self.offsets = torch.arange(self.K, device=dev)[:, None] * n
        else:
            self.flat_X, self.flat_y, self.offsets = self.X_train, self.y_train, None
        # None = off. A pack's members each draw from their own seed's stream.
        self.augment = (make_pack_augmenter(specs, data.input_shape) if own_data
                        else make_augmenter(spec, data.input_shape, dev))

        # Network: member k initialised on the CPU from its seed (same z0 on any device),
        # without disturbing the caller's global RNG.
        model, self.init_report = build_network(spec, data.input_shape, len(data.classes), seeds)
        self.model = model.to(dev).train()
        # spec.speed (bfloat16 autocast, torch.compile, a captured step), or on a GPU with
        # speed.auto the fastest way of running this step, timed on throwaway copies.
        speed, self.speed_report = resolve_speed(
            spec, dev, spec.training.max_epochs * self.n_batches,
            lambda choice: speed_trial(spec, self.K, data.input_shape, len(data.classes),
                                       m, dev, choice))
        apply_speed(model, speed, dev)
        self.use_graph, why_not = uses_graph(spec, dev, speed.cuda_graph)
        if speed.cuda_graph:
            self.speed_report["cuda_graph"] = self.use_graph
            if why_not:
                self.speed_report["cuda_graph_off"] = why_not
        self.graph: GraphStep | None = None  # built at the first epoch (after any resume)
        self.stacked = getattr(model, "members", None) is not None
        self.optimizer = build_optimizer(spec.optim, model)
        self.weights = [p for g in self.optimizer.param_groups if g["kind"] == "weights"
                        for p in g["params"]]
        # Own generators: a CPU one per stack row for the minibatch order (the same order on
        # any device); dropout masks on the device, one stream for a run or an ensemble, one
        # per member for a pack (each member's masks are its run's alone, layers.Dropout).
        self.orders = [torch.Generator().manual_seed(derive_seed(s, "order")) for s in seeds]
        self.dropout = bool(model.dropouts())
        self.dropout_gen = torch.Generator(dev).manual_seed(derive_seed(spec.seed, "dropout"))
        self.dropout_gens = [torch.Generator(dev).manual_seed(derive_seed(s, "dropout"))
                             for s in seeds] if own_data else []
        if self.dropout and own_data:
            model.set_dropout(generators=self.dropout_gens)
        elif self.dropout:
            model.set_dropout(generator=self.dropout_gen)
        noise_seeds = seeds if own_data else [spec.seed]
        self.noise_gens = [torch.Generator().manual_seed(derive_seed(s, "grad_noise"))
                           for s in noise_seeds]
        self.full_pass = spec.model.batchnorm and spec.model.batchnorm_eval == "full_pass"
        self.best_state: dict[str, torch.Tensor] = {}
        # z0's figures ({val,test}_{loss,accuracy}; K-lists for a pack): what an early-stopping
        # what-if starts from (best epoch 0). None when resumed: z0 is not there any more.
        self.initial: dict[str, Any] | None = None
        self.initial_confusion: torch.Tensor | None = None

    def start(self) -> dict[str, Any]:
        """The initial model's validation figures; z* starts there (z* ← z0, COURSE.md §3)."""
        initial = self.validate(confusion=True)
        # z0's matrix too: a run whose best epoch is 0 returns z0, and its view asks for it.
        self.initial_confusion = initial.pop("confusion")
        initial = read(initial)
        test = read(self.held_out())
        self.initial = {"val_loss": initial["loss"], "val_accuracy": initial["accuracy"],
                        "test_loss": test["loss"], "test_accuracy": test["accuracy"]}
        self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return initial

    def validate(self, act_stats: bool = False,
                 confusion: bool = False) -> dict[str, torch.Tensor]:
        """The validation pass, after the full-pass batchnorm statistics where asked."""
        if self.full_pass:
            full_pass_statistics(self.model, self.X_train, EVAL_CHUNK)
        if self.own_data:
            return evaluate_members(self.model, self.X_val, self.y_val, act_stats=act_stats,
                                    confusion=confusion)
        return evaluate(self.model, self.X_val, self.y_val, act_stats=act_stats,
                        combine=self.spec.ensemble.combine, confusion=confusion)

    def held_out(self) -> dict[str, torch.Tensor]:
        """The test split's loss and accuracy now (an ensemble's: its combined prediction's;
        a pack: K-vectors). Stored per epoch as ``heldout/…`` for early-stopping what-ifs; the
        run's own choices never read them."""
        if self.own_data:
            return evaluate_members(self.model, self.X_test, self.y_test)
        test = evaluate(self.model, self.X_test, self.y_test, combine=self.spec.ensemble.combine)
        return {"loss": test["loss"], "accuracy": test["accuracy"]}

    def initial_of(self, member: Member) -> dict[str, float | None] | None:
        """The member's own z0 figures (its row's, in a pack)."""
        if self.initial is None:
            return None
        return {name: _finite(v if member.row is None else v[member.row])
                for name, v in self.initial.items()}

    def member_view(self, member: Member) -> tuple[torch.nn.Module, Splits]:
        """(the member's network, its split): a pack member's is a copy of its row."""
        if member.row is None:
            return self.model, self.splits[0]
        return self.model.member(member.row), self.splits[member.row]

    def snapshot(self, member: Member, epoch: int) -> Snapshot:
        k = member.row
        opt = self.optimizer.state_dict()
        if k is not None:  # exactly a single run's optimiser state
            opt["state"] = {i: {name: t[k] if torch.is_tensor(t) and t.ndim else t
                                for name, t in st.items()} for i, st in opt["state"].items()}
        return Snapshot(
            epoch=epoch, model=_row(self.model.state_dict(), k), optimizer=opt,
            best_state=_row(self.best_state, k),
            stoppers=[{f: getattr(t.stopper, f) for f in Snapshot.STOPPER_FIELDS}
                      for t in member.trackers],
            orders=[g.get_state() for g in (self.orders if k is None else self.orders[k:k + 1])],
            # A pack member's stream is its own, the one its run alone would be at.
            dropout_gen=(self.dropout_gen if k is None else self.dropout_gens[k]).get_state(),
            dropout_device=self.dev.type,
            noise_gen=self.noise_gens[k or 0].get_state(),
            initial=self.initial_of(member),
        )

    def restore(self, member: Member, snap: Snapshot) -> None:
        """Resume a whole-stack member (a run or an ensemble) from its snapshot."""
        self.model.load_state_dict(snap.model)
        self.optimizer.load_state_dict(snap.optimizer)
        self.best_state = {k: v.to(self.dev) for k, v in snap.best_state.items()}
        saved = snap.stoppers * len(member.trackers) if len(snap.stoppers) == 1 else snap.stoppers
        for t, s in zip(member.trackers, saved):
            vars(t.stopper).update(s)
            if len(snap.stoppers) != len(member.trackers):
                t.stopper.best_value = math.nan
        for gen, state in zip(self.orders, snap.orders):
            gen.set_state(state)
        # A GPU generator's state means nothing to a CPU one (and vice versa): a run taken
        # over on another kind of device goes on with fresh dropout masks rather than failing.
        if snap.dropout_device == self.dev.type:
            self.dropout_gen.set_state(snap.dropout_gen)
        self.noise_gens[0].set_state(snap.noise_gen)
        self.initial = snap.initial

    def keep_best(self, tracker: Tracker) -> None:
        """z* ← z for the tracker's row (or the whole network)."""
        state = self.model.state_dict()
        for name, v in state.items():
            if tracker.row is None:
                self.best_state[name].copy_(v)
            else:
                self.best_state[name][tracker.row].copy_(v[tracker.row])


def make_members(stack: Stack, specs: Sequence[Spec], callbacks: Sequence[Callbacks],
                 initial: dict[str, Any] | None) -> list[Member]:
    """One member per run; each tracker starts from the initial model's score (z* ← z0), or
    from nothing when ``initial`` is None (resumed: the snapshot says where it stood)."""
    spec = stack.spec
    es = spec.training.early_stopping
    which = "loss" if es.monitor == "val_loss" else "accuracy"
    if initial is None:
        nan = [math.nan] * stack.K
        initial = {which: nan if stack.own_data else math.nan, f"member_{which}": nan}

    def tracker(key: str, row: int | None, value: float) -> Tracker:
        return Tracker(EarlyStopping(es.patience, es.monitor, initial=value), key, row)

    if stack.own_data:
        return [Member(s, cb, k, [tracker(es.monitor, k, initial[which][k])])
                for k, (s, cb) in enumerate(zip(specs, callbacks))]
    if stack.stacked and spec.ensemble.select == "per_member":
        trackers = [tracker(f"member/{k}/{es.monitor}", k, v)
                    for k, v in enumerate(initial[f"member_{which}"])]
    else:
        trackers = [tracker(es.monitor, None, initial[which])]
    return [Member(spec, callbacks[0], None, trackers)]


def _epoch_figures(stack: Stack, members: list[Member], epoch: int, lr: float,
                   loss_sum: torch.Tensor, correct: torch.Tensor, t0: float,
                   train_seconds: float, before: dict[str, torch.Tensor]
                   ) -> list[dict[str, float]]:
    """Each member's figures of this epoch (SPEC.md's epoch-level keys), read in one sync;
    ``before``: the weights before the last update, for update_ratio (empty: not measured)."""
    spec, model = stack.spec, stack.model
    layer_stats = spec.diagnostics.layer_stats
    max_epochs = spec.training.max_epochs
    noise_due = spec.diagnostics.grad_noise and _every(epoch, max_epochs, GRAD_NOISE_TIMES)
    n_b, m, K = stack.n_batches, stack.m, stack.K
    val = stack.validate(act_stats=layer_stats, confusion=True)
    _confusions(stack, members, val.pop("confusion"))
    test = stack.held_out()
    held_out = {"heldout/test_loss": test["loss"], "heldout/test_accuracy": test["accuracy"]}
    if stack.own_data:
        figures = read({
            "train_loss": loss_sum / n_b, "train_accuracy": correct / (n_b * m),
            "val_loss": val.pop("loss"), "val_accuracy": val.pop("accuracy"),
            "weight_norm": member_weight_norms(stack.weights), **held_out,
            **(grad_stds(model, per_member=True) if layer_stats else {}), **val,
            **diagnostics.update_ratios(model, before, per_member=True),
        })
        out = []
        for member in members:
            k = member.row
            metrics = {"lr": lr, **{key: values[k] for key, values in figures.items()}}
            if noise_due:
                metrics.update(read(grad_variance(model.member(k), stack.X_train[k],
                                                  stack.y_train[k],
                                                  generator=stack.noise_gens[k])))
            out.append(metrics)
        seconds, examples = time.perf_counter() - t0, n_b * m
    else:
        pending = {
            # Equal-size minibatches: mean of means (an ensemble's: mean over members too).
            "train_loss": loss_sum.sum() / (n_b * K),
            "train_accuracy": correct.sum() / (n_b * m * K),
            "val_loss": val.pop("loss"),
            "val_accuracy": val.pop("accuracy"),
            "weight_norm": weight_norm(stack.weights, model.members), **held_out,
            **{k: v for k, v in val.items() if k.startswith("act_std/")},
        }
        if stack.stacked:
            pending["member_val_loss"] = val["member_loss"]
            pending["member_val_accuracy"] = val["member_accuracy"]
        if layer_stats:
            pending.update(grad_stds(model))
        pending.update(diagnostics.update_ratios(model, before))
        pending.update({k: v for k, v in val.items()
                        if k.startswith(("dead_fraction/", "saturation/"))})
        if noise_due:
            probe = model.member(0) if stack.stacked else model
            pending.update(grad_variance(probe, stack.X_train, stack.y_train,
                                         generator=stack.noise_gens[0]))
        figures = read(pending)
        if stack.stacked:
            for name in ("val_loss", "val_accuracy"):
                for k, v in enumerate(figures.pop(f"member_{name}")):
                    figures[f"member/{k}/{name}"] = v
        out = [{"lr": lr, **figures}]
        seconds, examples = time.perf_counter() - t0, n_b * m * K
    for metrics in out:
        metrics["epoch_seconds"] = seconds
        metrics["examples_per_second"] = examples / max(train_seconds, 1e-9)
    return out


def _confusions(stack: Stack, members: list[Member], counts: torch.Tensor) -> None:
    """Each member's confusion matrix of this epoch (counts: (C, C), or a pack's (K, C, C))."""
    # C² numbers per member; this sync waits for the validation pass that read() would wait for.
    rows = counts.reshape(-1, *counts.shape[-2:]).tolist()
    for member in members:
        member.confusion = rows[member.row or 0]


def _lr_clock(spec: Spec, n_batches: int) -> tuple[Callable[[int], float], bool]:
    """(η of t, whether t counts steps): optim.schedule.per says what every schedule's t
    counts, epochs or minibatch steps, from 1."""
    optim, max_epochs = spec.optim, spec.training.max_epochs
    if optim.schedule.per == "step":
        total = max_epochs * n_batches
        return (lambda t: lr_at(optim.schedule, optim.lr, t, total)), True
    return (lambda t: lr_at(optim.schedule, optim.lr, t, max_epochs)), False


def result_of(stack: Stack, member: Member) -> TrainOutcome:
    """The member's outcome: its figures for z* (``best``) and for the last epoch's z
    (``final``), and the model it returns (``Member.kept``), every other result figure computed
    on that one. Dropout strategy A measures with the run's own masks (seed-derived, the same
    for every model measured), and its figure is the ``mc_curve`` point with as many masks."""
    spec, dev = member.spec, stack.dev
    combine = spec.ensemble.combine
    net, split = stack.member_view(member)
    X_val, y_val = split.X_val.to(dev), split.y_val.to(dev)
    X_test, y_test = split.X_test.to(dev), split.y_test.to(dev)
    samples = spec.model.dropout.mc_samples
    mc_gen = lambda: torch.Generator(dev).manual_seed(derive_seed(spec.seed, "mc"))
    use_mc = stack.dropout and spec.model.dropout.inference == "mc"

    def test_figures() -> dict[str, Any]:
        if use_mc:
            return read(evaluate_mc(net, X_test, y_test, samples, mc_gen(), combine)[0])
        return read(evaluate(net, X_test, y_test, combine=combine))

    kept = member.kept()
    states = {"final": {k: v.detach().clone() for k, v in net.state_dict().items()},
              "best": _row(stack.best_state, member.row)}
    mine, other = ("best", "final") if kept == "best" else ("final", "best")
    vals, tests = {}, {}
    for which in (other, mine):  # the returned model last: the network ends holding it
        net.load_state_dict(states[which])
        vals[which] = read(evaluate(net, X_val, y_val, combine=combine))
        if which == other:
            tests[which] = test_figures()

    scale = read(evaluate(net, X_test, y_test, combine=combine))  # strategy B (or no dropout)
    test, dropout_result = scale, None
    if stack.dropout:
        mc, curve = evaluate_mc(net, X_test, y_test, samples, mc_gen(), combine)
        mc = read(mc)
        test = mc if use_mc else scale
        dropout_result = {"inference": spec.model.dropout.inference,
                          "scale": scale["accuracy"], "mc": mc["accuracy"], "mc_samples": samples,
                          "mc_curve": curve}
    tests[mine] = test
    ensemble_result = None
    if stack.stacked and member.row is None:
        ensemble_result = ens.summary(test["member_accuracy"], test["mean_accuracy"],
                                      test["vote_accuracy"], combine)
        ensemble_result["select"] = spec.ensemble.select
        ensemble_result["member_best_epochs"] = [t.stopper.best_epoch for t in member.trackers]
    best_epoch = max(t.stopper.best_epoch for t in member.trackers)
    epochs = {"best": best_epoch, "final": member.epoch}
    result = {
        "best_epoch": best_epoch,
        "stopped_epoch": member.epoch,
        "epochs_run": member.epoch,
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "test_accuracy_mc": dropout_result["mc"] if dropout_result else None,
        "distinct_units": distinct_units(net),
        "ensemble": ensemble_result,
        "diverged_epoch": member.diverged_epoch,
        "init": stack.init_report,
        "dropout": dropout_result,
        "kept": kept,
        "initial": stack.initial_of(member),
        "speed": stack.speed_report,
        **{which: {"epoch": epochs[which],
                   "val_loss": _finite(vals[which]["loss"]),
                   "val_accuracy": _finite(vals[which]["accuracy"]),
                   "test_loss": _finite(tests[which]["loss"]),
                   "test_accuracy": _finite(tests[which]["accuracy"])}
           for which in ("best", "final")},
    }
    return TrainOutcome(
        status=member.status, result=result,
        state_dict={k: v.detach().cpu() for k, v in net.state_dict().items()},
        classes=stack.classes, input_shape=stack.input_shape, metrics=member.history,
    )


def run(
    stack: Stack, members: list[Member], *, resume: Snapshot | None = None,
    after_epoch: Callable[[int], None] | None = None,
    on_member_done: Callable[[int, TrainOutcome], None] | None = None,
) -> list[TrainOutcome]:
    """Train until every member has stopped; member i ends as outcome i, handed to
    ``on_member_done(i, outcome)`` as soon as it stops. ``after_epoch(epoch)`` follows every
    member's callbacks of an epoch. ``resume`` (one whole-stack member only): go on after the
    snapshot's epoch exactly as if never interrupted."""
    spec, model, optimizer = stack.spec, stack.model, stack.optimizer
    max_epochs = spec.training.max_epochs
    n, m, n_b = stack.n, stack.m, stack.n_batches
    lr_of, per_step = _lr_clock(spec, n_b)
    boundary = wants_boundary(spec.diagnostics.boundary, stack.input_shape)
    log_every = spec.training.log_every_steps or 0
    outcomes: dict[int, TrainOutcome] = {}
    first_epoch = 1
    if resume is not None:
        stack.restore(members[0], resume)
        first_epoch = resume.epoch + 1
        members[0].epoch = resume.epoch
        if members[0].stopping(resume.epoch):
            first_epoch = max_epochs + 1  # it had stopped: nothing left to train

    def finish(i: int) -> None:
        member = members[i]
        member.active = False
        outcomes[i] = result_of(stack, member)
        if on_member_done is not None:
            on_member_done(i, outcomes[i])

    def weights() -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in model.state_dict().items()}

    single = not stack.stacked and not stack.own_data
    if resume is None and stack.initial is not None:
        _confusions(stack, members, stack.initial_confusion)
        for member in members:
            member.callbacks.on_confusion(0, member.confusion)
    if single and resume is None:
        members[0].callbacks.on_weights(0, weights)
    for epoch in range(first_epoch, max_epochs + 1):
        active = [i for i, mb in enumerate(members) if mb.active]
        if not active:
            break
        t0 = time.perf_counter()
        step0 = (epoch - 1) * n_b  # global steps done before this epoch
        scheduled = lr_of(step0 + 1 if per_step else epoch)
        # η by hand: a single run's live control (a pack follows its schedule, SPEC.md).
        override = members[0].callbacks.current_lr(epoch, scheduled) if len(members) == 1 \
            else None
        lr = scheduled if override is None else float(override)
        set_lr(optimizer, lr)

        def log_step(step: int, losses: torch.Tensor, step_lr: float,
                     active: list[int] = active) -> None:
            values = losses.tolist()
            extra = {"step_lr": step_lr} if per_step else {}
            for i in active:
                loss = values[members[i].row] if stack.own_data else sum(values) / stack.K
                members[i].callbacks.on_step(step, {"step_loss": loss, **extra})

        # One epoch of minibatch updates; running sums stay on the device. A named region,
        # so a profiler trace shows where an epoch's steps begin and end.
        before: dict[str, torch.Tensor] = {}  # the weights before the last update (health)

        def keep_weights(before: dict[str, torch.Tensor] = before) -> None:
            before.update(diagnostics.weights_before_update(model))

        wants_ratio = spec.diagnostics.layer_stats and diagnostics.HEALTH_FIGURES
        with torch.profiler.record_function(STEPS_REGION):
            rows = epoch_rows(spec.optim.sampling, n, m, n_b, stack.orders).to(stack.dev)
            if stack.offsets is not None:
                rows = rows + stack.offsets
            step_options = {
                "step0": step0, "log_every": log_every, "log_step": log_step,
                "lr_of_step": lr_of if per_step and override is None else None,
                "before_last_update": keep_weights if wants_ratio else None}
            if stack.use_graph:  # the step captured once and replayed (graph.py)
                if stack.graph is None:
                    stack.graph = GraphStep(model, optimizer, stack.flat_X, stack.flat_y,
                                            rows.shape[0], m)
                loss_sum, correct = stack.graph.run_epoch(rows, n_b, **step_options)
                if stack.graph.failed:
                    stack.speed_report.update(cuda_graph=False,
                                              cuda_graph_off=stack.graph.failed)
            else:
                loss_sum, correct = run_epoch(
                    model, optimizer, stack.flat_X, stack.flat_y, rows, m, n_b,
                    augment=stack.augment, **step_options)
            if stack.dev.type == "cuda":
                torch.cuda.synchronize(stack.dev)  # once per epoch: honest throughput
        train_seconds = time.perf_counter() - t0

        figures = _epoch_figures(stack, [members[i] for i in active], epoch, lr, loss_sum,
                                 correct, t0, train_seconds, before)
        for i, metrics in zip(active, figures):
            member, cb = members[i], members[i].callbacks
            member.epoch = epoch
            member.history.append(metrics)
            # The matrix first: on_epoch may write the epoch's points at once, and a viewer
            # told of them asks for the matrix of that epoch.
            cb.on_confusion(epoch, member.confusion)
            cb.on_epoch(epoch, metrics)
            if single:
                cb.on_weights(epoch, weights)
            stop = epoch == max_epochs
            if not math.isfinite(metrics["train_loss"]):
                member.status, member.diverged_epoch = "diverged", epoch
                finish(i)
                continue
            for t in member.trackers:
                # A tracker whose patience ran out keeps its z*: what it would be trained alone.
                if not t.stopper.should_stop(epoch - 1) and t.stopper.update(
                        epoch, metrics[t.key]):
                    stack.keep_best(t)
            cb.on_checkpoint(epoch, lambda member=member, epoch=epoch:
                             stack.snapshot(member, epoch).to_dict())
            if cb.should_stop():
                member.status, stop = "cancelled", True
            stop = stop or member.stopping(epoch)
            if boundary and (stop or _every(epoch, max_epochs, BOUNDARY_TIMES)):
                k = member.row
                net = model if k is None else model.member(k)
                X, y = (stack.X_train, stack.y_train) if k is None else (
                    stack.X_train[k], stack.y_train[k])
                cb.on_boundary(epoch, boundary_grid(net, X, y=y))
            if stop:
                finish(i)
        if after_epoch is not None:
            after_epoch(epoch)

    for i, member in enumerate(members):
        if member.active:  # resumed after its last epoch: nothing was left to train
            finish(i)
    return [outcomes[i] for i in range(len(members))]
