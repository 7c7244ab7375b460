"""The engine on a CUDA GPU: the same training as on the CPU (up to float round-off), runs that
move between devices through a checkpoint, bfloat16. `make test-gpu` runs these (pytest -m
cuda); `make test` leaves them out. On a machine without CUDA they fail, saying so."""

from __future__ import annotations

import math

import pytest
import torch

from worker.engine import Callbacks, parse_spec, train
from worker.engine.pack import train_pack

pytestmark = pytest.mark.cuda

FIGURES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
SPEC = {"model": {"hidden": [64, 64]}, "training": {"max_epochs": 4}, "seed": 5}
# Float round-off differs between devices (other kernels, other summation orders) and SGD
# amplifies it a little each epoch: a few epochs of this small net stay within these.
REL = 1e-3
ACC = 0.01


@pytest.fixture(autouse=True)
def cuda() -> None:
    if not torch.cuda.is_available():
        pytest.fail("no CUDA device here (torch.cuda.is_available() is False): the CUDA tests "
                    "run on a GPU machine with `make test-gpu`")


def _close(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for epoch, (x, y) in enumerate(zip(a, b, strict=True), start=1):
        for key in ("train_loss", "val_loss"):
            assert math.isclose(x[key], y[key], rel_tol=REL), (epoch, key, x[key], y[key])
        for key in ("train_accuracy", "val_accuracy"):
            assert abs(x[key] - y[key]) <= ACC, (epoch, key, x[key], y[key])


def test_training_on_cuda_equals_the_cpu_within_round_off() -> None:
    spec = parse_spec(SPEC)
    cpu = train(spec, device="cpu")
    gpu = train(spec, device="cuda")
    assert gpu.status == cpu.status == "succeeded"
    _close(gpu.metrics, cpu.metrics)
    assert gpu.result["test_accuracy"] == pytest.approx(cpu.result["test_accuracy"], abs=ACC)
    # The stored model is on the CPU whatever the device trained it.
    assert all(t.device.type == "cpu" for t in gpu.state_dict.values())


def test_a_pack_on_cuda_equals_its_runs_on_the_cpu() -> None:
    specs = [parse_spec({**SPEC, "seed": s}) for s in (1, 2)]
    packed = train_pack(specs, device="cuda")
    for spec, outcome in zip(specs, packed, strict=True):
        _close(outcome.metrics, train(spec, device="cpu").metrics)


@pytest.mark.parametrize("first, then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_run_resumes_on_the_other_device(first: str, then: str) -> None:
    """A checkpoint taken on one device goes on on the other (a worker of the other kind takes
    the run over) and ends as the run trained straight through, within round-off."""
    spec = parse_spec(SPEC)
    snapshots: list[dict] = []
    straight = train(spec, Callbacks(on_checkpoint=lambda e, snap: snapshots.append(snap())),
                     device=first)
    resumed = train(spec, resume=snapshots[1], device=then)
    assert resumed.status == "succeeded"
    assert len(resumed.metrics) == len(straight.metrics) - 2  # epochs 3 and 4
    _close(resumed.metrics, straight.metrics[2:])
    assert resumed.result["test_accuracy"] == pytest.approx(
        straight.result["test_accuracy"], abs=ACC)


def test_bfloat16_on_cuda_learns_as_float32() -> None:
    spec_data = {"model": {"hidden": [64]}, "training": {"max_epochs": 5}}
    full = train(parse_spec(spec_data), device="cuda")
    half = train(parse_spec({**spec_data, "speed": {"precision": "bfloat16"}}), device="cuda")
    assert half.status == "succeeded"
    assert {v.dtype for v in half.state_dict.values()} == {torch.float32}
    assert half.metrics[0]["train_loss"] != full.metrics[0]["train_loss"]  # not the same sums
    assert half.metrics[0]["train_loss"] == pytest.approx(full.metrics[0]["train_loss"], rel=0.02)
    assert half.result["test_accuracy"] == pytest.approx(full.result["test_accuracy"], abs=0.05)
