"""The training step captured once in a CUDA graph and replayed (``speed.cuda_graph``).

A step of a small network is some fifty kernel launches, each a few microseconds of host
work; on a fast GPU the kernels themselves take less, so an eager step leaves the GPU waiting
for the host (issue 19 measured 73 % of the steps waiting for the CIFAR-shaped CNN at m = 256).
A CUDA graph records the launches of one step once; each replay is then one launch. What a
graph needs, and how this one provides it:

- Fixed shapes and addresses: the minibatch is gathered inside the graph, from the dataset
  (already on the device, at a fixed address) by ``index_select`` with a static index buffer;
  before each replay the step's rows are copied into that buffer (a device-to-device copy).
- A learning rate that can change (schedules, per step or per epoch): the update reads η from
  a one-element device tensor instead of a Python number baked into the kernels; it is filled
  before a replay when η changed (a fill is a kernel launch with an argument, no host sync).
  The update is the course's momentum step (optim.MomentumSGD) written with that tensor:
  v ← α v − η·(g + λ w); z ← z + v, the same arithmetic up to one rounding of η·g.
- Per-step figures without host work: the minibatch loss and the correct count are added to
  device accumulators inside the graph; the loss is cloned out only on logged steps.
- Warm-up before capture: the first ``WARMUP_STEPS`` steps of the run are ordinary eager steps
  on a side stream (as torch.cuda.graphs asks), which also creates the momentum buffers.

What is not captured (``graph_reason`` says why, and the run trains eagerly): anything off a
CUDA device; Adam (its step counter lives on the host); augmentation (its parameters are drawn
on the host each step); dropout (its masks come from the run's own generators, which a graph
would have to register); torch.compile (a second way to do the same). A capture that fails
on the GPU leaves the run going with the same step run eagerly, and result.speed says why.

On the CPU the same step body runs through ``EagerReplay``, a stand-in that calls the body
where a graph would replay it, so the buffers, accumulators and tensor-η update are tested
there against the plain step (tests/engine/test_graph_step.py); the capture itself is tested
on a GPU (tests/engine/test_cuda.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .optim import MomentumSGD
from .spec import Spec

WARMUP_STEPS = 3


def graph_reason(spec: Spec, device: torch.device) -> str | None:
    """Why this run's training step is not captured in a CUDA graph, or None when it is
    (asked for, or chosen by ``speed.auto``)."""
    if device.type != "cuda":
        return "CUDA graphs need a GPU: the step runs eagerly on the CPU"
    if spec.optim.method != "sgd":
        return "Adam keeps its step count on the host"
    if spec.augment:
        return "augmentation draws its parameters on the host every step"
    if spec.model.dropout.p_inc_input < 1 or spec.model.dropout.p_inc_hidden < 1:
        return "dropout masks come from the run's own generators"
    if spec.speed.compile:
        return "a compiled network is not captured as well"
    return None


class EagerReplay:
    """The CPU stand-in for a captured graph: ``capture(body)`` keeps the body, ``replay()``
    runs it. Observably what a graph does, without a GPU."""

    # Each replay runs the Python body, which makes new gradient tensors (a graph's are fixed).
    runs_body = True

    def __init__(self) -> None:
        self.body: Callable[[], None] | None = None
        self.replays = 0

    def capture(self, body: Callable[[], None]) -> None:
        self.body = body

    def replay(self) -> None:
        assert self.body is not None
        self.replays += 1
        self.body()


class CudaReplay:
    """A torch.cuda.CUDAGraph around the body, captured once."""

    runs_body = False

    def __init__(self) -> None:
        self.graph = torch.cuda.CUDAGraph()
        self.replays = 0

    def capture(self, body: Callable[[], None]) -> None:
        with torch.cuda.graph(self.graph):
            body()

    def replay(self) -> None:
        self.replays += 1
        self.graph.replay()


class GraphStep:
    """The run's training step with static buffers, captured at the first epoch and replayed
    for every step after the warm-up. ``replay``: EagerReplay on the CPU (tests), CudaReplay
    on a GPU (the default for each device)."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 X: torch.Tensor, y: torch.Tensor, k: int, m: int,
                 replay: EagerReplay | CudaReplay | None = None) -> None:
        if not isinstance(optimizer, MomentumSGD):
            raise TypeError("a captured step needs the course's SGD (optim.MomentumSGD)")
        self.model, self.optimizer, self.X, self.y, self.k, self.m = model, optimizer, X, y, k, m
        self.stacked = getattr(model, "members", None) is not None
        dev = X.device
        self.replayer = replay if replay is not None else (
            CudaReplay() if dev.type == "cuda" else EagerReplay())
        self.idx = torch.zeros(k * m, dtype=torch.long, device=dev)
        self.lr = torch.zeros((), device=dev)
        self.loss_sum = torch.zeros(k, device=dev)
        self.correct = torch.zeros(k, dtype=torch.long, device=dev)
        self.loss = torch.zeros(k, device=dev)  # the last replayed step's member losses
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.static_grads: list[torch.Tensor | None] = []
        for p in self.params:  # the buffers the graph updates in place (a resumed run's too)
            state = optimizer.state[p]
            if "velocity" not in state:
                state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self.steps_done = 0
        self.captured = False
        self.failed: str | None = None  # why the capture failed, if it did
        self._side: torch.cuda.Stream | None = None  # the warm-up's side stream (a GPU)

    # -- the step body: what the graph records ---------------------------------------------

    def _forward(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Σ of member losses to differentiate, member losses (K,), predictions (K, m))."""
        X, y, k, m = self.X, self.y, self.k, self.m
        xb, yb = X.index_select(0, self.idx), y.index_select(0, self.idx)
        if self.stacked:
            xb, yb = xb.view(k, m, *X.shape[1:]), yb.view(k, m)
            logits = self.model(xb).transpose(1, 2)
            loss = F.cross_entropy(logits, yb, reduction="none").mean(1)
            pred = logits.detach().max(dim=1).indices
            return loss.sum(), loss, (pred == yb)
        logits = self.model(xb)
        loss = F.cross_entropy(logits, yb)
        pred = logits.detach().argmax(dim=1)
        return loss, loss.reshape(1), (pred == yb)[None]

    @torch.no_grad()
    def _update(self) -> None:
        """The course's momentum step with η from the device tensor (optim.MomentumSGD)."""
        opt = self.optimizer
        for group in opt.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            vels = [opt.state[p]["velocity"] for p in params]
            alpha, wd = group["momentum"], group["weight_decay"]
            if wd:
                grads = torch._foreach_add(grads, params, alpha=wd)  # g + λ z
            if alpha == 0.0:
                torch._foreach_zero_(vels)
            else:
                torch._foreach_mul_(vels, alpha)
            torch._foreach_sub_(vels, torch._foreach_mul(grads, self.lr))
            torch._foreach_add_(params, vels)

    def _body(self) -> None:
        for p in self.params:
            p.grad = None  # backward then writes fresh gradients (a graph: its own buffers)
        total, losses, hits = self._forward()
        total.backward()
        self._update()
        with torch.no_grad():
            self.loss.copy_(losses.detach())
            self.loss_sum.add_(losses.detach())
            self.correct.add_(hits.sum(1))

    def _eager_step(self) -> None:
        """A warm-up step: the same body, run directly (on a side stream on a GPU)."""
        if self.X.device.type == "cuda":
            if self._side is None:
                self._side = torch.cuda.Stream(self.X.device)
            side = self._side
            side.wait_stream(torch.cuda.current_stream(self.X.device))
            with torch.cuda.stream(side):
                self._body()
            torch.cuda.current_stream(self.X.device).wait_stream(side)
        else:
            self._body()

    def _capture(self) -> None:
        """Record the step (not run: the replay runs it). If the capture fails, the run goes
        on with the same step run eagerly, and ``failed`` says why (result.speed)."""
        try:
            self.replayer.capture(self._body)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the eager step still works
            lines = str(exc).strip().splitlines()
            self.failed = f"the capture failed ({type(exc).__name__}" + (
                f": {lines[0]}" if lines else "") + "): the step ran eagerly"
            for p in self.params:
                p.grad = None
            return
        self.static_grads = [p.grad for p in self.params]
        self.captured = True

    # -- an epoch ----------------------------------------------------------------------------

    def run_epoch(self, rows: torch.Tensor, n_batches: int, *, step0: int = 0,
                  log_every: int = 0,
                  log_step: Callable[[int, torch.Tensor, float], None] | None = None,
                  lr_of_step: Callable[[int], float] | None = None,
                  before_last_update: Callable[[], None] | None = None,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """step.run_epoch's contract (rows already offset for a pack), with the step replayed
        from the graph."""
        m = self.m
        self.loss_sum.zero_()
        self.correct.zero_()
        lr_now: float | None = None
        for i in range(n_batches):
            step = step0 + i + 1
            lr = lr_of_step(step) if lr_of_step is not None else \
                self.optimizer.param_groups[0]["lr"]
            if lr_of_step is not None:
                for group in self.optimizer.param_groups:  # what the figures read back
                    group["lr"] = lr
            if lr != lr_now:
                self.lr.fill_(lr)
                lr_now = lr
            self.idx.copy_(rows[:, i * m:(i + 1) * m].reshape(-1))
            if before_last_update is not None and i == n_batches - 1:
                before_last_update()  # the weights before this step's update: before it runs
            if not self.captured and self.failed is None and self.steps_done >= WARMUP_STEPS:
                self._capture()
            if not self.captured:  # warming up, or the capture failed: the same step, eagerly
                self._eager_step()
            else:
                self.replayer.replay()
                if self.replayer.runs_body:
                    self.static_grads = [p.grad for p in self.params]
            self.steps_done += 1
            if log_every and log_step is not None and step % log_every == 0:
                log_step(step, self.loss.clone(), lr)
        if self.captured:
            # The graph writes its own gradient buffers; a diagnostic backward between epochs
            # (gradient noise) may have replaced p.grad: the epoch's figures read these.
            for p, g in zip(self.params, self.static_grads):
                p.grad = g
        return self.loss_sum.clone(), self.correct.clone()


def uses_graph(spec: Spec, device: torch.device, chosen: bool) -> tuple[bool, str | None]:
    """(capture the step, why not): ``chosen`` is speed.cuda_graph as asked or auto-chosen."""
    if not chosen:
        return False, None
    reason = graph_reason(spec, device)
    return reason is None, reason
