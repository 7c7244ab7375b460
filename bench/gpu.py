"""The GPU path: Époque's engine against a bare hand-written loop on the same device, for the CNN
on CIFAR-10-shaped data, in float32, in bfloat16 (``speed.precision``), compiled
(``speed.compile``) and with the step captured in a CUDA graph (``speed.cuda_graph``; on the CPU
it runs eagerly).

Device: ``make bench DEVICE=cuda`` (``python -m bench --device cuda``, or the environment
variable EPOQUE_BENCH_DEVICE=cuda). Where CUDA is absent it says so on stderr and reports
nothing, which is not a failure. With the default device (cpu) the full benchmark is skipped
with a message: on the CPU it would measure the CPU, which ``engine_speed`` already does, and
compiling a CIFAR-sized CNN there takes minutes. ``--smoke`` runs it with tiny sizes on the
device asked for (the CPU by default), so the script, tracing included, cannot rot.

Data: random images and labels written in CIFAR-10's real format (the python pickles
data_batch_1…5, test_batch, batches.meta) into a temporary folder and read by the engine's
``cifar10`` dataset exactly as a run reads them: 50 000 training images (40 000 after the
engine's validation split) and 10 000 test images of 3×32×32, 10 classes. The bare loop trains
on the very same tensors. The labels are random, so nothing is learned; throughput does not care.

Figures, per variant:

- examples/s: training examples per second over an epoch's steps (one shuffle, the steps, one
  device sync; no validation pass). For the engine, its own ``examples_per_second``; the bare
  loop times the same span. Median over the epochs after the first (compilation, warm-up), then
  over repetitions. Ratio = engine / bare loop; 1 means the engine adds nothing.
- host-wait share: the fraction of the steps' wall time in which the GPU runs nothing because it
  waits for the host (Python, dispatch, kernel launches, syncs). One epoch is traced by
  torch.profiler (CPU and CUDA activities). The steps are a named region (the engine's
  ``STEPS_REGION``, which the bare loop uses too) that starts with the device idle and ends
  after a device sync, so every kernel of the epoch lies inside it. The share is
  1 − |union of the kernel, memcpy and memset intervals within the region| / |region|, read from
  the exported Chrome trace. The profiler's own per-op cost is host time too, so the share is an
  upper bound; engine and bare loop are traced alike, so they compare fairly. On the CPU (smoke
  mode) the same code reads CPU operator intervals instead of kernels, giving the share of the
  steps spent outside any aten operator (interpreter and framework overhead).
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.common import Row
from worker.engine import Callbacks, load_dataset, parse_spec, train
from worker.engine.train import STEPS_REGION

DEVICE_ENV = "EPOQUE_BENCH_DEVICE"
# Trace categories during which the device is busy (Chrome trace "cat").
BUSY = {"cuda": ("kernel", "gpu_memcpy", "gpu_memset"), "cpu": ("cpu_op",)}
# speed.auto off everywhere: each variant runs exactly as named (auto would time and choose).
# "cuda graph" captures the engine's step (graph.py); the bare loop stays eager float32 there,
# the baseline issue 19's target (≥ 2× the bare eager loop) is stated against.
VARIANTS: dict[str, dict] = {
    "float32": {"auto": False},
    "bfloat16": {"precision": "bfloat16", "auto": False},
    "compiled": {"compile": True, "auto": False},
    "cuda graph": {"cuda_graph": True, "auto": False},
}
LR = 0.01  # random labels: a small step keeps the weights (and the kernels' inputs) finite
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


@dataclass(frozen=True)
class Sizes:
    per_batch: int  # images in each of the 5 training files
    test: int
    channels: tuple[int, ...]
    m: int
    epochs: int
    repeats: int


FULL = Sizes(per_batch=10_000, test=10_000, channels=(32, 64, 128), m=256, epochs=6, repeats=3)
SMOKE = Sizes(per_batch=8, test=8, channels=(4, 8), m=8, epochs=2, repeats=1)


def write_cifar10(root: Path, per_batch: int, n_test: int, seed: int = 0) -> None:
    """Random uint8 images and labels as CIFAR-10's python pickles, under
    ``root/cifar-10-batches-py`` (the layout the engine's cifar10 dataset reads)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        batch = {
            "batch_label": name,
            "data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),  # rows: R, G, B
            "labels": rng.integers(0, 10, n).tolist(),
            "filenames": [f"{name}_{i}.png" for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=pickle.HIGHEST_PROTOCOL)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CLASSES, "num_cases_per_batch": per_batch,
                     "num_vis": 3 * 32 * 32}, f)


