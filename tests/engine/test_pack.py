"""A pack trains runs that differ only in seed as one stacked network: each member must be its
run trained alone — figures, early stopping, z*, result, boundary, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch

from worker.engine import Callbacks, parse_spec, train
from worker.engine.pack import PackTooLarge, pack_key, pack_reason, train_pack
from worker.engine.train import TIMING_KEYS


def _specs(data: dict, seeds: list[int]):
    return [parse_spec({**data, "seed": s, "name": f"seed {s}"}) for s in seeds]


def _close(a: dict, b: dict, where: str, rel: float = 2e-4, abs_: float = 2e-5) -> None:
    assert a.keys() == b.keys(), where
    for key, x in a.items():
        y = b[key]
        if key in TIMING_KEYS:
            continue
        if isinstance(x, dict) and isinstance(y, dict):  # result.best, result.final
            _close(x, y, f"{where} {key}", rel, abs_)
        elif isinstance(x, float) and isinstance(y, float):
            assert math.isclose(x, y, rel_tol=rel, abs_tol=abs_), (where, key, x, y)
        else:
            assert x == y, (where, key, x, y)


def _same_as_alone(specs, outcomes, alone_callbacks=None) -> None:
    for k, (spec, packed) in enumerate(zip(specs, outcomes, strict=True)):
        alone = train(spec, alone_callbacks[k] if alone_callbacks else None, device="cpu")
        assert packed.status == alone.status, k
        assert len(packed.metrics) == len(alone.metrics), k
        for epoch, (p, a) in enumerate(zip(packed.metrics, alone.metrics, strict=True), start=1):
            _close(p, a, f"member {k} epoch {epoch}")
        _close(packed.result, alone.result, f"member {k} result")
        for name, value in alone.state_dict.items():
            assert torch.allclose(packed.state_dict[name], value, rtol=1e-3, atol=1e-5), name


def test_each_member_is_its_run_alone_mlp_with_diagnostics() -> None:
    data = {"model": {"hidden": [32, 16]}, "training": {"max_epochs": 4, "log_every_steps": 7},
            "diagnostics": {"layer_stats": True, "grad_noise": True}}
    specs = _specs(data, [3, 11, 12])
    steps: list[list] = [[] for _ in specs]
    callbacks = [Callbacks(on_step=lambda s, m, k=k: steps[k].append((s, m["step_loss"])))
                 for k in range(len(specs))]
    outcomes = train_pack(specs, callbacks, device="cpu")
    # The members really differ (own init, data split and order), and each is its run.
    assert len({o.result["test_accuracy"] for o in outcomes}) > 1
    assert {"act_std/fc1", "grad_std/out", "weight_norm"} <= outcomes[0].metrics[0].keys()
    assert any(key.startswith("grad_var") for key in outcomes[0].metrics[0])
    alone_steps: list[list] = [[] for _ in specs]
    _same_as_alone(specs, outcomes, [
        Callbacks(on_step=lambda s, m, k=k: alone_steps[k].append((s, m["step_loss"])))
        for k in range(len(specs))])
    for packed, alone in zip(steps, alone_steps, strict=True):
        assert [s for s, _ in packed] == [s for s, _ in alone]
        assert all(math.isclose(a, b, rel_tol=1e-4) for (_, a), (_, b) in zip(packed, alone, strict=True))


def test_members_stop_on_their_own_and_draw_their_own_boundary() -> None:
    # moons: each seed generates its own points; patience 2 stops members at different epochs.
    data = {"data": {"dataset": "moons"}, "model": {"hidden": [8]},
            "optim": {"lr": 0.05, "momentum": 0.0},
            "training": {"max_epochs": 30, "early_stopping": {"patience": 2}}}
    specs = _specs(data, [0, 1, 2, 5])
    grids: list[list] = [[] for _ in specs]
    last_epoch = [0] * len(specs)
    done: dict[int, tuple] = {}

    def on_epoch(k: int, epoch: int) -> None:
        last_epoch[k] = epoch

    outcomes = train_pack(
        specs, [Callbacks(on_epoch=lambda e, m, k=k: on_epoch(k, e),
                          on_boundary=lambda e, g, k=k: grids[k].append((e, g)))
                for k in range(len(specs))],
        # Each member's outcome comes as soon as it stops, while the others train on.
        on_member_done=lambda k, outcome: done.setdefault(k, (max(last_epoch), outcome)),
        device="cpu")
    stops = [o.result["stopped_epoch"] for o in outcomes]
    assert len(set(stops)) > 1, stops  # otherwise this test would not test per-member stopping
    for k, outcome in enumerate(outcomes):
        assert done[k] == (stops[k], outcome)
    _same_as_alone(specs, outcomes)
    for spec, packed in zip(specs, grids, strict=True):
        alone: list = []
        train(spec, Callbacks(on_boundary=lambda e, g, alone=alone: alone.append((e, g))),
              device="cpu")
        assert [e for e, _ in packed] == [e for e, _ in alone]
        assert packed[-1][1]["points"] == alone[-1][1]["points"]
        p, a = torch.tensor(packed[-1][1]["probs"]), torch.tensor(alone[-1][1]["probs"])
        assert torch.allclose(p, a, atol=1e-4)


def test_cnn_with_batchnorm_and_adam() -> None:
    data = {"data": {"dataset": "mnist1d"}, "model": {"arch": "cnn", "hidden": [4, 4],
            "batchnorm": True}, "optim": {"method": "adam", "lr": 0.003, "batch_size": 64},
            "training": {"max_epochs": 2}}
    specs = _specs(data, [0, 7])
    _same_as_alone(specs, train_pack(specs, device="cpu"))


def test_sampling_with_replacement_and_a_per_step_schedule_packed() -> None:
    data = {"model": {"hidden": [16]},
            "optim": {"sampling": "with_replacement", "momentum": 0.5,
                      "schedule": {"kind": "inv_sqrt", "per": "step"}},
            "training": {"max_epochs": 3, "keep": "last"}}
    specs = _specs(data, [1, 2])
    _same_as_alone(specs, train_pack(specs))


def test_a_member_checkpoint_resumes_as_the_run_alone() -> None:
    data = {"model": {"hidden": [16]}, "optim": {"weight_decay": 0.001},
            "training": {"max_epochs": 5}}
    specs = _specs(data, [4, 9])
    saved: dict = {}

    def keep(epoch: int, snapshot) -> None:
        if epoch == 2:
            saved["snapshot"] = snapshot()

    train_pack(specs, [Callbacks(), Callbacks(on_checkpoint=keep)], device="cpu")
    resumed = train(specs[1], resume=saved["snapshot"], device="cpu")
    straight = train(specs[1], device="cpu")
    for p, a in zip(resumed.metrics, straight.metrics[2:], strict=True):
        _close(p, a, "resumed")
    _close(resumed.result, straight.result, "resumed result")


def test_cancelling_one_member_leaves_the_others_training() -> None:
    specs = _specs({"model": {"hidden": [16]}, "training": {"max_epochs": 5}}, [0, 1, 2])
    seen: list[list[int]] = [[] for _ in specs]
    callbacks = [Callbacks(on_epoch=lambda e, m, k=k: seen[k].append(e),
                           should_stop=(lambda k=k: k == 1 and len(seen[1]) >= 2))
                 for k in range(len(specs))]
    outcomes = train_pack(specs, callbacks, device="cpu")
    assert [o.status for o in outcomes] == ["succeeded", "cancelled", "succeeded"]
    assert seen == [[1, 2, 3, 4, 5], [1, 2], [1, 2, 3, 4, 5]]
    assert outcomes[1].result["stopped_epoch"] == 2
    assert outcomes[1].result["test_accuracy"] is not None


def test_what_cannot_be_packed_is_refused_with_the_reason() -> None:
    base = parse_spec({})
    assert pack_reason(base) is None
    # Dropout and augmentation pack: each member draws from its own streams (tests below).
    assert pack_reason(parse_spec({"model": {"dropout": {"p_inc_hidden": 0.5}}})) is None
    assert pack_reason(parse_spec({"augment": [{"op": "random_rotation", "degrees": 10}]})) is None
    assert "ensemble" in pack_reason(parse_spec({"ensemble": {"members": 2}}))
    assert "full-pass" in pack_reason(parse_spec({"model": {"batchnorm": True,
                                                            "batchnorm_eval": "full_pass"}}))
    assert pack_key(parse_spec({"seed": 1, "name": "a"})) == pack_key(parse_spec({"seed": 2}))
    assert pack_key(parse_spec({"optim": {"lr": 0.2}})) != pack_key(base)
    with pytest.raises(ValueError, match="differ only in seed"):
        train_pack([base, parse_spec({"optim": {"lr": 0.2}})], device="cpu")
    with pytest.raises(ValueError, match="ensemble"):
        train_pack(_specs({"ensemble": {"members": 2}}, [0, 1]), device="cpu")


def test_a_pack_too_large_for_memory_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("worker.engine.pack.PACK_MEMORY_BYTES", 100_000)
    with pytest.raises(PackTooLarge, match="exceed"):
        train_pack(_specs({"training": {"max_epochs": 1}}, [0, 1]), device="cpu")


def test_the_pack_memory_budget_is_a_quarter_of_a_gpu() -> None:
    from worker.engine.pack import PACK_MEMORY_BYTES, pack_memory_budget

    assert pack_memory_budget("cpu") == PACK_MEMORY_BYTES
    assert pack_memory_budget("cuda", total_bytes=140 << 30) == 35 << 30  # an H200
    assert pack_memory_budget("cuda:1", total_bytes=2 << 30) == PACK_MEMORY_BYTES  # at least
