"""Augmentation previews: the same code path as training, as base64 PNGs."""

from __future__ import annotations

import base64
import io
import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from backend.config import get_settings
from backend.errors import NotFound
from backend.spec_errors import SpecInvalid
from worker.engine.spec import AugmentOp

router = APIRouter(prefix="/api/previews", tags=["previews"])

# An image of one's own is shrunk to at most this side: previews are for looking, not training.
OWN_IMAGE_SIDE = 128


class AugmentPreviewIn(BaseModel):
    dataset: str = Field("digits", description="A dataset name as in a spec.")
    index: int = Field(0, ge=0, description="Which example (in the dataset's own order).")
    augment: list[dict[str, Any]] = Field(default_factory=list, max_length=20,
                                          description="Augmentation ops, as in a spec.")
    n: int = Field(8, ge=1, le=64, description="How many augmented samples.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Sample k uses seed + k.")


class JitterPreviewIn(BaseModel):
    dataset: str = "shapes"
    index: int = Field(0, ge=0)
    brightness: float = Field(0.4, ge=0, le=10)
    contrast: float = Field(0.4, ge=0, le=10)
    saturation: float = Field(0.4, ge=0, le=10)
    hue: float = Field(0.1, ge=0, le=0.5)
    trials: int = Field(4, ge=1, le=16)
    seed: int = Field(0, ge=0, le=2**31 - 1)


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def _encode(value: Any) -> Any:
    """PNG bytes anywhere in the engine's answer become base64 text."""
    if isinstance(value, bytes):
        return _b64(value)
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


async def _call(name: str, **kwargs: Any) -> dict[str, Any]:
    """``worker.engine.previews.<name>(**kwargs)`` off the event loop. The module (and torch
    with it) is imported on the first preview, not when the API starts."""

    def call() -> Any:
        from worker.engine import previews

        return getattr(previews, name)(**kwargs)

    try:
        return _encode(await run_in_threadpool(call))
    except ValidationError as exc:
        raise SpecInvalid.from_validation(exc) from None
    except IndexError as exc:
        raise SpecInvalid.one("index", str(exc)) from None
    except FileNotFoundError as exc:
        raise NotFound(str(exc)) from None
    except ValueError as exc:
        raise SpecInvalid.one("dataset", str(exc)) from None


@router.post("/augment")
async def preview_augment(body: AugmentPreviewIn) -> dict[str, Any]:
    """One example, augmented ``n`` times exactly as a training run with seed+k would."""
    return await _call("preview", dataset=body.dataset, index=body.index,
                       augment_ops=body.augment, n=body.n, seed=body.seed,
                       data_root=get_settings().data_dir / "datasets")


@router.post("/jitter")
async def preview_jitter(body: JitterPreviewIn) -> dict[str, Any]:
    """ColorJitter one component at a time, trials #0…#N−1 (the course's slides)."""
    return await _call("jitter_trials", dataset=body.dataset, index=body.index,
                       brightness=body.brightness, contrast=body.contrast,
                       saturation=body.saturation, hue=body.hue, trials=body.trials,
                       seed=body.seed, data_root=get_settings().data_dir / "datasets")


def _own_image(data: bytes, max_pixels: int) -> Any:
    """The uploaded image as a (C, H, W) float32 numpy array in [0, 1]."""
    import numpy as np  # only here: the API process otherwise needs no numpy

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise SpecInvalid.one("file", f"image is {img.width}×{img.height}; the limit "
                                              f"max_image_pixels is {max_pixels}")
            img = img.convert("RGB")
            img.thumbnail((OWN_IMAGE_SIDE, OWN_IMAGE_SIDE))
            array = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise SpecInvalid.one("file", f"not a readable image: {exc}") from None
    return np.ascontiguousarray(array.transpose(2, 0, 1))


@router.post("/image")
async def preview_image(
    file: Annotated[UploadFile, File(description="An image of your own (PNG, JPEG, …).")],
    augment: Annotated[str, Form(description="The ops as a JSON list, as in a spec.")] = "[]",
    n: Annotated[int, Form(ge=1, le=64)] = 8,
    seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
) -> dict[str, Any]:
    """Your own image through an augmentation pipeline, the same code path as training."""
    settings = get_settings()
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise SpecInvalid.one("file", f"larger than max_upload_bytes ({settings.max_upload_bytes})")
    try:
        ops = json.loads(augment)
    except json.JSONDecodeError as exc:
        raise SpecInvalid.one("augment", f"not valid JSON: {exc}") from None
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise SpecInvalid.one("augment", "expected a JSON list of ops like {\"op\": ...}")
    for i, op in enumerate(ops):
        try:
            AugmentOp.model_validate(op)
        except ValidationError as exc:
            raise SpecInvalid.from_validation(exc, prefix=("augment", str(i))) from None
    image = _own_image(data, settings.max_image_pixels)
    return await _call("preview_image", image=image, augment_ops=ops, n=n, seed=seed)
