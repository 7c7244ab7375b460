"""Augmentation: per-image randomness, determinism, agreement with torchvision's functional
ops, validation, previews, and training with it."""

import io
import typing

import pytest
import torch
from PIL import Image
from pydantic import ValidationError
from torchvision.transforms.v2 import functional as F

from worker.engine import parse_spec, train
from worker.engine.augment import _build_op, make_augmenter
from worker.engine.augment_spec import OP_PARAMS
from worker.engine.previews import jitter_trials, preview
from worker.engine.spec import AugmentOp
from worker.engine.train import TIMING_KEYS

ALL_OPS = [
    {"op": "random_crop", "size": 8, "padding": 1},
    {"op": "random_horizontal_flip", "p": 0.5},
    {"op": "random_vertical_flip", "p": 0.2},
    {"op": "random_resized_crop", "scale": [0.5, 1.0]},
    {"op": "random_rotation", "degrees": 20},
    {"op": "random_affine", "degrees": 10, "translate": [0.1, 0.1], "scale": [0.9, 1.1],
     "shear": 5},
    {"op": "color_jitter", "brightness": 0.4, "contrast": 0.4},
]


def build(op: dict, shape):
    return _build_op(AugmentOp.model_validate(op), shape)


def test_every_op_of_the_spec_has_its_parameters():
    assert set(typing.get_args(AugmentOp.model_fields["op"].annotation)) == set(OP_PARAMS) == {
        "random_crop", "random_horizontal_flip", "random_vertical_flip", "random_resized_crop",
        "random_rotation", "random_affine", "color_jitter",
    }


def test_same_seed_and_step_same_batch_else_different():
    x = torch.rand(64, 1, 8, 8)
    aug = make_augmenter(parse_spec({"augment": ALL_OPS}), (1, 8, 8), "cpu")
    again = make_augmenter(parse_spec({"augment": ALL_OPS}), (1, 8, 8), "cpu")
    other = make_augmenter(parse_spec({"seed": 1, "augment": ALL_OPS}), (1, 8, 8), "cpu")
    a = aug(x, 5)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, aug(x, 5)) and torch.equal(a, again(x, 5))
    assert not torch.equal(a, aug(x, 6))
    assert not torch.equal(a, other(x, 5))
    # No global RNG involved: seeding it does not change the result, and it is not consumed.
    torch.manual_seed(123)
    state = torch.get_rng_state()
    assert torch.equal(aug(x, 5), a)
    assert torch.equal(torch.get_rng_state(), state)


def test_no_ops_no_augmenter_and_signals_refused():
    assert make_augmenter(parse_spec({}), (1, 8, 8), "cpu") is None
    with pytest.raises(ValueError, match="images"):
        make_augmenter(parse_spec({"augment": ALL_OPS[:1]}), (1, 40), "cpu")


@pytest.mark.parametrize("op,dim", [("random_horizontal_flip", -1), ("random_vertical_flip", -2)])
def test_flips_are_per_image_with_probability_p(op, dim):
    x = torch.rand(4000, 3, 5, 7)
    for p in (0.0, 0.3, 0.5, 1.0):
        aug = make_augmenter(parse_spec({"augment": [{"op": op, "p": p}]}), (3, 5, 7), "cpu")
        y = aug(x, 0)
        flipped = (y == x.flip(dim)).flatten(1).all(1)
        kept = (y == x).flatten(1).all(1)
        assert bool((flipped | kept).all())  # each image: flipped whole, or untouched
        assert abs(flipped.float().mean().item() - p) < 0.03


def test_ensemble_batches_are_augmented_per_image():
    aug = make_augmenter(parse_spec({"augment": [{"op": "random_horizontal_flip"}]}),
                         (1, 8, 8), "cpu")
    x = torch.rand(3, 100, 1, 8, 8)  # (K members, m, C, H, W)
    y = aug(x, 0)
    assert y.shape == x.shape
    assert torch.equal(y.reshape(300, 1, 8, 8), aug(x.reshape(300, 1, 8, 8), 0))


