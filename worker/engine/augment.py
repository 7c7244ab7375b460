"""Data augmentation on whole training batches (COURSE.md §9); previews of it: previews.py.

``make_augmenter(spec, input_shape, device)`` turns ``spec.augment`` into one callable
``augment(batch, step) -> batch`` that ``train`` applies to each training minibatch (never to
S_v or the test set). The batch stays on its device; images keep their shape.

Randomness. torchvision's v2 transforms draw their parameters from torch's *global* RNG and
draw them *once per call*: on a batched tensor every image gets the same flip, crop or angle.
Here each op draws one set of parameters *per image*, from a private ``torch.Generator`` seeded
from (``spec.seed``, ``step``): the same seed and step give the same batch, on any device (the
draws happen on the CPU), and nothing touches the global RNG (so no ``fork_rng`` is needed).
The distributions are torchvision's (the ``make_params`` of each transform, vectorised).

What is torchvision's own code and what is a batched re-implementation:

| op | parameters (per image) | applied with |
|---|---|---|
| random_horizontal_flip / random_vertical_flip | flip with probability p | ``flip`` + per-image mask: exactly ``F.horizontal_flip`` / ``F.vertical_flip`` |
| random_crop | offsets in the padded image | ``F.pad`` (torchvision's, on the batch; a per-channel constant fill is padded here the same way, ``_pad_vector_fill``), then a per-image crop by ``gather``: exactly ``F.pad`` + ``F.crop`` |
| random_resized_crop | torchvision's 10-tries area/ratio search, central-crop fallback | re-implemented: per-image separable bilinear (or nearest) resampling with PyTorch's ``interpolate`` index/weight rules; matches ``F.resized_crop`` to float rounding (the crop is never larger than the output, so antialiasing has nothing to do) |
| random_rotation / random_affine | angle, translation, scale, shear | re-implemented: torchvision's inverse affine matrix (vectorised), its sampling grid and its fill mask, with per-image matrices in one ``grid_sample``; matches ``F.rotate`` / ``F.affine`` (and ``F.rotate``'s exact ``rot90`` path for multiples of 90°) |
| color_jitter | a random order of the four adjustments and four factors | brightness/contrast/saturation: torchvision's blend formulas with per-image factors; hue: torchvision's own RGB→HSV conversion with a per-image shift, and its HSV→RGB copied line for line (``_hsv_to_rgb``); matches ``F.adjust_*`` in the same order |

Saturation and hue leave 1-channel images unchanged, as torchvision and PIL do.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as TF
from torchvision.transforms.v2 import functional as F

from .augment_spec import (
    degree_range,
    jitter_range,
    pad_lrtb,
    validate_op_params,
)
from .datasets import derive_seed
from .spec import AugmentOp, Spec

try:  # torchvision's batched RGB→HSV (private, but what F.adjust_hue itself runs)
    from torchvision.transforms.v2.functional._color import _rgb_to_hsv
except ImportError:  # pragma: no cover - a later torchvision; fall back to one image at a time
    _rgb_to_hsv = None

Tensor = torch.Tensor
Params = dict[str, Tensor]


def _step_seed(base: int, step: int) -> int:
    return int(np.random.SeedSequence([base, int(step)]).generate_state(1)[0])


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> Tensor:
    return torch.empty(n).uniform_(lo, hi, generator=gen)


def _to(t: Tensor, dev: torch.device) -> Tensor:
    """A CPU tensor (parameters drawn on the CPU, a fill colour) on the batch's device without
    a host sync. A blocking copy to a GPU waits for every queued kernel; so may a non-blocking
    one from pageable memory (CUDA stages it and "may synchronize with the stream"), so the
    copy goes from pinned memory, whose buffer torch keeps until the copy is done."""
    if dev.type == "cuda":
        t = t.pin_memory()
    return t.to(dev, non_blocking=True)


class _Op(ABC):
    """One op: ``sample`` draws per-image parameters on the CPU, ``apply`` uses them; the
    parameters reach the device through ``_to`` (no host sync on an augmented step)."""

    def __init__(self, params: Any, shape: tuple[int, int, int]) -> None:
        self.params = params
        self.c, self.h, self.w = shape

    @abstractmethod
    def sample(self, n: int, gen: torch.Generator) -> Params: ...

    @abstractmethod
    def apply(self, x: Tensor, p: Params) -> Tensor: ...

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        return self.apply(x, self.sample(len(x), gen))


class _Flip(_Op):
    def __init__(self, params: Any, shape: tuple[int, int, int], dim: int) -> None:
        super().__init__(params, shape)
        self.dim = dim

    def sample(self, n: int, gen: torch.Generator) -> Params:
        return {"flip": torch.rand(n, generator=gen) < self.params.p}

    def apply(self, x: Tensor, p: Params) -> Tensor:
        m = _to(p["flip"], x.device).view(-1, 1, 1, 1)
        return torch.where(m, x.flip(self.dim), x)


def _crop_rows_cols(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """Per-image crop: out[b, :, i, j] = x[b, :, rows[b, i], cols[b, j]]."""
    n, c, _, w = x.shape
    x = x.gather(2, rows[:, None, :, None].expand(n, c, rows.shape[1], w))
    return x.gather(3, cols[:, None, None, :].expand(n, c, rows.shape[1], cols.shape[1]))


class _RandomCrop(_Op):
    def __init__(self, params: Any, shape: tuple[int, int, int]) -> None:
        super().__init__(params, shape)
        self.left, self.right, self.top, self.bottom = pad_lrtb(params.padding)
        fill = params.fill
        if isinstance(fill, list) and len(set(fill)) == 1:
            fill = float(fill[0])  # one value for every channel: torch's own constant pad
        # Per-channel fill: torchvision's F.pad makes a device tensor of it on every call
        # (a host sync on a GPU), so it is padded here instead (_pad_vector_fill).
        self.fill_rgb = torch.tensor(fill, dtype=torch.float32) if isinstance(fill, list) else None
        self.fill = fill

    def sample(self, n: int, gen: torch.Generator) -> Params:
        return {
            "top": torch.randint(0, self.top + self.bottom + 1, (n,), generator=gen),
            "left": torch.randint(0, self.left + self.right + 1, (n,), generator=gen),
        }

    def apply(self, x: Tensor, p: Params) -> Tensor:
        if not (self.left or self.right or self.top or self.bottom):
            return x  # size = image size and no padding: torchvision crops nothing either
        pad = [self.left, self.top, self.right, self.bottom]
        dev = x.device
        if self.fill_rgb is not None and self.params.padding_mode == "constant":
            xp = _pad_vector_fill(x, pad, _to(self.fill_rgb.to(x.dtype), dev))
        else:
            xp = F.pad(x, pad, fill=self.fill, padding_mode=self.params.padding_mode)
        rows = _to(p["top"], dev)[:, None] + torch.arange(self.h, device=dev)
        cols = _to(p["left"], dev)[:, None] + torch.arange(self.w, device=dev)
        return _crop_rows_cols(xp, rows, cols)


def _pad_vector_fill(x: Tensor, pad: list[int], fill: Tensor) -> Tensor:
    """torchvision's ``_pad_with_vector_fill`` (constant padding, one value per channel) with
    the fill already on the device: zero padding, then the borders set to ``fill``."""
    left, top, right, bottom = pad
    out = TF.pad(x, [left, right, top, bottom])
    fill = fill.view(-1, 1, 1)
    if top > 0:
        out[..., :top, :] = fill
    if left > 0:
        out[..., :, :left] = fill
    if bottom > 0:
        out[..., -bottom:, :] = fill
    if right > 0:
        out[..., :, -right:] = fill
    return out


class _RandomResizedCrop(_Op):
    def sample(self, n: int, gen: torch.Generator) -> Params:
        H, W = self.h, self.w
        (s0, s1), (r0, r1) = self.params.scale, self.params.ratio
        # torchvision: up to 10 tries of (area, log-uniform aspect ratio); the first crop that
        # fits wins; otherwise a central crop.
        area = H * W * _uniform(n * 10, s0, s1, gen).double().view(n, 10)
        ratio = torch.exp(_uniform(n * 10, math.log(r0), math.log(r1), gen).double()).view(n, 10)
        w = torch.round(torch.sqrt(area * ratio)).long()
        h = torch.round(torch.sqrt(area / ratio)).long()
        ok = (w > 0) & (w <= W) & (h > 0) & (h <= H)
        first = ok.int().argmax(dim=1, keepdim=True)
        w, h = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0]
        u_top, u_left = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
        top = (u_top * (H - h + 1)).floor().long().clamp(max=H - h)
        left = (u_left * (W - w + 1)).floor().long().clamp(max=W - w)

        in_ratio = W / H
        if in_ratio < r0:
            fw, fh = W, round(W / r0)
        elif in_ratio > r1:
            fw, fh = round(H * r1), H
        else:
            fw, fh = W, H
        found = ok.any(dim=1)
        return {
            "top": torch.where(found, top, (H - fh) // 2),
            "left": torch.where(found, left, (W - fw) // 2),
            "height": torch.where(found, h, fh),
            "width": torch.where(found, w, fw),
        }

    def apply(self, x: Tensor, p: Params) -> Tensor:
        dev = x.device
        top, left, h, w = (_to(p[k], dev) for k in ("top", "left", "height", "width"))
        mode = self.params.interpolation
        ys = _source_index(top, h, self.h, mode)
        xs = _source_index(left, w, self.w, mode)
        if mode == "nearest":
            return _crop_rows_cols(x, ys[0], xs[0])
        n, c, _, W = x.shape
        (y0, y1, ly), (x0, x1, lx) = ys, xs
        oh, ow = y0.shape[1], x0.shape[1]

        def rows(i: Tensor) -> Tensor:
            return x.gather(2, i[:, None, :, None].expand(n, c, oh, W))

        ly = ly[:, None, :, None]
        r = rows(y0) * (1 - ly) + rows(y1) * ly

        def cols(i: Tensor) -> Tensor:
            return r.gather(3, i[:, None, None, :].expand(n, c, oh, ow))

        lx = lx[:, None, None, :]
        return cols(x0) * (1 - lx) + cols(x1) * lx


def _source_index(start: Tensor, length: Tensor, out: int, mode: str):
    """PyTorch's ``interpolate`` (align_corners=False) source positions for resizing a window
    [start, start + length) to ``out`` pixels, per image: (i0, i1, weight of i1), or (i,) for
    nearest."""
    d = torch.arange(out, device=start.device, dtype=torch.float32)
    scale = (length.float() / out)[:, None]
    last = (length - 1)[:, None]
    if mode == "nearest":
        i = torch.minimum(torch.floor(d * scale).long(), last)
        return (start[:, None] + i,)
    src = (scale * (d + 0.5) - 0.5).clamp_min(0)
    i0 = torch.minimum(src.floor().long(), last)
    lam = (src - i0).clamp(0, 1)
    i1 = i0 + (i0 < last).long()
    return start[:, None] + i0, start[:, None] + i1, lam


def _inverse_affine(angle: Tensor, tx: Tensor, ty: Tensor, scale: Tensor,
                    shear_x: Tensor, shear_y: Tensor) -> Tensor:
    """torchvision's ``_get_inverse_affine_matrix`` (centre = image centre), one matrix per
    image: (n, 6) float64."""
    rot, sx, sy = (torch.deg2rad(a.double()) for a in (angle, shear_x, shear_y))
    tx, ty, scale = tx.double(), ty.double(), scale.double()
    cos_sy, tan_sx = torch.cos(sy), torch.tan(sx)
    a = torch.cos(rot - sy) / cos_sy
    b = -(a * tan_sx + torch.sin(rot))
    c = torch.sin(rot - sy) / cos_sy
    d = torch.cos(rot) - c * tan_sx
    m0, m1, m3, m4 = d / scale, -b / scale, -c / scale, a / scale
    # centre (0, 0): matrix[2] = −m0·tx − m1·ty, matrix[5] = −m3·tx − m4·ty
    m2 = 0.0 - m0 * tx - m1 * ty
    m5 = 0.0 - m3 * tx - m4 * ty
    return torch.stack([m0, m1, m2, m3, m4, m5], dim=1)


class _GridOp(_Op):
    """Rotation and affine: torchvision's sampling grid, one matrix per image."""

    def _base_grid(self, dev: torch.device) -> Tensor:
        # torchvision _affine_grid: pixel centres relative to the image centre, homogeneous.
        h, w = self.h, self.w
        base = torch.empty(1, h, w, 3, dtype=torch.float32, device=dev)
        base[..., 0].copy_(torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=dev))
        base[..., 1].copy_(
            torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=dev).unsqueeze_(-1)
        )
        base[..., 2].fill_(1)
        return base.view(1, h * w, 3)

    def transform(self, x: Tensor, matrices: Tensor) -> Tensor:
        n, dev = len(x), x.device
        # Rescaled on the CPU (a tensor made on the device from a list is a blocking copy).
        theta = matrices.to(torch.float32).view(n, 2, 3).transpose(1, 2) / torch.tensor(
            [0.5 * self.w, 0.5 * self.h], dtype=torch.float32)
        rescaled = _to(theta.contiguous(), dev)
        grid = self._base_grid(dev).expand(n, -1, -1).bmm(rescaled).view(n, self.h, self.w, 2)
        return _apply_grid(x, grid, self.params.interpolation, self.params.fill)