def host_wait_share(events: Iterable[dict], busy: Iterable[str],
                    region: str = STEPS_REGION) -> float:
    """1 − (time the device is busy inside ``region``) / (the region's length), from Chrome
    trace events: the union of the intervals of events whose category is in ``busy``, clipped
    to each occurrence of the region (a ``user_annotation``)."""
    busy = set(busy)
    windows, spans = [], []
    for e in events:
        if e.get("ph") != "X" or "dur" not in e:
            continue
        start, end = float(e["ts"]), float(e["ts"]) + float(e["dur"])
        if e.get("cat") == "user_annotation" and e.get("name") == region:
            windows.append((start, end))
        elif e.get("cat") in busy:
            spans.append((start, end))
    if not windows:
        raise RuntimeError(f"the trace has no {region!r} region")
    spans.sort()
    total = covered = 0.0
    for lo, hi in windows:
        total += hi - lo
        reach = lo  # the union is swept left to right; reach: how far it is counted
        for start, end in spans:
            start, end = max(start, reach), min(end, hi)
            if end > start:
                covered += end - start
                reach = end
    return 1.0 - covered / total if total > 0 else float("nan")


class EpochTrace:
    """torch.profiler over one chosen epoch, started and stopped from the epoch callbacks."""

    def __init__(self, device: torch.device) -> None:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self.device = device
        self.profile = torch.profiler.profile(activities=activities)
        self.events: list[dict] = []

    def start(self) -> None:
        self.profile.start()

    def stop(self) -> None:
        self.profile.stop()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "trace.json"
            self.profile.export_chrome_trace(str(path))
            self.events = json.loads(path.read_text())["traceEvents"]

    def share(self) -> float:
        return host_wait_share(self.events, BUSY[self.device.type])


def bare_cnn(channels: tuple[int, ...], n_classes: int = 10) -> nn.Sequential:
    """The engine's CNN written by hand: [3×3 conv ('same') → ReLU → 2×2 max-pool] per block,
    then a linear head."""
    layers: list[nn.Module] = []
    c_in, side = 3, 32
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c_in, side = c, side // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * side * side, n_classes))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_rates(X: torch.Tensor, y: torch.Tensor, sizes: Sizes, variant: str,
               trace: EpochTrace | None = None) -> list[float]:
    """What a careful person writes by hand on the device: data already there, slices of an
    on-device permutation, torch's SGD with foreach, autocast and torch.compile as the variant
    asks. Returns each epoch's examples/s; ``trace`` profiles the last epoch."""
    device, m = X.device, sizes.m
    torch.manual_seed(0)
    model = bare_cnn(sizes.channels).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, foreach=True)
    forward = torch.compile(model) if VARIANTS[variant].get("compile") else model
    bf16 = VARIANTS[variant].get("precision") == "bfloat16"
    n = len(y)
    n_batches = n // m
    rates = []
    for epoch in range(1, sizes.epochs + 1):
        if trace is not None and epoch == sizes.epochs:
            trace.start()
        _sync(device)
        t0 = time.perf_counter()
        with torch.profiler.record_function(STEPS_REGION):
            perm = torch.randperm(n, device=device)
            Xs, ys = X[perm], y[perm]
            for i in range(n_batches):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    logits = forward(Xs[i * m:(i + 1) * m])
                loss = F.cross_entropy(logits.float(), ys[i * m:(i + 1) * m])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            _sync(device)
        rates.append(n_batches * m / (time.perf_counter() - t0))
        if trace is not None and epoch == sizes.epochs:
            trace.stop()
    return rates


