"""A run resumed from an epoch's snapshot goes on exactly as if it had never stopped."""

from __future__ import annotations

import pytest
import torch

from worker.engine import Callbacks, parse_spec, train
from worker.engine.train import TIMING_KEYS


class Crash(Exception):
    pass


def _strip(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


@pytest.mark.parametrize("spec_data", [
    {"model": {"hidden": [32]}, "training": {"max_epochs": 6}},
    {"model": {"hidden": [32, 32], "dropout": {"p_inc_hidden": 0.5}},
     "augment": [{"op": "random_rotation", "degrees": 10}], "optim": {"method": "adam", "lr": 0.01},
     "training": {"max_epochs": 6, "early_stopping": {"patience": 4}},
     "diagnostics": {"grad_noise": True}},
    {"model": {"hidden": [16]}, "ensemble": {"members": 3}, "training": {"max_epochs": 6}},
    {"model": {"hidden": [8]}, "optim": {"lr": 0.8}, "ensemble": {"members": 3},
     "training": {"max_epochs": 12, "early_stopping": {"patience": 4}}},
    {"model": {"hidden": [16]}, "training": {"max_epochs": 6},
     "optim": {"sampling": "with_replacement",
               "schedule": {"kind": "inv_sqrt", "per": "step"}}},
])
def test_resume_equals_uninterrupted(spec_data: dict) -> None:
    spec = parse_spec(spec_data)
    straight = train(spec, device="cpu")

    saved: dict = {}

    def keep(epoch: int, snapshot) -> None:
        if epoch == 3:
            saved["snapshot"] = snapshot()

    def crash_at_4(epoch: int, metrics: dict) -> None:
        if epoch == 4:
            raise Crash

    with pytest.raises(Crash):
        train(spec, Callbacks(on_epoch=crash_at_4, on_checkpoint=keep), device="cpu")
    resumed_epochs: list[int] = []
    resumed = train(spec, Callbacks(on_epoch=lambda e, m: resumed_epochs.append(e)),
                    resume=saved["snapshot"], device="cpu")

    assert resumed_epochs[0] == 4
    assert _strip(resumed.metrics) == _strip(straight.metrics[3:])
    assert resumed.result == straight.result
    for key, value in straight.state_dict.items():
        assert torch.equal(resumed.state_dict[key], value), key


def test_resume_after_the_stopping_epoch_trains_nothing_more() -> None:
    spec = parse_spec({"model": {"hidden": [16]}, "optim": {"lr": 5.0},
                       "training": {"max_epochs": 50, "early_stopping": {"patience": 1}}})
    snapshots = []
    straight = train(spec, Callbacks(on_checkpoint=lambda e, snap: snapshots.append(snap())),
                     device="cpu")
    last = snapshots[-1]
    assert last["epoch"] == straight.result["stopped_epoch"] < 50
    again = train(spec, resume=last, device="cpu")
    assert again.metrics == [] and again.result["stopped_epoch"] == last["epoch"]
    assert again.result["test_accuracy"] == straight.result["test_accuracy"]


def test_a_snapshot_from_a_gpu_resumes_on_the_cpu() -> None:
    """A run checkpointed on a GPU worker and taken over by a CPU one: the CUDA dropout
    generator's 16-byte state cannot be restored into a CPU generator (torch raises), so the
    run goes on with fresh masks instead of failing."""
    spec = parse_spec({"model": {"hidden": [16], "dropout": {"p_inc_hidden": 0.5}},
                       "training": {"max_epochs": 4}})
    snapshots = []
    train(spec, Callbacks(on_checkpoint=lambda e, snap: snapshots.append(snap())), device="cpu")
    from_gpu = {**snapshots[1], "dropout_device": "cuda",
                "dropout_gen": torch.zeros(16, dtype=torch.uint8)}  # a CUDA generator's state
    with pytest.raises(RuntimeError):
        torch.Generator().set_state(from_gpu["dropout_gen"])
    resumed = train(spec, resume=from_gpu, device="cpu")
    assert len(resumed.metrics) == 2 and resumed.status == "succeeded"  # epochs 3 and 4


def test_a_checkpoint_in_the_format_before_snapshot_still_resumes() -> None:
    """Before loop.Snapshot, a checkpoint's ``stopper`` was EarlyStopping's attributes."""
    spec = parse_spec({"model": {"hidden": [16]},
                       "training": {"max_epochs": 5, "early_stopping": {"patience": 3}}})
    snapshots = []
    straight = train(spec, Callbacks(on_checkpoint=lambda e, snap: snapshots.append(snap())))
    old = dict(snapshots[1])
    (stopper,) = old.pop("stoppers")
    old["stopper"] = {"patience": 3, "higher_is_better": True, **stopper}
    resumed = train(spec, resume=old)
    assert _strip(resumed.metrics) == _strip(straight.metrics[2:])
    assert resumed.result == straight.result