def _apply_grid(x: Tensor, grid: Tensor, mode: str, fill: float | list[float]) -> Tensor:
    """torchvision ``_apply_grid_transform`` with a fill: a ones channel rides along to mark
    what came from inside the image."""
    n, c, h, w = x.shape
    ones = torch.ones((n, 1, h, w), dtype=x.dtype, device=x.device)
    out = TF.grid_sample(torch.cat((x, ones), dim=1), grid, mode=mode, padding_mode="zeros",
                         align_corners=False)
    out, mask = out[:, :c], out[:, c:].expand(n, c, h, w)
    fill_list = fill if isinstance(fill, list) else [float(fill)]
    fill_img = _to(torch.tensor(fill_list, dtype=x.dtype), x.device).view(1, -1, 1, 1)
    if mode == "nearest":
        return torch.where(mask < 0.5, fill_img.expand_as(out), out)
    return (out - fill_img) * mask + fill_img


class _RandomRotation(_GridOp):
    def sample(self, n: int, gen: torch.Generator) -> Params:
        lo, hi = degree_range(self.params.degrees)
        return {"angle": _uniform(n, lo, hi, gen)}

    def apply(self, x: Tensor, p: Params) -> Tensor:
        turns = torch.remainder(p["angle"].double(), 360.0)  # F.rotate: angle % 360
        zero = torch.zeros_like(turns)
        # F.rotate turns counter-clockwise, so its matrix is the affine one for −angle.
        out = self.transform(x, _inverse_affine(-turns, zero, zero, zero + 1, zero, zero))
        # F.rotate's exact path for multiples of 90° (rot90 instead of resampling).
        special = {t for t in turns.tolist() if t in (0.0, 90.0, 180.0, 270.0)}
        for k, deg in ((0, 0.0), (2, 180.0), (1, 90.0), (3, 270.0)):
            if deg not in special or (k % 2 and self.h != self.w):
                continue
            sel = _to(turns == deg, x.device).view(-1, 1, 1, 1)
            out = torch.where(sel, torch.rot90(x, k=k, dims=(-2, -1)) if k else x, out)
        return out


