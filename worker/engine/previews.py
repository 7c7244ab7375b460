"""Previews of augmentation as PNG images: an example of a dataset (or an image of one's own)
augmented n times by the training code path (``make_augmenter``), for the lab's augmentation
pages. The API imports this module only when a preview is asked for.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import torch

from .augment import Augmenter, _build_op, make_augmenter
from .datasets import dataset_info, derive_seed, load_raw
from .spec import AugmentOp, DataSpec, Spec

Tensor = torch.Tensor

PREVIEW_MIN_PIXELS = 96
PREVIEW_MAX_SAMPLES = 64


def to_png(img: Tensor, min_pixels: int = PREVIEW_MIN_PIXELS) -> bytes:
    """A (C, H, W) image in [0, 1] as PNG bytes, upscaled by an integer factor with nearest
    neighbour so that its longer side is at least ``min_pixels``."""
    from PIL import Image

    c, h, w = img.shape
    k = max(1, math.ceil(min_pixels / max(h, w)))
    a = (img.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    a = a.repeat(k, axis=1).repeat(k, axis=2)
    if c == 1:
        pil = Image.fromarray(a[0], mode="L")
    elif c == 3:
        pil = Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0)), mode="RGB")
    else:
        raise ValueError(f"cannot draw an image with {c} channels")
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def _data_spec(dataset: str | dict | DataSpec | Spec) -> tuple[DataSpec, int]:
    """(data spec, seed that generates the data) from a name, a data spec or a whole spec."""
    if isinstance(dataset, Spec):
        return dataset.data, dataset.seed
    if isinstance(dataset, DataSpec):
        return dataset, 0
    if isinstance(dataset, dict):
        return DataSpec.model_validate(dataset), 0
    return DataSpec(dataset=dataset), 0


def _example(data: DataSpec, data_seed: int, index: int, data_root) -> tuple[Tensor, str]:
    """Example ``index`` as a (1, C, H, W) batch, and its label: the class a training run
    would learn for every augmented copy of it (a flipped 6 stays labelled 6)."""
    raw = load_raw(data, data_seed, data_root)
    if not 0 <= index < len(raw.X):
        raise IndexError(f"index {index} out of range: {data.dataset!r} has {len(raw.X)} examples")
    x = torch.from_numpy(np.ascontiguousarray(raw.X[index:index + 1], dtype=np.float32))
    if x.dim() != 4:
        raise ValueError(f"{data.dataset!r} is not an image dataset: nothing to preview")
    classes = raw.classes or dataset_info(data.dataset).classes
    return x, str(classes[int(raw.y[index])])


def _preview_spec(data: DataSpec, ops: Sequence, seed: int) -> Spec:
    """The ops validated against the dataset exactly as a run's spec is (ValidationError)."""
    ops = [op.model_dump() if isinstance(op, AugmentOp) else op for op in ops]
    return Spec.model_validate({"seed": seed, "data": data.model_dump(), "augment": ops})


def _samples(x: Tensor, base: Spec, n: int, seed: int) -> list[dict]:
    if not 1 <= n <= PREVIEW_MAX_SAMPLES:
        raise ValueError(f"n must be between 1 and {PREVIEW_MAX_SAMPLES}")
    out = []
    for k in range(n):
        s = (seed + k) % 2**31
        aug = make_augmenter(base.model_copy(update={"seed": s}), x.shape[1:], x.device)
        img = aug(x, 0)[0] if aug is not None else x[0]
        out.append({"seed": s, "png": to_png(img)})
    return out


def preview(
    dataset: str | dict | DataSpec | Spec,
    index: int,
    augment_ops: Sequence[dict | AugmentOp],
    n: int = 8,
    seed: int = 0,
    data_root=None,
) -> dict:
    """``{"original": png, "label": class, "samples": [{"seed": s, "png": png}, ...]}`` for
    example ``index`` of the dataset (in the order the loader returns it: the official training
    part where there is one, before any split), augmented ``n`` times by ``augment_ops``.

    Sample k is what a training run with ``seed = seed + k`` does to that image at step 0:
    the same ``make_augmenter`` code path. Same arguments, same bytes."""
    data, data_seed = _data_spec(dataset)
    base = _preview_spec(data, augment_ops, seed)
    x, label = _example(data, data_seed, index, data_root)
    return {"original": to_png(x[0]), "label": label, "samples": _samples(x, base, n, seed)}


def jitter_trials(
    dataset: str | dict | DataSpec | Spec,
    index: int,
    *,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    trials: int = 4,
    seed: int = 0,
    data_root=None,
) -> dict:
    """ColorJitter one component at a time (the slides' "trial #0 … #3"):
    ``{"original": png, "components": [{"name", "value", "applies", "trials":
    [{"trial": t, "seed": s, "png": png}]}]}`` for brightness, contrast, saturation, hue.
    ``applies`` is False for saturation and hue on 1-channel images (they change nothing)."""
    data, data_seed = _data_spec(dataset)
    parts = (("brightness", brightness), ("contrast", contrast),
             ("saturation", saturation), ("hue", hue))
    specs = [_preview_spec(data, [{"op": "color_jitter", name: value}], seed)
             for name, value in parts]
    x, label = _example(data, data_seed, index, data_root)
    components = []
    for (name, value), base in zip(parts, specs):
        samples = _samples(x, base, trials, seed)
        components.append({
            "name": name,
            "value": value,
            "applies": x.shape[1] == 3 or name in ("brightness", "contrast"),
            "trials": [{"trial": t, **s} for t, s in enumerate(samples)],
        })
    return {"original": to_png(x[0]), "label": label, "components": components}


def preview_image(image: Tensor | np.ndarray, augment_ops: Sequence[dict | AugmentOp],
                  n: int = 8, seed: int = 0) -> dict:
    """Like ``preview`` for an image of one's own: (C, H, W) in [0, 1], augmented ``n`` times
    by the training code path (sample k with seed + k). Ops are validated one by one; a
    ValidationError's location is relative to the op."""
    image = torch.as_tensor(image)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected a (C, H, W) image with 1 or 3 channels, got {tuple(image.shape)}")
    if not 1 <= n <= PREVIEW_MAX_SAMPLES:
        raise ValueError(f"n must be between 1 and {PREVIEW_MAX_SAMPLES}")
    shape = tuple(int(d) for d in image.shape)
    ops = [op if isinstance(op, AugmentOp) else AugmentOp.model_validate(op) for op in augment_ops]
    x = image.unsqueeze(0).float()
    samples = []
    for k in range(n):
        s = (seed + k) % 2**31
        augmenter = Augmenter([_build_op(op, shape) for op in ops],  # type: ignore[arg-type]
                              derive_seed(s, "augment"), shape)  # type: ignore[arg-type]
        samples.append({"seed": s, "png": to_png(augmenter(x, 0)[0])})
    return {"original": to_png(image), "samples": samples}
