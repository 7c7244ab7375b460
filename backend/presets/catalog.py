"""One-click experiments: at least one study per lesson of COURSE.md, each a minute on a CPU.

Each preset is data (a base spec and a grid), so the API, the lab's lesson cards and the docs
all launch exactly the same thing.
"""

from __future__ import annotations

from typing import Any

PRESETS: list[dict[str, Any]] = [
    {
        "id": "sgd-momentum",
        "lesson": 1,
        "title": "Plain SGD vs momentum",
        "description": "The slide's SGD: each step one example i drawn from 1..n, η/√t with t "
                       "the step, with and without momentum α. The curve of plain SGD is noisy "
                       "and slow; momentum smooths and speeds it up (see the minibatch-loss chart).",
        "formula": "v ← α v − (η/√t) ∇F_i(z) ;  z ← z + v",
        "study": {
            "base": {"data": {"dataset": "digits"}, "model": {"hidden": [64]},
                     "optim": {"lr": 0.1, "batch_size": 1, "sampling": "with_replacement",
                               "schedule": {"kind": "inv_sqrt", "per": "step"}},
                     # The step loss (one example's loss, every 10th step) is the noisy curve.
                     "training": {"max_epochs": 15, "log_every_steps": 10}},
            "grid": {"optim.momentum": [0.0, 0.9]},
        },
    },
    {
        "id": "minibatch-size",
        "lesson": 2,
        "title": "Minibatch size m = 1, 32, 512",
        "description": "The same network trained with three minibatch sizes. The gradient's "
                       "variance falls like 1/m; large m is faster per example but changes the "
                       "solution reached.",
        "formula": "g ← (1/m) Σₖ ∇Fₖ(z),  Var[g] ∝ 1/m",
        "study": {
            "base": {"data": {"dataset": "digits"}, "model": {"hidden": [128]},
                     "optim": {"lr": 0.02}, "training": {"max_epochs": 20},
                     "diagnostics": {"grad_noise": True}},
            "grid": {"optim.batch_size": [1, 32, 512]},
        },
    },
    {
        "id": "early-stopping",
        "lesson": 3,
        "title": "Early stopping with patience p",
        "description": "Patience replaces the number of epochs: the returned model z* is the "
                       "best one on the validation set, not the last one.",
        "formula": "if Acc(z, S_v) > Acc(z*, S_v): z* ← z; T ← t + p",
        "study": {
            "base": {"data": {"dataset": "mnist1d"}, "model": {"hidden": [128, 128]},
                     "optim": {"lr": 0.05}, "training": {"max_epochs": 300}},
            "grid": {"training.early_stopping.patience": [5, 20, 50]},
        },
    },
    {
        "id": "step-schedule",
        "lesson": 4,
        "title": "Step schedule: 1, 2, 3 and 4 stages",
        "description": "The slide's schedule at a fifth of its length: 40 epochs, η from 0.1 "
                       "divided by 10 at epochs 15, 25 and 35 (the slide's 75, 125, 175 of 200). "
                       "A little weight decay keeps the net from over-fitting before the drops "
                       "matter. With one stage the curves wander; each drop settles them on a "
                       "lower plateau, and each run's final model is better than the one with a "
                       "stage less (the summary's figures).",
        "formula": "η: η₀ → η₀/10 (15) → η₀/100 (25) → η₀/1000 (35)",
        "study": {
            "base": {"data": {"dataset": "mnist1d"}, "model": {"hidden": [128, 128]},
                     "optim": {"lr": 0.1, "weight_decay": 0.0005,
                               "schedule": {"kind": "step", "gamma": 0.1}},
                     "training": {"max_epochs": 40, "keep": "last"}},
            "grid": {"optim.schedule.milestones": [[], [15], [15, 25], [15, 25, 35]]},
        },
    },
    {
        "id": "initialisation",
        "lesson": 5,
        "title": "Constant vs random initialisation",
        "description": "With every weight equal (0.01), all units of a layer stay identical "
                       "forever (distinct units = 1), yet the net still learns, as one unit per "
                       "layer. normal(std 0.01) is too small for five tanh layers: the signal "
                       "vanishes and the net stays at chance. Xavier and Kaiming keep the "
                       "activations' spread similar from layer to layer.",
        "formula": "Xavier U[±√6/√(d_in+d_out)],  Kaiming U[±√(6/d_in)]",
        "study": {
            "base": {"data": {"dataset": "digits"},
                     # value: the constant scheme's weight (0.0 would be a dead network,
                     # not the slide's symmetry); the other schemes ignore it.
                     "model": {"hidden": [64, 64, 64, 64, 64], "activation": "tanh",
                               "init": {"value": 0.01}},
                     "optim": {"lr": 0.05}, "training": {"max_epochs": 30}},
            "grid": {"model.init.scheme": ["constant", "normal", "pytorch", "xavier_uniform",
                                           "kaiming_uniform"]},
        },
    },
    {
        "id": "batchnorm",
        "lesson": 6,
        "title": "A deep net with and without batch normalisation",
        "description": "Eight sigmoid layers barely train; batch normalisation makes them "
                       "train fast.",
        "formula": "ã = γ (a − μ)/√(ε + σ²) + β",
        "study": {
            "base": {"data": {"dataset": "digits"},
                     "model": {"hidden": [64] * 8, "activation": "sigmoid"},
                     "optim": {"lr": 0.05}, "training": {"max_epochs": 30}},
            "grid": {"model.batchnorm": [False, True]},
        },
    },
    {
        "id": "weight-decay",
        "lesson": 7,
        "title": "L2 regularisation: a λ sweep",
        "description": "(λ/2)‖w‖² on the weights only: ‖w‖ shrinks as λ grows and the gap "
                       "between training and validation narrows.",
        "formula": "min (1/n) Σ L(R_w(xᵢ), yᵢ) + (λ/2)‖w‖²",
        "study": {
            "base": {"data": {"dataset": "mnist1d"}, "model": {"hidden": [256, 256]},
                     "optim": {"lr": 0.05}, "training": {"max_epochs": 40}},
            "grid": {"optim.weight_decay": [0.0, 0.0001, 0.001, 0.01]},
            "seeds": 3,  # intervals over seeds and a verdict per pair of λ (study view)
        },
    },
    {
        "id": "dropout",
        "lesson": 8,
        "title": "Dropout: inference A (average masks) vs B (scaling)",
        "description": "Inclusion probabilities 0.8 on the input and 0.5 elsewhere. Each run "
                       "reports both strategies' test accuracy.",
        "formula": "B: weight outgoing connections by p_inc;  A: average of K masks",
        "study": {
            "base": {"data": {"dataset": "digits"}, "model": {
                "hidden": [256, 256],
                "dropout": {"p_inc_input": 0.8, "p_inc_hidden": 0.5, "mc_samples": 20}},
                "optim": {"lr": 0.05}, "training": {"max_epochs": 60}},
            "grid": {"model.dropout.inference": ["scale", "mc"]},
            "seeds": 3,  # A against B paired by seed, with a verdict (study view)
        },
    },
    {
        "id": "augmentation",
        "lesson": 9,
        "title": "Harmful vs label-preserving augmentation",
        "description": "On shapes with left and right arrows, a horizontal flip turns one class "
                       "into the other and costs accuracy; a one-pixel random crop keeps every "
                       "label, and on this small training set (1,500 shapes) it even helps.",
        "formula": "don't turn a 6 into a 9",
        "study": {
            # 1,500 examples: the plain run over-fits, so a label-preserving augmentation has
            # something to give; a cosine η settles each run's final epoch.
            "base": {"data": {"dataset": "shapes", "n_samples": 1500},
                     "model": {"arch": "cnn", "hidden": [16, 32]},
                     "optim": {"lr": 0.05, "schedule": {"kind": "cosine"}},
                     "training": {"max_epochs": 20}},
            "grid": {"augment": [
                [],
                [{"op": "random_horizontal_flip", "p": 0.5}],
                [{"op": "random_crop", "size": 16, "padding": 1}],
            ]},
        },
    },
    {
        "id": "ensemble",
        "lesson": 10,
        "title": "An ensemble of 5 networks",
        "description": "Five members from five seeds, combined by averaging probabilities and "
                       "by vote: each member's accuracy, their mean, the ensemble's, the gain.",
        "formula": "p(y|x) = (1/K) Σₖ pₖ(y|x)",
        "spec": {"data": {"dataset": "mnist1d"}, "model": {"hidden": [128, 128]},
                 "optim": {"lr": 0.05}, "training": {"max_epochs": 30},
                 "ensemble": {"members": 5, "combine": "mean"}},
    },
]

BY_ID = {preset["id"]: preset for preset in PRESETS}
