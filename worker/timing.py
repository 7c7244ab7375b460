"""How a run uses this worker's CPU, decided by timing the engine's own step (engine/step.py's
``run_epoch``, over one minibatch) on throwaway networks and random data: how many torch
threads it gets, and whether a pack trains faster stacked than its runs one by one. The runs'
own data, models and random streams are not touched. Every decision takes a ``clock`` (seconds,
``time.perf_counter`` by default), so the rules are tested on stated timings.

Threads. Small steps lose to thread hand-offs: on a 2-core machine the digits MLP (0.8 M
multiply-adds per step) trains 1.4× faster on one thread than on two. Above SMALL_STEP_MACS the
size alone does not tell (the shapes CNN, 13 M a step, and a 1024-wide MLP at m = 256, 280 M,
were 1.4× and 1.7× faster on two; the mnist1d CNN was faster on one in some runs and on two in
others), so bigger steps are timed with one thread and with every usable core, and the faster
count wins (one on a tie: it leaves the other cores to other workers).

Busy cores. Only the cores that other processes leave idle count: the threads other processes
have runnable now (a median of a few looks at the kernel's count) are subtracted from the usable
cores before anything is timed. Several threads chosen on a quiet
machine collapse once another run trains beside them: on 2 cores with other runs going, the
shapes CNN trained 8–15× slower on two threads than on one (issue 15's lesson-9 crop run, 1,284
against 12,884 examples/s, fits this, not its augmentation: the batched crop costs about 0.1 ms
of a ~10 ms step), while one thread only loses the 1.4× that two would win on an idle machine.

Packs. Stacking pays when a step is dominated by per-operation overhead and loses when it is
dominated by the matrix products: K stacked products are no cheaper than K separate ones, and
the stacked (K, d, m) layout multiplies W·h, a slower shape on the CPU than x·Wᵀ when m is
small. Measured on 2 cores, one thread, 8 members against 8 runs, two hidden layers of width d,
minibatch m (speed-up of the pack):

    d = 64:  4.1× (m = 8) … 2.5× (m = 128)      d = 512:  0.49× (m = 8) … 0.98× (m = 64)
    d = 128: 2.4× (m = 8) … 1.8× (m = 128)      d = 1024: 0.33× (m = 8) … 0.80× (m = 128)
    d = 256: 0.97× (m = 8), 1.9× (m = 16), 1.2× (m = 128)

No count of multiply-adds separates these, so the network alone and a stack of
min(K, TIMED_MEMBERS) are timed with the thread count the run will have. EPOQUE_PACKS says
whether to time (``timed``), or to stack always or never. On a GPU a pack is not timed.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from worker.engine.datasets import dataset_info
from worker.engine.models import build_model
from worker.engine.optim import build_optimizer
from worker.engine.spec import Spec
from worker.engine.step import run_epoch

Clock = Callable[[], float]

# Multiply-adds per training step above which more threads pay (measured, see above).
SMALL_STEP_MACS = 4_000_000
MAX_THREADS = 8
# A full-batch step's size is unknown before loading the data; it is large anyway.
FULL_BATCH_GUESS = 1_000
# Threads: steps timed per count; a step slower than LONG_STEP_SECONDS on all cores is big
# enough for all cores without timing it more (and timing it would cost seconds).
THREAD_STEPS = 3
LONG_STEP_SECONDS = 0.25
# Within this margin the fewer threads win.
TIE = 1.05

TIMED_MEMBERS = 4
# A pack must be at least this much faster: a packed run's figures drift from the run alone by
# round-off (README), which only a real gain is worth.
PAYS = 1.2
# Pack steps timed per network: up to PACK_STEPS, fewer once TIMING_SECONDS have gone by
# (three at least). Three steps alone swung the ratio by ±20 % (measured).
PACK_STEPS = 20
TIMING_SECONDS = 0.25
# A step this long alone is the products' time: a stack saves only per-operation overhead
# (some 30 operations of tens of µs a step), under 10 % of it, short of PAYS; so it is not
# timed stacked (a 2048-wide MLP at m = 256 would take seconds to time).
COMPUTE_BOUND_SECONDS = 0.02


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def macs_per_example(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass, counted on the layers that dominate (linear, conv)."""
    total = 0

    def count(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        weight = getattr(module, "weight", None)
        if weight is None or weight.dim() < 2:
            return
        per_output = weight[0].numel() if weight.dim() > 2 or isinstance(module, nn.Linear) \
            else weight.shape[-1]
        total += per_output * output.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if not list(m.children()) and getattr(m, "weight", None) is not None]
    try:
        with torch.no_grad():
            model.eval()
            model(torch.zeros(1, *input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def timing_batch(spec: Spec) -> int:
    """The minibatch of throwaway timing steps: never more than FULL_BATCH_GUESS, so that a
    huge batch_size (clamped to n by training itself) allocates nothing huge here."""
    batch = spec.optim.batch_size
    return FULL_BATCH_GUESS if batch == "full" else min(batch, FULL_BATCH_GUESS)


def throwaway_step(spec: Spec, members: int, *, pack: bool = False) -> Callable[[], None]:
    """One step of the engine (``run_epoch`` over one minibatch) for ``spec``'s network with
    ``members`` stacked (1: the network alone), each member its own order over m random rows;
    learning rate 0, so every step does the same work. ``pack``: the stack draws its dropout
    masks per member, as a pack does (one generator each), so their cost is timed too. Draws
    from torch's global generator: callers fork it."""
    info = dataset_info(spec.data.dataset)
    # An uploaded folder's classes are known once it is loaded; the head's width barely
    # matters to the time of a step.
    shape, classes = tuple(info.input_shape), max(len(info.classes), 2)
    m = timing_batch(spec)
    one = spec.model_copy(update={
        "ensemble": spec.ensemble.model_copy(update={"members": members}),
        "optim": spec.optim.model_copy(update={"lr": 0.0})})
    model = build_model(one, shape, classes).train()
    if pack and members > 1 and model.dropouts():
        model.set_dropout(generators=[torch.Generator().manual_seed(k) for k in range(members)])
    optimizer = build_optimizer(one.optim, model)
    X, y = torch.rand(m, *shape), torch.randint(classes, (m,))
    rows = torch.stack([torch.randperm(m) for _ in range(members)])

    def step() -> None:
        run_epoch(model, optimizer, X, y, rows, m, 1)

    return step


def step_seconds(step: Callable[[], None], clock: Clock, *, steps: int,
                 budget: float = float("inf")) -> float:
    """Median seconds of ``step()`` after one warm-up: ``steps`` steps, fewer (three at least)
    once ``budget`` seconds have gone by. The clock is read once before the timed steps and
    once after each."""
    step()  # warm-up: allocations, lazy initialisation
    times: list[float] = []
    start = last = clock()
    while len(times) < steps:
        step()
        now = clock()
        times.append(now - last)
        last = now
        if len(times) >= 3 and now - start > budget:
            break
    return statistics.median(times)


def _on_threads(threads: int, work: Callable[[], float]) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return work()
    finally:
        torch.set_num_threads(previous)


LOADAVG = Path("/proc/loadavg")  # "0.52 0.58 0.59 3/123 4567": the 4th field, running/all


def busy_cores(samples: int = 5, gap: float = 0.01, source: Path = LOADAVG) -> float:
    """Cores kept busy by other processes now: the threads the kernel has runnable, less the
    one asking (/proc/loadavg's running count), the median of a few looks (0 where unknown).
    Not the 1-minute load average: it lags, and counts this worker's own last run, so a worker
    that had just trained offered itself one core on an idle machine (the shapes CNN then ran
    1.46× slower than on two)."""
    looks = []
    for i in range(samples):
        try:
            running = source.read_text().split()[3].split("/")[0]
        except (OSError, IndexError):
            return 0.0  # not Linux: nothing known, every usable core is offered
        looks.append(max(0, int(running) - 1))
        if i + 1 < samples:
            time.sleep(gap)
    return float(statistics.median(looks))


def choose_threads(spec: Spec, cores: int | None = None, clock: Clock = time.perf_counter,
                   data_root: Path | None = None, busy: Callable[[], float] = busy_cores) -> int:
    """1 for small steps; for bigger ones the faster of 1 and every usable core that other
    processes leave idle (``busy()``: how many they keep busy; at most MAX_THREADS), timed on
    throwaway steps of the same network (an ensemble's: all members). ``data_root``: where an
    uploaded dataset is unpacked (its classes size the network)."""
    cores = max(1, min(cores or usable_cores(), MAX_THREADS))
    info = dataset_info(spec.data.dataset, data_root)
    members = spec.ensemble.members
    single = spec.model_copy(update={"ensemble": spec.ensemble.model_copy(update={"members": 1})})
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)  # the CPU's only, as build_network does
        model = build_model(single, info.input_shape, max(len(info.classes), 2))
        macs = macs_per_example(model, tuple(info.input_shape)) * timing_batch(spec) * members
        if macs < SMALL_STEP_MACS or cores == 1:
            return 1
        # Asked only now: its looks take ~40 ms, which a small model's run need not pay.
        cores = max(1, min(cores, round(cores - busy())))
        if cores == 1:
            return 1
        step = throwaway_step(spec, members)
        if _on_threads(cores, lambda: step_seconds(step, clock, steps=1)) > LONG_STEP_SECONDS:
            return cores
        one = _on_threads(1, lambda: step_seconds(step, clock, steps=THREAD_STEPS))
        many = _on_threads(cores, lambda: step_seconds(step, clock, steps=THREAD_STEPS))
    return cores if many * TIE < one else 1


def pack_pays(spec: Spec, k: int, device: str, mode: str = "timed",
              clock: Clock = time.perf_counter) -> tuple[bool, str]:
    """(whether k runs of ``spec`` should train as a pack, why) for the worker's log and the
    runs' result. ``mode``: EPOQUE_PACKS (timed | always | never). Timed: the network alone,
    then a stack of min(k, TIMED_MEMBERS), on the caller's thread count."""
    if mode in ("always", "never"):
        return mode == "always", f"EPOQUE_PACKS={mode}"
    if device.startswith("cuda"):
        return True, "on a GPU packs are not timed"
    k = min(k, TIMED_MEMBERS)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)
        single = step_seconds(throwaway_step(spec, 1), clock, steps=PACK_STEPS,
                              budget=TIMING_SECONDS)
        if single > COMPUTE_BOUND_SECONDS:
            return False, f"a step alone takes {single * 1e3:.0f} ms: nothing for a stack to save"
        stacked = step_seconds(throwaway_step(spec, k, pack=True), clock, steps=PACK_STEPS,
                               budget=TIMING_SECONDS)
    speedup = k * single / stacked
    return speedup >= PAYS, f"{k} runs stacked stepped {speedup:.2f}× as fast as one by one"