class _RandomAffine(_GridOp):
    def sample(self, n: int, gen: torch.Generator) -> Params:
        prm = self.params
        lo, hi = degree_range(prm.degrees)
        out = {"angle": _uniform(n, lo, hi, gen)}
        if prm.translate is not None:
            max_dx, max_dy = float(prm.translate[0] * self.w), float(prm.translate[1] * self.h)
            out["tx"] = torch.round(_uniform(n, -max_dx, max_dx, gen))
            out["ty"] = torch.round(_uniform(n, -max_dy, max_dy, gen))
        else:
            out["tx"] = out["ty"] = torch.zeros(n)
        out["scale"] = (torch.ones(n) if prm.scale is None
                        else _uniform(n, prm.scale[0], prm.scale[1], gen))
        shear = prm.shear
        if shear is None:
            out["shear_x"] = out["shear_y"] = torch.zeros(n)
        else:
            s = degree_range(shear) if isinstance(shear, (int, float)) else tuple(shear)
            out["shear_x"] = _uniform(n, s[0], s[1], gen)
            out["shear_y"] = _uniform(n, s[2], s[3], gen) if len(s) == 4 else torch.zeros(n)
        return out

    def apply(self, x: Tensor, p: Params) -> Tensor:
        m = _inverse_affine(p["angle"], p["tx"], p["ty"], p["scale"], p["shear_x"], p["shear_y"])
        return self.transform(x, m)


