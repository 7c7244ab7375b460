"""Figures recorded from the engine before its loop was rewritten as one loop over K members
(issue 13): the same spec and seed must still give the same run. Recorded on the CPU with one
thread; a change of the step's arithmetic may move them by float round-off only (≤ 1e-5), and
the accuracies, counts of correct examples, must not move at all."""

from __future__ import annotations

import pytest

from worker.engine import parse_spec, train

SPECS = {
  "mlp": {"device": "cpu", "seed": 3, "model": {"hidden": [32]}, "training": {"max_epochs": 3}},
  "ensemble": {"device": "cpu", "seed": 5, "model": {"hidden": [16]}, "ensemble": {"members": 3},
               "training": {"max_epochs": 3}},
  "bn_cnn": {"device": "cpu", "seed": 7, "model": {"arch": "cnn", "hidden": [4, 8], "batchnorm": True},
             "optim": {"lr": 0.05}, "training": {"max_epochs": 2}},
}

# Recorded with the previous loop (commit 0b1703a), device cpu, torch.set_num_threads(1).
REFERENCE = {
    "mlp": {
        "metrics": [
            {
                "train_loss": 1.5428789854049683,
                "train_accuracy": 0.4982142746448517,
                "val_loss": 0.5159509181976318,
                "val_accuracy": 0.8333333134651184,
                "weight_norm": 8.350428581237793
            },
            {
                "train_loss": 0.3092251121997833,
                "train_accuracy": 0.8991071581840515,
                "val_loss": 0.26290249824523926,
                "val_accuracy": 0.9236111044883728,
                "weight_norm": 11.357467651367188
            },
            {
                "train_loss": 0.18195466697216034,
                "train_accuracy": 0.9437500238418579,
                "val_loss": 0.21702095866203308,
                "val_accuracy": 0.9375,
                "weight_norm": 12.295835494995117
            }
        ],
        "best_epoch": 3,
        "test_loss": 0.21519453823566437,
        "test_accuracy": 0.9305555820465088
    },
    "ensemble": {
        "metrics": [
            {
                "train_loss": 1.8437159061431885,
                "train_accuracy": 0.40119048953056335,
                "val_loss": 0.8746692538261414,
                "val_accuracy": 0.7916666865348816,
                "weight_norm": 6.641767978668213
            },
            {
                "train_loss": 0.531801700592041,
                "train_accuracy": 0.8383928537368774,
                "val_loss": 0.3501339256763458,
                "val_accuracy": 0.90625,
                "weight_norm": 10.79760456085205
            },
            {
                "train_loss": 0.2562282979488373,
                "train_accuracy": 0.9142857193946838,
                "val_loss": 0.2383454591035843,
                "val_accuracy": 0.9340277910232544,
                "weight_norm": 12.12514591217041
            }
        ],
        "best_epoch": 3,
        "test_loss": 0.1824461817741394,
        "test_accuracy": 0.949999988079071
    },
    "bn_cnn": {
        "metrics": [
            {
                "train_loss": 1.2574210166931152,
                "train_accuracy": 0.625,
                "val_loss": 0.7176138758659363,
                "val_accuracy": 0.7534722089767456,
                "weight_norm": 6.147822856903076
            },
            {
                "train_loss": 0.369980126619339,
                "train_accuracy": 0.8785714507102966,
                "val_loss": 0.3283289670944214,
                "val_accuracy": 0.8680555820465088,
                "weight_norm": 7.962072372436523
            }
        ],
        "best_epoch": 2,
        "test_loss": 0.4158496856689453,
        "test_accuracy": 0.8500000238418579
    }
}

KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "weight_norm")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_run_gives_the_recorded_figures(name: str) -> None:
    ref = REFERENCE[name]
    outcome = train(parse_spec(SPECS[name]))
    assert len(outcome.metrics) == len(ref["metrics"])
    for got, want in zip(outcome.metrics, ref["metrics"]):
        for key in KEYS:
            assert got[key] == pytest.approx(want[key], abs=1e-5, rel=1e-5), key
        assert got["train_accuracy"] == pytest.approx(want["train_accuracy"], abs=1e-7)
        assert got["val_accuracy"] == pytest.approx(want["val_accuracy"], abs=1e-7)
    best = outcome.result.get("best", outcome.result)
    assert outcome.result["best_epoch"] == ref["best_epoch"]
    assert best["test_accuracy"] == pytest.approx(ref["test_accuracy"], abs=1e-7)
    assert best["test_loss"] == pytest.approx(ref["test_loss"], abs=1e-5)
