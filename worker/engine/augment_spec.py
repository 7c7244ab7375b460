"""The augmentation part of the spec: one parameter model per op, checked against the image
shapes of the dataset catalog.

Pure pydantic (no torch), so ``spec.py`` can import it. ``AugmentOp`` in ``spec.py`` keeps the
op name in ``op`` and the op's parameters as extra fields; ``validate_op_params`` checks those
against the op's model here (unknown parameter or bad value: an error at
``augment.<i>.<param>``), and ``check_augment_fits`` checks the list against the dataset (image
datasets only; ``size`` must be the image size; ``fill`` has 1 or C values).

Parameter names, meanings and defaults follow ``torchvision.transforms.v2`` (RandomCrop,
RandomHorizontalFlip, …, ColorJitter) except where noted: ``size`` defaults to the image size,
and ops that take a required argument in torchvision (``degrees``) have a default here so that
``{op: random_rotation}`` alone is a valid spec.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .datasets.catalog import IMAGE_SHAPES, TWO_D_DATASETS, image_shape


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


PositiveInt = Annotated[int, Field(ge=1, le=4096)]
Size = PositiveInt | tuple[PositiveInt, PositiveInt] | None
Interpolation = Literal["nearest", "bilinear"]

_SIZE_DOC = (
    "Output size, int or [h, w]; must be the image size (the default): the network's input "
    "shape is fixed."
)
_FILL_DOC = "Value of pixels coming from outside the image: one number or one per channel."


def _check_fill(v: Any) -> Any:
    if isinstance(v, list) and not 1 <= len(v) <= 4:
        raise ValueError("fill is one number or a list of one value per channel")
    return v


Fill = Annotated[float | list[float], AfterValidator(_check_fill)]


class RandomCropParams(_Params):
    """torchvision RandomCrop: pad, then crop ``size`` at a random place (a random shift)."""

    size: Size = Field(None, description=_SIZE_DOC)
    padding: Annotated[int, Field(ge=0, le=1024)] | list[Annotated[int, Field(ge=0, le=1024)]] | None = Field(
        None,
        description="Padding before the crop: one int (all sides), [left/right, top/bottom] or "
        "[left, top, right, bottom].",
    )
    fill: Fill = Field(0.0, description=_FILL_DOC)
    padding_mode: Literal["constant", "edge", "reflect", "symmetric"] = Field(
        "constant", description="How the padding is filled."
    )

    @field_validator("padding")
    @classmethod
    def _padding_len(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) not in (1, 2, 4):
            raise ValueError("padding is an int or a list of 1, 2 or 4 ints")
        return v



class FlipParams(_Params):
    """torchvision RandomHorizontalFlip / RandomVerticalFlip."""

    p: float = Field(0.5, ge=0, le=1, description="Probability that an image is flipped.")


def _ordered_pair(v: tuple[float, float], name: str, low: float, high: float, strict_low: bool):
    a, b = v
    ok_low = a > low if strict_low else a >= low
    if not (ok_low and a <= b <= high):
        op = ">" if strict_low else "≥"
        raise ValueError(f"{name} must be [min, max] with min {op} {low}, min ≤ max ≤ {high}")
    return v


class RandomResizedCropParams(_Params):
    """torchvision RandomResizedCrop: a crop of random area and aspect ratio, resized to ``size``."""

    size: Size = Field(None, description=_SIZE_DOC)
    scale: tuple[float, float] = Field(
        (0.08, 1.0), description="[min, max] area of the crop, as a share of the image's area."
    )
    ratio: tuple[float, float] = Field(
        (3 / 4, 4 / 3), description="[min, max] aspect ratio (width / height) of the crop."
    )
    interpolation: Interpolation = Field("bilinear", description="Resampling of the crop.")

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _ordered_pair(v, "scale", 0.0, 1.0, strict_low=True)

    @field_validator("ratio")
    @classmethod
    def _ratio(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _ordered_pair(v, "ratio", 0.0, 100.0, strict_low=True)


def _check_degrees(v: Any) -> Any:
    if isinstance(v, tuple):
        _ordered_pair(v, "degrees", -360.0, 360.0, strict_low=False)
    return v


Degrees = Annotated[
    Annotated[float, Field(ge=0, le=360)] | tuple[float, float], AfterValidator(_check_degrees)
]


class RandomRotationParams(_Params):
    """torchvision RandomRotation (expand=False: the image keeps its size)."""

    degrees: Degrees = Field(
        15.0, description="d: angle uniform in [-d, d]; or [min, max]. Counter-clockwise."
    )
    interpolation: Interpolation = Field("nearest", description="torchvision's default: nearest.")
    fill: Fill = Field(0.0, description=_FILL_DOC)



class RandomAffineParams(_Params):
    """torchvision RandomAffine: rotation, translation, scale and shear about the centre."""

    degrees: Degrees = Field(0.0, description="d: angle uniform in [-d, d]; or [min, max].")
    translate: tuple[float, float] | None = Field(
        None, description="[a, b]: shift up to a·width horizontally and b·height vertically."
    )
    scale: tuple[float, float] | None = Field(None, description="[min, max] zoom factor.")
    shear: (
        Annotated[float, Field(ge=0, le=90)]
        | tuple[float, float]
        | tuple[float, float, float, float]
        | None
    ) = Field(
        None,
        description="s: x-shear in [-s, s] degrees; [min, max]: x-shear; "
        "[xmin, xmax, ymin, ymax]: x- and y-shear.",
    )
    interpolation: Interpolation = Field("nearest", description="torchvision's default: nearest.")
    fill: Fill = Field(0.0, description=_FILL_DOC)


    @field_validator("translate")
    @classmethod
    def _translate(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not all(0 <= t <= 1 for t in v):
            raise ValueError("translate values must be between 0 and 1")
        return v

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        return v if v is None else _ordered_pair(v, "scale", 0.0, 100.0, strict_low=True)

    @field_validator("shear")
    @classmethod
    def _shear(cls, v: Any) -> Any:
        if isinstance(v, tuple):
            for k in range(0, len(v), 2):
                _ordered_pair(v[k:k + 2], "shear", -90.0, 90.0, strict_low=True)
        return v


JitterAmount = Annotated[float, Field(ge=0, le=100)] | tuple[float, float]


class ColorJitterParams(_Params):
    """torchvision ColorJitter. Saturation and hue leave 1-channel images unchanged (as in
    torchvision and PIL)."""

    brightness: JitterAmount = Field(
        0.0, description="b: factor uniform in [max(0, 1 − b), 1 + b]; or [min, max]."
    )
    contrast: JitterAmount = Field(
        0.0, description="c: factor uniform in [max(0, 1 − c), 1 + c]; or [min, max]."
    )
    saturation: JitterAmount = Field(
        0.0, description="s: factor uniform in [max(0, 1 − s), 1 + s]; or [min, max]."
    )
    hue: Annotated[float, Field(ge=0, le=0.5)] | tuple[float, float] = Field(
        0.0, description="h ≤ 0.5: hue shift uniform in [−h, h]; or [min, max] within ±0.5."
    )

    @field_validator("brightness", "contrast", "saturation")
    @classmethod
    def _pair(cls, v: Any) -> Any:
        if isinstance(v, tuple):
            _ordered_pair(v, "factor range", 0.0, math.inf, strict_low=False)
        return v

    @field_validator("hue")
    @classmethod
    def _hue(cls, v: Any) -> Any:
        if isinstance(v, tuple):
            _ordered_pair(v, "hue", -0.5, 0.5, strict_low=False)
        return v


OP_PARAMS: dict[str, type[_Params]] = {
    "random_crop": RandomCropParams,
    "random_horizontal_flip": FlipParams,
    "random_vertical_flip": FlipParams,
    "random_resized_crop": RandomResizedCropParams,
    "random_rotation": RandomRotationParams,
    "random_affine": RandomAffineParams,
    "color_jitter": ColorJitterParams,
}


def validate_op_params(op: str, params: dict[str, Any]) -> _Params:
    """The op's parameters as its model; a pydantic ValidationError (raised inside AugmentOp's
    validator it is reported at ``augment.<i>.<param>``)."""
    try:
        return OP_PARAMS[op].model_validate(params)
    except ValidationError as e:
        raise _collapse_union_errors(e, op) from None


def _collapse_union_errors(e: ValidationError, op: str) -> ValidationError:
    """pydantic reports a value that fits no member of ``float | [min, max]`` once per member,
    at ``<param>.<member type>``; report it once, at ``<param>``."""
    out: list[dict] = []
    unions: dict[str, list[str]] = {}
    for err in e.errors(include_url=False):
        loc = err["loc"]
        if len(loc) >= 2 and isinstance(loc[1], str):
            unions.setdefault(str(loc[0]), []).append(err["msg"].removeprefix("Value error, "))
        else:
            out.append(err)
    for param, msgs in unions.items():
        text = " — or — ".join(dict.fromkeys(msgs))
        out.append(_error((param,), params_value(e, param), f"{op}.{param}: {text}"))
    return ValidationError.from_exception_data(e.title, out)


def params_value(e: ValidationError, param: str) -> Any:
    for err in e.errors(include_url=False):
        if err["loc"] and err["loc"][0] == param:
            return err.get("input")
    return None


# --- helpers shared with augment.py ---------------------------------------------------------


def degree_range(v: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(v, (int, float)):
        return (-float(v), float(v))
    return (float(v[0]), float(v[1]))


def jitter_range(v: float | Sequence[float], *, hue: bool = False) -> tuple[float, float] | None:
    """torchvision ColorJitter._check_input: the factor range, or None when the op is off."""
    center = 0.0 if hue else 1.0
    if isinstance(v, (int, float)):
        lo, hi = center - float(v), center + float(v)
        if not hue:
            lo = max(lo, 0.0)
    else:
        lo, hi = float(v[0]), float(v[1])
    return None if lo == hi == center else (lo, hi)


def size_hw(size: Size, default: tuple[int, int]) -> tuple[int, int]:
    if size is None:
        return default
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


def pad_lrtb(padding: int | list[int] | None) -> tuple[int, int, int, int]:
    """torchvision's padding forms as (left, right, top, bottom)."""
    if padding is None:
        return (0, 0, 0, 0)
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 1:
        return (padding[0],) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return (padding[0], padding[2], padding[1], padding[3])