def _blend(x: Tensor, other: Tensor, ratio: Tensor) -> Tensor:
    """torchvision ``_blend`` with one ratio per image."""
    r = ratio.view(-1, 1, 1, 1)
    return x.mul(r).add_(other * (1.0 - r)).clamp_(0, 1)


def _grayscale(x: Tensor) -> Tensor:
    r, g, b = x.unbind(dim=-3)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(dim=-3)


# torchvision's HSV→RGB table: which of (v, p, q, t) each of r, g, b takes, by hue sector.
_HSV_SELECT = torch.tensor([[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]])


def _hsv_to_rgb(img: Tensor) -> Tensor:
    """torchvision's ``_hsv_to_rgb``, line for line, except that its table reaches the device
    through ``_to``: torchvision copies it from pageable memory on every call, which CUDA may
    turn into a wait for the stream."""
    h, s, v = img.unbind(dim=-3)
    h6 = h.mul(6)
    i = torch.floor(h6)
    f = h6.sub_(i)
    i = i.to(dtype=torch.int32)
    sxf = s * f
    one_minus_s = 1.0 - s
    q = (1.0 - sxf).mul_(v).clamp_(0.0, 1.0)
    t = sxf.add_(one_minus_s).mul_(v).clamp_(0.0, 1.0)
    p = one_minus_s.mul_(v).clamp_(0.0, 1.0)
    i.remainder_(6)
    vpqt = torch.stack((v, p, q, t), dim=-3)
    select = _to(_HSV_SELECT, img.device)[:, i]  # (3, B, H, W)
    return vpqt.gather(-3, select.moveaxis(0, -3))


