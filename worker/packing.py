"""Whether a pack trains faster than its runs one after the other, on this worker.

Stacking pays when a step is dominated by per-operation overhead and loses when it is
dominated by the matrix products: K stacked products are no cheaper than K separate ones, and
the stacked (K, d, m) layout multiplies W·h, a slower shape on the CPU than a single network's
x·Wᵀ when m is small. Measured on 2 cores, one thread, 8 members against 8 runs, two hidden
layers of width d, minibatch m (speed-up of the pack):

    d = 64:  4.1× (m = 8) … 2.5× (m = 128)      d = 512:  0.49× (m = 8) … 0.98× (m = 64)
    d = 128: 2.4× (m = 8) … 1.8× (m = 128)      d = 1024: 0.33× (m = 8) … 0.80× (m = 128)
    d = 256: 0.97× (m = 8), 1.9× (m = 16), 1.2× (m = 128)

No count of multiply-adds separates these (d = 128, m = 128 packs well at 3.3 M a step;
d = 512, m = 8 does not at 2.4 M), so the worker times it, as it times threads: throwaway
steps of the network alone and of a stack of min(K, TIMED_MEMBERS), each the engine's own step
(loss, optimiser) on random data, with the thread count the run will have. The runs' own data,
RNG and models are not touched. On a GPU the pack is not timed: it trains packed.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from worker.engine.datasets import dataset_info
from worker.engine.models import build_model
from worker.engine.optim import build_optimizer, stepper
from worker.engine.spec import Spec
from worker.threads import timing_batch

TIMED_MEMBERS = 4
# A pack must be at least this much faster: a packed run's figures drift from the run alone by
# round-off (README), which only a real gain is worth.
PAYS = 1.2
# Steps timed per network: up to TIMED_STEPS, fewer once TIMING_SECONDS have gone by (three
# steps at least, after a warm-up). Three steps alone swung the ratio by ±20 % (measured).
TIMED_STEPS = 20
TIMING_SECONDS = 0.25
# A step this long alone is the products' time: a stack saves only per-operation overhead
# (some 30 operations of tens of µs a step), under 10 % of it, short of PAYS; so it is not
# timed stacked (a 2048-wide MLP at m = 256 would take seconds to time).
COMPUTE_BOUND_SECONDS = 0.02


def step_seconds(spec: Spec, members: int) -> float:
    """Median seconds of the engine's training step for ``spec`` with ``members`` stacked
    (1: the network alone), on random data, learning rate 0."""
    info = dataset_info(spec.data.dataset)
    # An uploaded folder's classes are known once it is loaded; the head's width barely
    # matters to the time of a step.
    shape, classes = tuple(info.input_shape), max(len(info.classes), 2)
    m = timing_batch(spec)
    one = spec.model_copy(update={
        "ensemble": spec.ensemble.model_copy(update={"members": members}),
        "optim": spec.optim.model_copy(update={"lr": 0.0})})
    model = build_model(one, shape, classes).train()
    clear, update = stepper(build_optimizer(one.optim, model))
    lead = (members, m) if members > 1 else (m,)
    x, y = torch.rand(*lead, *shape), torch.randint(classes, lead)
    times: list[float] = []
    start = time.perf_counter()
    for i in range(TIMED_STEPS + 1):
        t0 = time.perf_counter()
        if members > 1:  # train.stacked_epoch's loss: each member's mean, summed
            loss = F.cross_entropy(model(x).transpose(1, 2), y, reduction="none").mean(1).sum()
        else:
            loss = F.cross_entropy(model(x), y)
        clear()
        loss.backward()
        update()
        if i:
            times.append(time.perf_counter() - t0)
        if len(times) >= 3 and time.perf_counter() - start > TIMING_SECONDS:
            break
    return statistics.median(times)


def pack_pays(spec: Spec, k: int, device: str) -> tuple[bool, str]:
    """(whether k runs of ``spec`` train faster as a pack, why) for the worker's log."""
    if device.startswith("cuda"):
        return True, "on a GPU packs are not timed"
    k = min(k, TIMED_MEMBERS)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(0)
        single = step_seconds(spec, 1)
        if single > COMPUTE_BOUND_SECONDS:
            return False, f"a step alone takes {single * 1e3:.0f} ms: nothing for a stack to save"
        speedup = k * single / step_seconds(spec, k)
    return speedup >= PAYS, f"{k} runs stacked stepped {speedup:.2f}× as fast as one by one"
