"""Augmentation previews: the same code path as training, as base64 PNGs."""

from __future__ import annotations

import base64
import functools
import json
from typing import Annotated, Any, BinaryIO

import anyio
import anyio.to_thread
from fastapi import APIRouter, File, Form, Request, UploadFile
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field, ValidationError

from backend.config import get_settings
from backend.errors import NotFound
from backend.spec_errors import SpecInvalid
from backend.spec_limits import check_finite
from worker.engine.augment_spec import augment_shape_errors
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


def _limiter(request: Request) -> anyio.CapacityLimiter:
    """At most EPOQUE_PREVIEW_CONCURRENCY previews decode and draw at once, in threads (never
    on the event loop: 32 previews of 4096² images held /api/health for 3 s); the others wait.
    One limiter per app, made in its event loop."""
    limiter = getattr(request.app.state, "preview_limiter", None)
    if limiter is None:
        limiter = anyio.CapacityLimiter(get_settings().preview_concurrency)
        request.app.state.preview_limiter = limiter
    return limiter


def _previews(name: str) -> Any:
    """``worker.engine.previews.<name>``, imported in the preview's thread on first use: the API
    process loads torch only when a preview is asked for."""

    def call(**kwargs: Any) -> Any:
        from worker.engine import previews

        return getattr(previews, name)(**kwargs)

    return call


async def _call(request: Request, fn: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return _encode(await anyio.to_thread.run_sync(
            functools.partial(fn, **kwargs), limiter=_limiter(request)))
    except ValidationError as exc:
        raise SpecInvalid.from_validation(exc) from None
    except IndexError as exc:
        raise SpecInvalid.one("index", str(exc)) from None
    except FileNotFoundError as exc:
        raise NotFound(str(exc)) from None
    except ValueError as exc:
        raise SpecInvalid.one(_field_of(str(exc), kwargs), str(exc)) from None
    except RuntimeError as exc:  # torch refusing what an op asks of this image
        raise SpecInvalid.one("augment", f"the ops cannot be applied to this image: {exc}") \
            from None


def _field_of(message: str, fields: dict[str, Any]) -> str:
    """The request field an engine ValueError is about: the one its message starts with
    ("n must be…", "augment: …"), else the dataset (unknown, not images, files absent)."""
    head = message.split(maxsplit=1)[0].rstrip(":") if message else ""
    if head.startswith("augment"):
        return "augment"
    return head if head in fields and head != "data_root" else "dataset"


@router.post("/augment")
async def preview_augment(body: AugmentPreviewIn, request: Request) -> dict[str, Any]:
    """One example, augmented ``n`` times exactly as a training run with seed+k would."""
    check_finite(body.augment, "augment")
    return await _call(request, _previews("preview"), dataset=body.dataset, index=body.index,
                       augment_ops=body.augment, n=body.n, seed=body.seed,
                       data_root=get_settings().data_dir / "datasets")


@router.post("/jitter")
async def preview_jitter(body: JitterPreviewIn, request: Request) -> dict[str, Any]:
    """ColorJitter one component at a time, trials #0…#N−1 (the course's slides)."""
    return await _call(request, _previews("jitter_trials"), dataset=body.dataset, index=body.index,
                       brightness=body.brightness, contrast=body.contrast,
                       saturation=body.saturation, hue=body.hue, trials=body.trials,
                       seed=body.seed, data_root=get_settings().data_dir / "datasets")


def _own_image(source: BinaryIO, max_pixels: int) -> Any:
    """The uploaded image as a (C, H, W) float32 numpy array in [0, 1]."""
    import numpy as np  # only here: the API process otherwise needs no numpy

    try:
        with Image.open(source) as img:
            if img.width * img.height > max_pixels:
                raise SpecInvalid.one("file", f"image is {img.width}×{img.height}; the limit "
                                              f"max_image_pixels is {max_pixels}")
            img = img.convert("RGB")
            img.thumbnail((OWN_IMAGE_SIDE, OWN_IMAGE_SIDE))
            array = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        # PIL's reason names a BytesIO object: the format list says more.
        raise SpecInvalid.one("file", "not a readable image (PNG, JPEG, GIF, BMP, TIFF, "
                                      "WebP…)") from None
    return np.ascontiguousarray(array.transpose(2, 0, 1))


@router.post("/image")
async def preview_image(
    request: Request,
    file: Annotated[UploadFile, File(description="An image of your own (PNG, JPEG, …).")],
    augment: Annotated[str, Form(description="The ops as a JSON list, as in a spec.")] = "[]",
    n: Annotated[int, Form(ge=1, le=64)] = 8,
    seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
) -> dict[str, Any]:
    """Your own image through an augmentation pipeline, the same code path as training."""
    settings = get_settings()
    # The upload waits on disk (Starlette spools it) and is read in the preview's thread, once
    # its turn comes: 32 waiting 40 MB images no longer sit in memory together.
    if file.size is not None and file.size > settings.max_upload_bytes:
        raise SpecInvalid.one("file", f"larger than max_upload_bytes ({settings.max_upload_bytes})")
    try:
        ops = json.loads(augment)
    except json.JSONDecodeError as exc:
        raise SpecInvalid.one("augment", f"not valid JSON: {exc}") from None
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise SpecInvalid.one("augment", "expected a JSON list of ops like {\"op\": ...}")
    check_finite(ops, "augment")
    for i, op in enumerate(ops):
        try:
            AugmentOp.model_validate(op)
        except ValidationError as exc:
            raise SpecInvalid.from_validation(exc, prefix=("augment", str(i))) from None
    return await _call(request, _own_preview, upload=file.file,
                       max_pixels=settings.max_image_pixels, augment_ops=ops, n=n, seed=seed)


def _own_preview(upload: BinaryIO, max_pixels: int, augment_ops: list[dict[str, Any]],
                 **kwargs: Any) -> dict[str, Any]:
    """Decoding is heavy too: done in the preview's thread, with the drawing. The ops are
    checked against this image's size first (reflect padding as large as it: 422, not 500)."""
    upload.seek(0)
    image = _own_image(upload, max_pixels)
    errors = augment_shape_errors([AugmentOp.model_validate(op) for op in augment_ops],
                                  tuple(image.shape), "your image's")
    if errors:
        raise ValidationError.from_exception_data("Spec", errors)
    return _previews("preview_image")(image=image, augment_ops=augment_ops, **kwargs)