def _adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    if _rgb_to_hsv is None:  # pragma: no cover
        return torch.stack([F.adjust_hue(img, float(s)) for img, s in zip(x, shift.tolist())])
    h, s, v = _rgb_to_hsv(x).unbind(dim=-3)
    h = h.add(shift.view(-1, 1, 1)).remainder_(1.0)
    return _hsv_to_rgb(torch.stack((h, s, v), dim=-3))


class _ColorJitter(_Op):
    NAMES = ("brightness", "contrast", "saturation", "hue")

    def __init__(self, params: Any, shape: tuple[int, int, int]) -> None:
        super().__init__(params, shape)
        self.ranges = [jitter_range(getattr(params, k), hue=(k == "hue")) for k in self.NAMES]

    def sample(self, n: int, gen: torch.Generator) -> Params:
        # One random order of the four adjustments per image (torchvision: randperm(4)).
        out = {"order": torch.argsort(torch.rand(n, 4, generator=gen), dim=1)}
        for name, rng in zip(self.NAMES, self.ranges):
            if rng is not None:
                out[name] = _uniform(n, rng[0], rng[1], gen)
        return out

    def apply(self, x: Tensor, p: Params) -> Tensor:
        order = p["order"]
        dev = x.device
        active = [k for k, name in enumerate(self.NAMES) if name in p]
        if x.shape[1] == 1:  # saturation and hue: no effect on one channel (torchvision, PIL)
            active = [k for k in active if k < 2]
        if not active:
            return x
        for pos in range(4):
            for k in active:
                sel = order[:, pos] == k  # the images whose pos-th adjustment is k (CPU)
                if not sel.any():
                    continue
                f = p[self.NAMES[k]]
                if k < 3:
                    # Blends with ratio 1 are exactly the identity: the other images get 1.
                    x = self._adjust(k, x, _to(torch.where(sel, f, torch.ones_like(f)), dev))
                else:
                    # Hue has no exact identity and is the costly one: only the selected
                    # images, each once (indices from the CPU: no device sync).
                    idx = sel.nonzero().squeeze(1)
                    on_dev = _to(idx, dev)
                    sub = self._adjust(k, x.index_select(0, on_dev), _to(f[idx], dev))
                    x = x.index_copy(0, on_dev, sub)
        return x

    @staticmethod
    def _adjust(k: int, x: Tensor, f: Tensor) -> Tensor:
        if k == 0:
            return x.mul(f.view(-1, 1, 1, 1)).clamp_(0, 1)
        if k == 1:
            gray = _grayscale(x) if x.shape[1] == 3 else x
            return _blend(x, gray.mean(dim=(-3, -2, -1), keepdim=True), f)
        if k == 2:
            return _blend(x, _grayscale(x), f)
        return _adjust_hue(x, f)


def _build_op(op: AugmentOp, shape: tuple[int, int, int]) -> _Op:
    params = validate_op_params(op.op, op.model_extra or {})
    if op.op == "random_horizontal_flip":
        return _Flip(params, shape, dim=-1)
    if op.op == "random_vertical_flip":
        return _Flip(params, shape, dim=-2)
    cls = {
        "random_crop": _RandomCrop,
        "random_resized_crop": _RandomResizedCrop,
        "random_rotation": _RandomRotation,
        "random_affine": _RandomAffine,
        "color_jitter": _ColorJitter,
    }[op.op]
    return cls(params, shape)


