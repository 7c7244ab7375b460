"""Packs of dropout and augmentation runs: member k draws its dropout masks and its
augmentation parameters from its own streams, bit for bit those of its run alone, so the packed
member is its run alone up to the round-off of stacked products (test_pack.py's standard)."""

from __future__ import annotations

import pytest
import torch

from tests.engine.test_pack import _close, _same_as_alone, _specs
from worker.engine import Callbacks, parse_spec, train
from worker.engine.augment import make_augmenter, make_pack_augmenter
from worker.engine.datasets import derive_seed
from worker.engine.layers import Dropout
from worker.engine.models import build_network
from worker.engine.pack import train_pack

SEEDS = [3, 8, 21]


def _gens(seeds: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(derive_seed(s, "dropout")) for s in seeds]


@pytest.mark.parametrize("layout", ["features", "channels"])
def test_per_member_masks_are_each_runs_alone_exactly(layout: str) -> None:
    k, b = len(SEEDS), 5
    torch.manual_seed(0)
    packed, alone = Dropout(0.6, layout), Dropout(0.6, layout)
    packed.generators = _gens(SEEDS)
    if layout == "features":  # stacked MLP (K, d, B); a run alone has (B, d)
        x = torch.rand(k, 7, b) + 0.5
        singles = [x[i].T.contiguous() for i in range(k)]
    else:  # stacked CNN (B, K·C, H, W); a run alone has (B, C, H, W)
        x = torch.rand(b, k * 2, 3, 3) + 0.5
        singles = [x[:, 2 * i:2 * i + 2].contiguous() for i in range(k)]
    references = _gens(SEEDS)  # each run alone's stream
    for _ in range(3):  # successive steps go on along each member's stream
        out = packed(x)
        for i, (single, gen) in enumerate(zip(singles, references)):
            alone.generator = gen
            mine = out[i].T if layout == "features" else out[:, 2 * i:2 * i + 2]
            assert torch.equal(mine, alone(single)), i
    assert not torch.equal(out[0], out[1])  # members really differ


def test_stacked_network_draws_each_members_masks_like_its_run() -> None:
    """A whole stacked MLP with input and hidden dropout, member k's logits in train mode are
    those of its network alone with its own generator (same weights), to round-off; with one
    shared generator they are not."""
    spec = parse_spec({"model": {"hidden": [16, 16],
                                 "dropout": {"p_inc_input": 0.8, "p_inc_hidden": 0.5}}})
    stacked, _ = build_network(spec, (1, 8, 8), 10, SEEDS)
    stacked.train().set_dropout(generators=_gens(SEEDS))
    x = torch.rand(len(SEEDS), 6, 1, 8, 8)
    logits = stacked(x)
    for k, gen in enumerate(_gens(SEEDS)):
        net = stacked.member(k)
        net.set_dropout(generator=gen)
        assert torch.allclose(logits[k], net(x[k]), atol=1e-5), k
    stacked.set_dropout(generator=torch.Generator().manual_seed(0))  # one stream: not the runs
    assert not torch.allclose(stacked(x)[1], logits[1], atol=1e-3)


def test_pack_augmentation_draws_are_each_runs_alone_exactly() -> None:
    ops = [{"op": "random_horizontal_flip", "p": 0.5},
           {"op": "random_crop", "size": 16, "padding": 2},
           {"op": "random_rotation", "degrees": 30},
           {"op": "random_affine", "degrees": 10, "translate": [0.1, 0.1], "scale": [0.9, 1.1]},
           {"op": "random_resized_crop", "size": 16, "scale": [0.5, 1.0]},
           {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4,
            "hue": 0.1}]
    specs = [parse_spec({"seed": s, "data": {"dataset": "shapes"}, "augment": ops})
             for s in SEEDS]
    shape = (3, 16, 16)
    pack = make_pack_augmenter(specs, shape)
    x = torch.rand(len(SEEDS), 9, *shape)
    for step in (0, 1, 17):
        out = pack(x, step)
        for k, spec in enumerate(specs):
            alone = make_augmenter(spec, shape)
            assert torch.equal(out[k], alone(x[k], step)), (k, step)
    assert not torch.equal(out[0], out[1])