def engine_spec(sizes: Sizes, variant: str, epochs: int | None = None) -> dict:
    return {
        "data": {"dataset": "cifar10"},
        "model": {"arch": "cnn", "hidden": list(sizes.channels)},
        "optim": {"batch_size": sizes.m, "lr": LR},
        "training": {"max_epochs": epochs or sizes.epochs},
        "diagnostics": {"layer_stats": False, "boundary": "off"},
        "speed": VARIANTS[variant],
    }


def engine_rates(root: Path, device: torch.device, sizes: Sizes, variant: str,
                 trace: EpochTrace | None = None) -> tuple[list[float], float]:
    """The engine's examples/s per epoch and its first epoch's seconds (compilation shows
    there); ``trace`` profiles the last epoch, from its lr callback to its metrics."""
    last = sizes.epochs

    def lr(epoch: int, scheduled: float) -> None:
        if trace is not None and epoch == last:
            trace.start()

    def on_epoch(epoch: int, metrics: dict) -> None:
        if trace is not None and epoch == last:
            trace.stop()

    out = train(parse_spec(engine_spec(sizes, variant)), Callbacks(current_lr=lr,
                on_epoch=on_epoch), device=str(device), data_root=root)
    return [m["examples_per_second"] for m in out.metrics], out.metrics[0]["epoch_seconds"]


def requested_device(device: str | None = None) -> str:
    return (device or os.environ.get(DEVICE_ENV) or "cpu").strip()


def run(smoke: bool = False, device: str | None = None) -> list[Row]:
    requested = requested_device(device)
    if requested.startswith("cuda") and not torch.cuda.is_available():
        print("[bench] gpu: skipped: no CUDA device on this machine", file=sys.stderr, flush=True)
        return []
    if not requested.startswith("cuda") and not smoke:
        print("[bench] gpu: skipped: the device is the CPU (run `make bench DEVICE=cuda` on a "
              "machine with a GPU)", file=sys.stderr, flush=True)
        return []
    dev = torch.device(requested)
    if dev.type == "cpu":
        torch.set_num_threads(1)
    sizes = SMOKE if smoke else FULL
    where = "GPU" if dev.type == "cuda" else "CPU"
    what = (f"CNN {list(sizes.channels)} on CIFAR-10-shaped data, m={sizes.m}, {where}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_cifar10(root, sizes.per_batch, sizes.test)
        data = load_dataset(parse_spec(engine_spec(sizes, "float32")), root)
        X, y = data.X_train.to(dev), data.y_train.to(dev)
        engine: dict[str, float] = {}
        for variant in VARIANTS:
            bare_runs, engine_runs, first = [], [], []
            for _ in range(sizes.repeats):  # alternated, so drift hits both alike
                bare_runs.append(statistics.median(bare_rates(X, y, sizes, variant)[1:]))
                rates, seconds = engine_rates(root, dev, sizes, variant)
                engine_runs.append(statistics.median(rates[1:]))
                first.append(seconds)
            bare, ours = statistics.median(bare_runs), statistics.median(engine_runs)
            engine[variant] = ours
            note = (f"first epoch {statistics.median(first):.1f} s with compilation"
                    if variant == "compiled" else "")
            rows.append(Row(f"engine vs bare loop, {variant}: {what}", "bare loop", bare,
                            "Époque engine", ours, "examples/s", "informative", None, note=note))
            bare_trace, engine_trace = EpochTrace(dev), EpochTrace(dev)
            bare_rates(X, y, sizes, variant, trace=bare_trace)
            engine_rates(root, dev, sizes, variant, trace=engine_trace)
            wait = "host-wait share" if dev.type == "cuda" else "share outside aten ops"
            rows.append(Row(f"{wait} of the steps, {variant} (one traced epoch)", "bare loop",
                            bare_trace.share(), "Époque engine", engine_trace.share(),
                            "of the step", "informative", None))
    for variant in ("bfloat16", "compiled", "cuda graph"):
        speedup = engine[variant] / engine["float32"]
        rows.append(Row(f"engine, speed option {variant} vs float32 eager: {what}",
                        "float32 eager", engine["float32"], variant, engine[variant],
                        "examples/s", "informative", None, note=f"speed-up {speedup:.2f}×"))
    return rows