class Augmenter:
    """``augmenter(batch, step)``: the spec's ops in order, on an (N, C, H, W) batch, with
    per-image randomness seeded from (seed, step). Deterministic; touches no global RNG."""

    def __init__(self, ops: Sequence[_Op], seed: int, shape: tuple[int, int, int]) -> None:
        self.ops = list(ops)
        self.seed = seed
        self.shape = shape

    def generator(self, step: int) -> torch.Generator:
        return torch.Generator().manual_seed(_step_seed(self.seed, step))

    @torch.no_grad()
    def __call__(self, x: Tensor, step: int) -> Tensor:
        """x: (…, C, H, W), e.g. (N, C, H, W) or an ensemble's (K, N, C, H, W); every image
        gets its own random parameters."""
        if x.dim() < 4 or tuple(x.shape[-3:]) != self.shape:
            raise ValueError(f"augment: batch of shape {tuple(x.shape)}, expected (…, *{self.shape})")
        lead = x.shape[:-3]
        x = x.reshape(-1, *self.shape)
        gen = self.generator(step)
        for op in self.ops:
            x = op(x, gen)
        return x.reshape(*lead, *self.shape)


class PackAugmenter:
    """``augmenter(batch, step)`` for a pack: batch (K, m, C, H, W), member k's m images drawn
    from member k's own stream, (its seed, step), exactly as its run alone draws them; the
    ops then run once on all K·m images (every op treats each image on its own), so a pack's
    augmentation costs one op call per op, not K."""

    def __init__(self, ops: Sequence[_Op], seeds: Sequence[int],
                 shape: tuple[int, int, int]) -> None:
        self.ops = list(ops)
        self.members = [Augmenter(ops, seed, shape) for seed in seeds]
        self.shape = shape

    @torch.no_grad()
    def __call__(self, x: Tensor, step: int) -> Tensor:
        k = len(self.members)
        if x.dim() != 5 or x.shape[0] != k or tuple(x.shape[-3:]) != self.shape:
            raise ValueError(f"pack augment: batch of shape {tuple(x.shape)}, expected "
                             f"({k}, m, *{self.shape})")
        m = x.shape[1]
        x = x.reshape(-1, *self.shape)
        gens = [a.generator(step) for a in self.members]
        for op in self.ops:
            # Each member's draws in its run's order (op by op, from its own generator).
            drawn = [op.sample(m, g) for g in gens]
            x = op.apply(x, {name: torch.cat([d[name] for d in drawn]) for name in drawn[0]})
        return x.reshape(k, m, *self.shape)


def make_pack_augmenter(
    specs: Sequence[Spec], input_shape: Sequence[int],
) -> Callable[[Tensor, int], Tensor] | None:
    """The pack's training-batch augmenter: ``specs`` differ only in seed; member k draws as
    ``make_augmenter(specs[k], …)`` would."""
    spec = specs[0]
    if not spec.augment:
        return None
    shape = _image_shape(input_shape)
    return PackAugmenter([_build_op(op, shape) for op in spec.augment],  # type: ignore[arg-type]
                         [derive_seed(s.seed, "augment") for s in specs], shape)


def _image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(f"augmentation needs images (C, H, W); this dataset's inputs are {shape}")
    return shape  # type: ignore[return-value]


def make_augmenter(
    spec: Spec, input_shape: Sequence[int], device: torch.device | str | None = None
) -> Callable[[Tensor, int], Tensor] | None:
    """The training-batch augmenter for ``spec.augment``, or None when the list is empty.

    ``input_shape`` is one example's (C, H, W). ``device`` is accepted for symmetry with the
    rest of the engine: the augmenter works on whatever device the batch is on (its random
    parameters are drawn on the CPU, so results do not depend on the device)."""
    if not spec.augment:
        return None
    shape = _image_shape(input_shape)
    return Augmenter([_build_op(op, shape) for op in spec.augment],  # type: ignore[arg-type]
                     derive_seed(spec.seed, "augment"), shape)  # type: ignore[arg-type]


# Previews moved to previews.py; their names stay importable from here, loaded on first use
# (previews.py imports this module).
_PREVIEW_NAMES = ("PREVIEW_MAX_SAMPLES", "PREVIEW_MIN_PIXELS", "jitter_trials", "preview",
                  "preview_image", "to_png")


def __getattr__(name: str) -> Any:
    if name in _PREVIEW_NAMES:
        from . import previews

        return getattr(previews, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