def test_a_dropout_pack_member_is_its_run_alone() -> None:
    data = {"model": {"hidden": [32, 16],
                      "dropout": {"p_inc_input": 0.8, "p_inc_hidden": 0.5, "inference": "mc",
                                  "mc_samples": 4}},
            "training": {"max_epochs": 3}}
    specs = _specs(data, SEEDS)
    outcomes = train_pack(specs, device="cpu")
    assert outcomes[0].result["dropout"]["inference"] == "mc"
    assert len({o.result["test_accuracy"] for o in outcomes}) > 1
    _same_as_alone(specs, outcomes)


def test_an_augmented_cnn_pack_with_dropout_member_is_its_run_alone() -> None:
    data = {"data": {"dataset": "shapes", "n_samples": 240},
            "model": {"arch": "cnn", "hidden": [4, 8], "dropout": {"p_inc_hidden": 0.7}},
            "optim": {"batch_size": 16},
            "augment": [{"op": "random_horizontal_flip", "p": 0.5},
                        {"op": "random_rotation", "degrees": 20},
                        {"op": "color_jitter", "brightness": 0.3, "hue": 0.05}],
            "training": {"max_epochs": 2}}
    specs = _specs(data, SEEDS[:2])
    _same_as_alone(specs, train_pack(specs, device="cpu"))


def test_a_dropout_pack_members_checkpoint_resumes_on_its_own_stream() -> None:
    data = {"model": {"hidden": [16], "dropout": {"p_inc_hidden": 0.5}},
            "training": {"max_epochs": 4}}
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


def _recorded(monkeypatch: pytest.MonkeyPatch, run) -> list:
    """Every dropout mask drawn by a training step while ``run()`` trains, and every batch the
    network is given in training mode, in order (copies)."""
    from worker.engine import layers, models

    seen: list = []
    real_mask = layers.Dropout._mask

    def mask(self, x):
        out = real_mask(self, x)
        if self.training:  # training steps (not the Monte-Carlo evaluation of the result)
            seen.append(("mask", self.layout, len(self.generators or []), out.clone()))
        return out

    monkeypatch.setattr(layers.Dropout, "_mask", mask)
    real_forward = models.CNN.forward

    def forward(self, x):
        if self.training:
            seen.append(("input", None, self.members or 0, x.detach().clone()))
        return real_forward(self, x)

    monkeypatch.setattr(models.CNN, "forward", forward)
    run()
    monkeypatch.undo()
    return seen


def _member_view(kind: str, layout: str | None, stacked: torch.Tensor, k: int,
                 members: int) -> torch.Tensor:
    if kind == "input":
        return stacked[k]
    if layout == "features":
        return stacked[k].T
    c = stacked.shape[1] // members
    return stacked[:, k * c:(k + 1) * c]


def test_in_training_each_member_gets_its_runs_batches_and_masks_bit_for_bit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The augmented minibatches and the dropout masks of a packed member, step by step through
    real training, are exactly those its run alone draws (the network's outputs then differ
    only by the round-off of stacked products)."""
    data = {"data": {"dataset": "shapes", "n_samples": 160},
            "model": {"arch": "cnn", "hidden": [4],
                      "dropout": {"p_inc_input": 0.9, "p_inc_hidden": 0.6}},
            "optim": {"batch_size": 16},
            "augment": [{"op": "random_horizontal_flip", "p": 0.5},
                        {"op": "random_crop", "size": 16, "padding": 2},
                        {"op": "color_jitter", "brightness": 0.3, "hue": 0.05}],
            "training": {"max_epochs": 2}}
    specs = _specs(data, SEEDS)
    packed = _recorded(monkeypatch, lambda: train_pack(specs, device="cpu"))
    assert sum(kind == "mask" for kind, *_ in packed) >= 2 * 2 * 6  # 2 layers, 2 epochs
    for k, spec in enumerate(specs):
        alone = _recorded(monkeypatch, lambda spec=spec: train(spec, device="cpu"))
        assert [kind for kind, *_ in alone] == [kind for kind, *_ in packed]
        for (kind, layout, members, stacked), (_, _, _, single) in zip(packed, alone,
                                                                      strict=True):
            assert members == len(SEEDS)
            assert torch.equal(_member_view(kind, layout, stacked, k, members), single), (
                k, kind)