def _error(loc: tuple, value: Any, message: str) -> dict:
    return {"type": "value_error", "loc": loc, "input": value, "ctx": {"error": ValueError(message)}}


def check_augment_fits(augment: Sequence[Any], dataset: str) -> None:
    """Check the ops against the dataset's images; raise a ValidationError whose locations are
    ``augment`` or ``augment.<i>.<param>`` (relative to the spec)."""
    if not augment:
        return
    shape = image_shape(dataset)
    if shape is None:
        kind = "a 2-D" if dataset in TWO_D_DATASETS else "not an image"
        raise ValidationError.from_exception_data("Spec", [_error(
            ("augment",), [a.op for a in augment],
            f"augmentation applies to image datasets only ({', '.join(IMAGE_SHAPES)}, "
            f"folder:<id>); {dataset!r} is {kind} dataset",
        )])
    _, h, w = shape
    errors = []
    for i, a in enumerate(augment):
        params = validate_op_params(a.op, a.model_extra or {})
        size = getattr(params, "size", None)
        if size is not None and size_hw(size, (h, w)) != (h, w):
            errors.append(_error(
                ("augment", i, "size"), size,
                f"size must be the image size {h}×{w} of {dataset!r} (the network's input shape "
                "is fixed); leave it out, and use padding to shift the image",
            ))
    errors += augment_shape_errors(augment, shape, repr(dataset))
    if errors:
        raise ValidationError.from_exception_data("Spec", errors)


def augment_shape_errors(augment: Sequence[Any], shape: tuple[int, int, int], what: str) -> list:
    """What the ops cannot do to images of ``shape`` (C, H, W), named ``what`` (a dataset's
    images, or one image of one's own in a preview): a fill with the wrong number of channels,
    reflect padding as large as the image (torch refuses it)."""
    c, h, w = shape
    errors = []
    for i, a in enumerate(augment):
        params = validate_op_params(a.op, a.model_extra or {})
        fill = getattr(params, "fill", None)
        if isinstance(fill, list) and len(fill) not in (1, c):
            errors.append(_error(
                ("augment", i, "fill"), fill,
                f"fill has {len(fill)} values; {what} images have {c} channel(s)",
            ))
        if getattr(params, "padding_mode", None) == "reflect":
            left, right, top, bottom = pad_lrtb(params.padding)
            if max(left, right) >= w or max(top, bottom) >= h:
                errors.append(_error(
                    ("augment", i, "padding"), params.padding,
                    f"reflect padding must be smaller than the image ({h}×{w})",
                ))
    return errors
