"""spec.speed: torch.compile and bfloat16 autocast change how the network runs, not what is
trained. Correctness only; bench/gpu.py measures the speed.

Compiling costs seconds per network on the CPU (inductor builds C++ kernels, cached under
/tmp/torchinductor_<user> for later runs), so the compiled networks here are small and few.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from pydantic import ValidationError

from worker.engine import Callbacks, parse_spec, train
from worker.engine.spec import Spec, SpeedSpec
from worker.engine.train import TIMING_KEYS, CompileError

# The module (the package's ``train`` is the function), to patch what the loop looks up.
loop_module = importlib.import_module("worker.engine.loop")
speed_module = importlib.import_module("worker.engine.speed")

FIGURES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


def _strip(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


def _with_speed(spec_data: dict, **speed) -> dict:
    return {**spec_data, "speed": speed}


# --- torch.compile -------------------------------------------------------------------------


@pytest.mark.parametrize("spec_data", [
    # Dropout masks come from the run's own generator: the compiled network must draw the same.
    {"model": {"hidden": [32], "dropout": {"p_inc_hidden": 0.8}},
     "training": {"max_epochs": 3}},
    {"model": {"arch": "cnn", "hidden": [4, 8], "batchnorm": True},
     "training": {"max_epochs": 3}},
], ids=["mlp-dropout", "cnn-batchnorm"])
def test_compiled_run_equals_eager_run(spec_data: dict) -> None:
    eager = train(parse_spec(spec_data), device="cpu")
    compiled = train(parse_spec(_with_speed(spec_data, compile=True)), device="cpu")

    assert compiled.status == eager.status == "succeeded"
    assert len(compiled.metrics) == len(eager.metrics)
    for e, c in zip(eager.metrics, compiled.metrics, strict=True):
        for key in FIGURES:
            assert c[key] == pytest.approx(e[key], rel=1e-4, abs=1e-6), key
    assert compiled.result["test_loss"] == pytest.approx(eager.result["test_loss"], rel=1e-4)
    assert compiled.result["best_epoch"] == eager.result["best_epoch"]
    # The stored model is the plain network's: same keys (no "_orig_mod." prefix), same values.
    assert list(compiled.state_dict) == list(eager.state_dict)
    for key, value in eager.state_dict.items():
        torch.testing.assert_close(compiled.state_dict[key], value, rtol=1e-4, atol=1e-5)


def test_compile_failure_is_a_clear_error(monkeypatch) -> None:
    def broken_backend(graph, example_inputs):  # as inductor fails without a C++ compiler
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\n\ndetails …")

    monkeypatch.setattr(speed_module, "COMPILE_BACKEND", broken_backend)
    spec = parse_spec({"model": {"hidden": [3]}, "training": {"max_epochs": 1},
                       "speed": {"compile": True}})
    with pytest.raises(CompileError, match=r"^speed\.compile: .*No working C\+\+ compiler"
                                           r".*run with speed\.compile off$") as e:
        train(spec, device="cpu")
    assert "details" not in str(e.value)  # the first line only
    assert e.value.__cause__ is None and e.value.__suppress_context__  # no deep traceback


# --- bfloat16 --------------------------------------------------------------------------------


def _record_out_dtypes(monkeypatch) -> list[torch.dtype]:
    """dtypes of the output layer's activations in every forward pass of the next train()."""
    seen: list[torch.dtype] = []
    build = loop_module.build_network

    def build_and_watch(*args, **kwargs):
        model, report = build(*args, **kwargs)
        model.out.register_forward_hook(lambda mod, inputs, out: seen.append(out.dtype))
        return model, report

    monkeypatch.setattr(loop_module, "build_network", build_and_watch)
    return seen


