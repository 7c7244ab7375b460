"""The captured training step (graph.py). On the CPU ``speed.cuda_graph`` falls back to the
eager step, saying why; the captured step's own logic (static buffers, in-graph accumulators,
η from a device tensor) runs on the CPU through EagerReplay and must train as the eager step
does, to float round-off. The capture itself is tested on a GPU (test_cuda.py)."""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from worker.engine import Callbacks, parse_spec, train
from worker.engine.graph import WARMUP_STEPS, EagerReplay, graph_reason
from worker.engine.pack import train_pack
from worker.engine.train import TIMING_KEYS

loop_module = importlib.import_module("worker.engine.loop")
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _strip(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


def test_on_the_cpu_the_step_is_not_captured_and_runs_exactly_as_eager() -> None:
    data = {"model": {"hidden": [16]}, "training": {"max_epochs": 2}}
    asked = train(parse_spec({**data, "speed": {"cuda_graph": True}}), device="cpu")
    eager = train(parse_spec(data), device="cpu")
    speed = asked.result["speed"]
    assert speed["cuda_graph"] is False
    assert speed["cuda_graph_off"] == "CUDA graphs need a GPU: the step runs eagerly on the CPU"
    assert _strip(asked.metrics) == _strip(eager.metrics)
    for name, value in eager.state_dict.items():
        assert torch.equal(asked.state_dict[name], value), name


@pytest.mark.parametrize("spec_data, reason", [
    ({}, None),
    ({"model": {"batchnorm": True}, "optim": {"weight_decay": 0.01}}, None),
    ({"optim": {"method": "adam"}}, "Adam keeps its step count on the host"),
    ({"data": {"dataset": "shapes"}, "augment": [{"op": "random_horizontal_flip"}]},
     "augmentation draws its parameters on the host every step"),
    ({"model": {"dropout": {"p_inc_input": 0.8}}},
     "dropout masks come from the run's own generators"),
    ({"speed": {"compile": True}}, "a compiled network is not captured as well"),
])
def test_what_a_graph_captures_on_a_gpu(spec_data: dict, reason: str | None) -> None:
    assert graph_reason(parse_spec(spec_data), CUDA) == reason
    assert "need a GPU" in graph_reason(parse_spec(spec_data), CPU)


@pytest.fixture
def replayed(monkeypatch: pytest.MonkeyPatch) -> list[EagerReplay]:
    """Runs take the captured-step path on the CPU, replayed by EagerReplay."""
    made: list[EagerReplay] = []
    real = loop_module.GraphStep

    def graph_step(*args, **kwargs):
        replay = EagerReplay()
        made.append(replay)
        return real(*args, replay=replay, **kwargs)

    monkeypatch.setattr(loop_module, "uses_graph", lambda spec, dev, chosen: (True, None))
    monkeypatch.setattr(loop_module, "GraphStep", graph_step)
    return made


def _close_runs(a, b, rel: float = 1e-4, abs_: float = 1e-6) -> None:
    assert len(a.metrics) == len(b.metrics)
    for x, y in zip(_strip(a.metrics), _strip(b.metrics), strict=True):
        assert x.keys() == y.keys()
        for key, value in x.items():
            assert math.isclose(value, y[key], rel_tol=rel, abs_tol=abs_), (key, value, y[key])
    for name, value in b.state_dict.items():
        assert torch.allclose(a.state_dict[name], value, rtol=1e-4, atol=1e-5), name


@pytest.mark.parametrize("spec_data", [
    {"model": {"hidden": [32, 16]}, "optim": {"weight_decay": 0.001},
     "training": {"max_epochs": 3, "log_every_steps": 5},
     "diagnostics": {"layer_stats": True, "grad_noise": True}},
    {"model": {"hidden": [16], "batchnorm": True},
     "optim": {"momentum": 0.0, "schedule": {"kind": "inv_sqrt", "per": "step"}},
     "training": {"max_epochs": 2}},
    {"data": {"dataset": "mnist1d"}, "model": {"arch": "cnn", "hidden": [4]},
     "optim": {"batch_size": 64}, "training": {"max_epochs": 2}},
    {"model": {"hidden": [16]}, "ensemble": {"members": 3}, "training": {"max_epochs": 2}},
], ids=["mlp-diagnostics", "batchnorm-step-schedule", "cnn", "ensemble"])
def test_the_captured_step_trains_as_the_eager_one(spec_data: dict,
                                                   replayed: list[EagerReplay]) -> None:
    steps: list[tuple[int, float]] = []
    graphed = train(parse_spec(spec_data), Callbacks(
        on_step=lambda s, m: steps.append((s, m["step_loss"]))), device="cpu")
    # One capture for the run; every step after the warm-up is a replay.
    assert len(replayed) == 1 and replayed[0].replays > 0
    replays = replayed[0].replays
    replayed.clear()
    eager_steps: list[tuple[int, float]] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop_module, "uses_graph", lambda spec, dev, chosen: (False, None))
        eager = train(parse_spec(spec_data), Callbacks(
            on_step=lambda s, m: eager_steps.append((s, m["step_loss"]))), device="cpu")
    _close_runs(graphed, eager)
    n_b = len(loop_module.Stack([parse_spec(spec_data)], [0], CPU, None, False).y_train) // (
        parse_spec(spec_data).optim.batch_size)
    assert replays + WARMUP_STEPS == len(eager.metrics) * n_b
    assert [s for s, _ in steps] == [s for s, _ in eager_steps]
    assert all(math.isclose(a, b, rel_tol=1e-4) for (_, a), (_, b) in zip(steps, eager_steps))


def test_a_captured_pack_trains_as_its_runs(replayed: list[EagerReplay]) -> None:
    specs = [parse_spec({"model": {"hidden": [16]}, "training": {"max_epochs": 2}, "seed": s})
             for s in (1, 2)]
    packed = train_pack(specs, device="cpu")
    assert replayed and replayed[0].replays > 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop_module, "uses_graph", lambda spec, dev, chosen: (False, None))
        for spec, outcome in zip(specs, packed, strict=True):
            _close_runs(outcome, train(spec, device="cpu"), rel=2e-4, abs_=2e-5)


class _RefusingReplay(EagerReplay):
    def capture(self, body) -> None:
        raise RuntimeError("operation not permitted when stream is capturing\nmore")


def test_a_capture_that_fails_leaves_the_run_eager_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = loop_module.GraphStep
    monkeypatch.setattr(loop_module, "uses_graph", lambda spec, dev, chosen: (True, None))
    monkeypatch.setattr(loop_module, "GraphStep",
                        lambda *a, **k: real(*a, replay=_RefusingReplay(), **k))
    spec_data = {"model": {"hidden": [16]}, "training": {"max_epochs": 2},
                 "speed": {"cuda_graph": True}}
    out = train(parse_spec(spec_data), device="cpu")
    assert out.status == "succeeded"
    assert out.result["speed"]["cuda_graph"] is False
    assert out.result["speed"]["cuda_graph_off"] == (
        "the capture failed (RuntimeError: operation not permitted when stream is capturing): "
        "the step ran eagerly")
    monkeypatch.setattr(loop_module, "uses_graph", lambda spec, dev, chosen: (False, None))
    _close_runs(out, train(parse_spec(spec_data), device="cpu"))