# --- against torchvision, image by image -------------------------------------------------------

SHAPES = [(3, 16, 16), (1, 8, 8), (3, 12, 20)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_random_crop_is_pad_then_crop(shape, mode):
    _, h, w = shape
    x = torch.rand(16, *shape)
    op = build({"op": "random_crop", "padding": [1, 2, 3, 2], "padding_mode": mode,
                "fill": 0.3}, shape)
    p = op.sample(16, torch.Generator().manual_seed(0))
    y = op.apply(x, p)
    for i in range(16):
        padded = F.pad(x[i], [1, 2, 3, 2], fill=0.3, padding_mode=mode)
        ref = F.crop(padded, int(p["top"][i]), int(p["left"][i]), h, w)
        assert torch.equal(y[i], ref)
    assert len({(int(t), int(l)) for t, l in zip(p["top"], p["left"], strict=True)}) > 1


@pytest.mark.parametrize("fill", [[0.1, 0.5, 0.9], [0.4, 0.4, 0.4]])
def test_random_crop_with_a_colour_fill_pads_like_torchvision(fill):
    """A per-channel fill is padded by our own code (torchvision's makes a device tensor on
    every call); it must give torchvision's pixels."""
    x = torch.rand(16, 3, 12, 20)
    op = build({"op": "random_crop", "padding": [3, 1, 2, 4], "fill": fill}, (3, 12, 20))
    p = op.sample(16, torch.Generator().manual_seed(5))
    y = op.apply(x, p)
    for i in range(16):
        ref = F.crop(F.pad(x[i], [3, 1, 2, 4], fill=fill), int(p["top"][i]), int(p["left"][i]),
                     12, 20)
        assert torch.equal(y[i], ref)
    assert any(torch.equal(y[i, :, 0, 0], torch.tensor(fill)) for i in range(16))  # fill shows


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_random_resized_crop_matches_torchvision(shape, interpolation):
    _, h, w = shape
    x = torch.rand(32, *shape)
    op = build({"op": "random_resized_crop", "interpolation": interpolation}, shape)
    p = op.sample(32, torch.Generator().manual_seed(1))
    y = op.apply(x, p)
    mode = F.InterpolationMode(interpolation)
    for i in range(32):
        box = [int(p[k][i]) for k in ("top", "left", "height", "width")]
        ref = F.resized_crop(x[i], *box, size=[h, w], interpolation=mode, antialias=True)
        torch.testing.assert_close(y[i], ref, atol=1e-6, rtol=0)
    # torchvision's parameter rules: boxes inside the image, areas within scale (0.08, 1).
    area = (p["height"] * p["width"]).double() / (h * w)
    assert bool((p["top"] + p["height"] <= h).all() and (p["left"] + p["width"] <= w).all())
    assert area.min() > 0.03 and area.max() <= 1.0 and area.std() > 0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("degrees", [30, [90, 90], [180, 180], [-90, -90]])
def test_random_rotation_matches_torchvision(shape, interpolation, degrees):
    x = torch.rand(16, *shape)
    op = build({"op": "random_rotation", "degrees": degrees, "interpolation": interpolation,
                "fill": 0.2}, shape)
    p = op.sample(16, torch.Generator().manual_seed(2))
    y = op.apply(x, p)
    mode = F.InterpolationMode(interpolation)
    for i in range(16):
        ref = F.rotate(x[i], float(p["angle"][i]), interpolation=mode, fill=0.2)
        torch.testing.assert_close(y[i], ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_random_affine_matches_torchvision(shape, interpolation):
    x = torch.rand(16, *shape)
    op = build({"op": "random_affine", "degrees": 25, "translate": [0.2, 0.1],
                "scale": [0.8, 1.2], "shear": [-10, 10, -5, 5],
                "interpolation": interpolation, "fill": 0.5}, shape)
    p = op.sample(16, torch.Generator().manual_seed(3))
    y = op.apply(x, p)
    mode = F.InterpolationMode(interpolation)
    for i in range(16):
        ref = F.affine(x[i], float(p["angle"][i]), [int(p["tx"][i]), int(p["ty"][i])],
                       float(p["scale"][i]), [float(p["shear_x"][i]), float(p["shear_y"][i])],
                       interpolation=mode, fill=0.5)
        torch.testing.assert_close(y[i], ref, atol=1e-6, rtol=0)
    # Translations are whole pixels within ±translate·size, as in torchvision.
    assert bool((p["tx"] == p["tx"].round()).all()) and p["tx"].abs().max() <= round(0.2 * shape[2])


@pytest.mark.parametrize("shape", SHAPES)
def test_color_jitter_matches_torchvision_in_each_images_order(shape):
    x = torch.rand(32, *shape)
    op = build({"op": "color_jitter", "brightness": 0.5, "contrast": 0.5, "saturation": 0.5,
                "hue": 0.3}, shape)
    p = op.sample(32, torch.Generator().manual_seed(4))
    y = op.apply(x, p)
    adjust = [
        lambda img, f: F.adjust_brightness(img, f), lambda img, f: F.adjust_contrast(img, f),
        lambda img, f: F.adjust_saturation(img, f), lambda img, f: F.adjust_hue(img, f),
    ]
    names = ("brightness", "contrast", "saturation", "hue")
    for i in range(32):
        ref = x[i]
        for k in p["order"][i].tolist():
            ref = adjust[k](ref, float(p[names[k]][i]))
        torch.testing.assert_close(y[i], ref, atol=1e-5, rtol=0)
    assert len({tuple(o) for o in p["order"].tolist()}) > 5  # orders differ between images


# --- validation ------------------------------------------------------------------------------


def errors(data):
    with pytest.raises(ValidationError) as e:
        parse_spec(data)
    return {".".join(map(str, err["loc"])): err["msg"] for err in e.value.errors()}


def test_bad_parameters_are_named_by_path():
    e = errors({"augment": [{"op": "random_horizontal_flip"},
                            {"op": "random_crop", "paddding": 1, "padding_mode": "wrap"}]})
    assert set(e) == {"augment.1.paddding", "augment.1.padding_mode"}
    e = errors({"augment": [{"op": "color_jitter", "hue": 0.7}]})
    assert set(e) == {"augment.0.hue"}
    e = errors({"augment": [{"op": "random_rotation", "degrees": [10, -10]}]})
    assert set(e) == {"augment.0.degrees"}
    e = errors({"augment": [{"op": "random_crop", "size": 6, "padding": 1}]})
    assert "8×8" in e["augment.0.size"]
    e = errors({"augment": [{"op": "random_rotation", "fill": [0, 0, 0]}]})
    assert "1 channel" in e["augment.0.fill"]
    e = errors({"augment": [{"op": "random_flip"}]})
    assert set(e) == {"augment.0.op"}
    e = errors({"data": {"dataset": "moons"}, "augment": [{"op": "random_horizontal_flip"}]})
    assert "image datasets only" in e["augment"]
    e = errors({"data": {"dataset": "mnist1d"}, "augment": [{"op": "random_horizontal_flip"}]})
    assert "image datasets only" in e["augment"]
    # Sizes equal to the image's are fine, as ints or pairs; colour fills on colour images too.
    parse_spec({"data": {"dataset": "shapes"}, "augment": [
        {"op": "random_resized_crop", "size": [16, 16]},
        {"op": "random_affine", "fill": [0.1, 0.2, 0.3]},
    ]})


# --- previews --------------------------------------------------------------------------------


def decode(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img


def test_preview_returns_n_pngs_reproducibly():
    ops = [{"op": "random_rotation", "degrees": 30}, {"op": "random_crop", "padding": 1}]
    out = preview("digits", 0, ops, n=5, seed=7)
    original = decode(out["original"])
    assert original.size == (96, 96) and original.mode == "L"  # 8×8 upscaled ×12
    assert [s["seed"] for s in out["samples"]] == [7, 8, 9, 10, 11]
    images = [decode(s["png"]) for s in out["samples"]]
    assert all(i.size == (96, 96) for i in images)
    assert len({s["png"] for s in out["samples"]}) > 1
    assert out == preview("digits", 0, ops, n=5, seed=7)
    assert out["samples"] != preview("digits", 0, ops, n=5, seed=8)["samples"]
    # Sample k is what training with seed + k does to that image at step 0.
    aug = make_augmenter(parse_spec({"seed": 9, "augment": ops}), (1, 8, 8), "cpu")
    from worker.engine.datasets import load_raw
    from worker.engine.previews import to_png

    x = torch.from_numpy(load_raw("digits").X[:1])
    assert to_png(aug(x, 0)[0]) == out["samples"][2]["png"]


def test_preview_colour_dataset_and_errors():
    out = preview("shapes", 3, [{"op": "color_jitter", "hue": 0.3}], n=2, seed=0)
    assert decode(out["original"]).mode == "RGB" and decode(out["original"]).size == (96, 96)
    with pytest.raises(ValidationError):
        preview("moons", 0, [{"op": "random_horizontal_flip"}], n=2, seed=0)
    with pytest.raises(IndexError):
        preview("digits", 5000, [], n=2, seed=0)
    with pytest.raises(ValidationError):
        preview("digits", 0, [{"op": "random_crop", "size": 5}], n=2, seed=0)


def test_jitter_trials_one_component_at_a_time():
    out = jitter_trials("shapes", 0, trials=4, seed=1)
    assert [c["name"] for c in out["components"]] == ["brightness", "contrast", "saturation", "hue"]
    for c in out["components"]:
        assert c["applies"] and [t["trial"] for t in c["trials"]] == [0, 1, 2, 3]
        assert len({t["png"] for t in c["trials"]}) == 4
        assert all(decode(t["png"]).size == (96, 96) for t in c["trials"])
    grey = jitter_trials("digits", 0, trials=4)
    applies = {c["name"]: c["applies"] for c in grey["components"]}
    assert applies == {"brightness": True, "contrast": True, "saturation": False, "hue": False}
    hue = next(c for c in grey["components"] if c["name"] == "hue")
    assert {t["png"] for t in hue["trials"]} == {grey["original"]}  # no effect on grey images


# --- training --------------------------------------------------------------------------------


def _strip(metrics):
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


def test_training_with_augmentation_runs_and_is_deterministic():
    base = {"training": {"max_epochs": 2}, "model": {"hidden": [32]}}
    ops = [{"op": "random_crop", "padding": 1}, {"op": "random_rotation", "degrees": 15},
           {"op": "color_jitter", "brightness": 0.3}]
    a = train(parse_spec({**base, "augment": ops}), device="cpu")
    b = train(parse_spec({**base, "augment": ops}), device="cpu")
    plain = train(parse_spec(base), device="cpu")
    assert a.status == "succeeded"
    assert _strip(a.metrics) == _strip(b.metrics) and a.result == b.result
    assert _strip(a.metrics) != _strip(plain.metrics)
    assert a.metrics[-1]["train_loss"] > plain.metrics[-1]["train_loss"]  # harder batches


def test_augmentation_on_shapes_trains():
    spec = parse_spec({
        "data": {"dataset": "shapes", "n_samples": 300}, "model": {"hidden": [32]},
        "training": {"max_epochs": 1},
        "augment": [{"op": "random_horizontal_flip"}, {"op": "random_resized_crop",
                                                        "scale": [0.6, 1]}],
    })
    out = train(spec, device="cpu")
    assert out.status == "succeeded" and len(out.metrics) == 1