def test_bfloat16_autocasts_forward_passes_and_learns_as_float32(monkeypatch) -> None:
    spec_data = {"model": {"hidden": [64]}, "training": {"max_epochs": 5}}
    full = train(parse_spec(spec_data), device="cpu")
    seen = _record_out_dtypes(monkeypatch)
    steps: list[float] = []
    half = train(parse_spec(_with_speed(spec_data, precision="bfloat16")),
                 Callbacks(on_step=lambda step, m: steps.append(m["step_loss"])), device="cpu")

    # Every forward pass (training steps, validation, test) ran its layers in bfloat16 …
    assert seen and set(seen) == {torch.bfloat16}
    # … while parameters (so the optimiser and the stored model) stay float32.
    assert {v.dtype for v in half.state_dict.values()} == {torch.float32}
    assert half.status == "succeeded"
    assert half.result["test_accuracy"] == pytest.approx(full.result["test_accuracy"], abs=0.05)
    assert half.metrics[-1]["val_accuracy"] == pytest.approx(
        full.metrics[-1]["val_accuracy"], abs=0.05)
    # Close to float32 but not the same computation.
    assert half.metrics[0]["train_loss"] != full.metrics[0]["train_loss"]
    assert half.metrics[0]["train_loss"] == pytest.approx(full.metrics[0]["train_loss"], rel=0.02)


def test_bfloat16_forward_is_torch_autocast_and_hands_back_float32() -> None:
    from worker.engine.models import build_network
    from worker.engine.train import apply_speed

    spec = parse_spec({"model": {"arch": "cnn", "hidden": [4, 8]},
                       "speed": {"precision": "bfloat16"}})
    model, _ = build_network(spec, (1, 8, 8), 10, [0])
    plain, _ = build_network(spec, (1, 8, 8), 10, [0])
    apply_speed(model, spec.speed, torch.device("cpu"))
    x = torch.rand(6, 1, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = plain(x)
    assert expected.dtype == torch.bfloat16
    logits = model(x)
    assert logits.dtype == torch.float32
    assert torch.equal(logits, expected.float())
    logits2, acts = model.forward_with_activations(x)
    assert torch.equal(logits2, logits) and acts["conv1"].dtype == torch.bfloat16
    assert list(model.state_dict()) == list(plain.state_dict())


def test_bfloat16_ensemble_with_dropout_runs_and_resumes_exactly() -> None:
    spec = parse_spec({
        "model": {"arch": "cnn", "hidden": [4, 8], "batchnorm": True,
                  "dropout": {"p_inc_hidden": 0.5, "inference": "mc", "mc_samples": 3}},
        "ensemble": {"members": 2}, "training": {"max_epochs": 3},
        "speed": {"precision": "bfloat16"},
    })
    saved: dict = {}

    def keep(epoch: int, snapshot) -> None:
        if epoch == 1:
            saved["snapshot"] = snapshot()

    straight = train(spec, Callbacks(on_checkpoint=keep), device="cpu")
    assert straight.status == "succeeded" and straight.result["dropout"]["inference"] == "mc"
    resumed = train(spec, resume=saved["snapshot"], device="cpu")
    assert _strip(resumed.metrics) == _strip(straight.metrics[1:])
    assert resumed.result == straight.result


# --- the spec --------------------------------------------------------------------------------


def test_speed_defaults_leave_runs_as_they_were() -> None:
    spec = parse_spec({})
    assert spec.speed == SpeedSpec(precision="float32", compile=False)
    # auto (the GPU's choice) and cuda_graph (GPU only) leave a CPU run as it was.
    assert spec.model_dump()["speed"] == {"precision": "float32", "compile": False,
                                          "auto": True, "cuda_graph": False}
    schema = Spec.model_json_schema()
    assert schema["properties"]["speed"]["description"]
    for name, prop in schema["$defs"]["SpeedSpec"]["properties"].items():
        assert prop["description"], name


@pytest.mark.parametrize("speed, field", [
    ({"precision": "float16"}, "precision"),
    ({"precision": "bf16"}, "precision"),
    ({"compile": "maybe"}, "compile"),
    ({"compile": 2}, "compile"),
    ({"mode": "max-autotune"}, "mode"),
])
def test_bad_speed_values_are_refused_naming_the_field(speed: dict, field: str) -> None:
    with pytest.raises(ValidationError) as e:
        parse_spec({"speed": speed})
    assert [err["loc"] for err in e.value.errors()] == [("speed", field)]
