"""The experiment spec: one pydantic model, the public contract of SPEC.md.

Every field has a default, so ``Spec()`` (or ``{}``) is a small MLP on digits. Unknown
fields are rejected. What the datasets are (which names exist, which are synthetic or 2-D)
is read from the dataset catalog, never repeated here. No torch: the API imports this module.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .augment_spec import OP_PARAMS, check_augment_fits, validate_op_params
from .datasets.catalog import BUILTIN_DATASETS, SYNTHETIC_DATASETS, TWO_D_DATASETS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DataSpec(_Strict):
    dataset: str = Field(
        "digits",
        description="Dataset: digits, mnist1d, moons, circles, spirals, xor, shapes, mnist, "
        "fashion_mnist, cifar10 or folder:<uploaded-dataset-id>.",
        json_schema_extra={"examples": list(BUILTIN_DATASETS)},
    )
    n_samples: int | None = Field(
        None, ge=10, le=1_000_000, description="Number of examples (synthetic sets only)."
    )
    noise: float | None = Field(None, ge=0, le=10, description="Noise level (2-D sets only).")
    val_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of the training part kept aside as S_v."
    )
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share held out for test where there is no official split."
    )

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v.startswith("folder:"):
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v[len("folder:"):]):
                raise ValueError(
                    "folder datasets are written folder:<uploaded-dataset-id>, the id made of "
                    "1 to 64 letters, digits, _ or -"
                )
            return v
        if v not in BUILTIN_DATASETS:
            raise ValueError(
                f"unknown dataset {v!r}; choose one of {', '.join(BUILTIN_DATASETS)} "
                "or folder:<id>"
            )
        return v

    @model_validator(mode="after")
    def _synthetic_only(self) -> DataSpec:
        if self.n_samples is not None and self.dataset not in SYNTHETIC_DATASETS:
            raise ValueError(f"n_samples applies to synthetic datasets only, not {self.dataset!r}")
        if self.noise is not None and self.dataset not in TWO_D_DATASETS:
            raise ValueError(f"noise applies to 2-D datasets only, not {self.dataset!r}")
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% for training")
        return self


class DropoutSpec(_Strict):
    p_inc_input: float = Field(
        1.0, gt=0, le=1, description="Inclusion probability on the input (course: 0.8)."
    )
    p_inc_hidden: float = Field(
        1.0, gt=0, le=1, description="Inclusion probability on hidden layers (course: 0.5)."
    )
    inference: Literal["scale", "mc"] = Field(
        "scale", description="scale: strategy B (weights scaled); mc: strategy A (average masks)."
    )
    mc_samples: int = Field(20, ge=1, le=1000, description="Masks averaged by strategy A.")


class InitSpec(_Strict):
    scheme: Literal[
        "pytorch", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
        "normal", "constant", "zeros",
    ] = Field("pytorch", description="Weight initialisation scheme.")
    value: float = Field(0.0, description="Weight value for the constant scheme.")
    std: float = Field(0.01, gt=0, description="Standard deviation for the normal scheme.")


class ModelSpec(_Strict):
    arch: Literal["mlp", "cnn"] = Field("mlp", description="mlp or cnn.")
    hidden: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [128, 128],
        max_length=32,
        description="mlp: hidden layer widths; cnn: channels per conv block.",
    )
    activation: Literal["relu", "tanh", "sigmoid", "leaky_relu"] = Field(
        "relu", description="Activation of hidden layers."
    )
    batchnorm: bool = Field(False, description="Batch normalisation after each hidden layer.")
    batchnorm_eval: Literal["running", "full_pass"] = Field(
        "running",
        description="Statistics used at prediction: running average, or one full pass over S.",
    )
    dropout: DropoutSpec = Field(default_factory=DropoutSpec, description="Dropout.")
    init: InitSpec = Field(default_factory=InitSpec, description="Initialisation.")



class ScheduleSpec(_Strict):
    kind: Literal["constant", "inv_sqrt", "step", "piecewise", "exponential", "cosine"] = Field(
        "constant", description="How η changes over epochs."
    )
    milestones: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list, max_length=100, description="step: epochs where η is multiplied by gamma."
    )
    gamma: float = Field(0.1, gt=0, description="step/exponential: multiplicative factor.")
    table: list[tuple[Annotated[int, Field(ge=0)], Annotated[float, Field(gt=0)]]] = Field(
        default_factory=list,
        max_length=100,
        description="piecewise: [[epoch, lr], ...] e.g. [[0,0.1],[75,0.01],[125,0.001]].",
    )
    per: Literal["epoch", "step"] = Field(
        "epoch",
        description="What t counts in every schedule (η₀/√t, milestones, tables): epochs or "
        "minibatch steps, from 1.",
    )


class OptimSpec(_Strict):
    method: Literal["sgd", "adam"] = Field(
        "sgd", description="sgd: the course's momentum update v ← αv − ηg, z ← z + v; or adam."
    )
    lr: float = Field(0.1, gt=0, le=100, description="Learning rate η.")
    momentum: float = Field(0.9, ge=0, lt=1, description="Momentum α (0 = plain SGD).")
    batch_size: int | Literal["full"] = Field(
        32, description="Minibatch size m; 1 = pure SGD; \"full\" = the whole training set."
    )
    weight_decay: float = Field(
        0.0, ge=0, description="λ in (λ/2)‖w‖², biases and batchnorm parameters excluded."
    )
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec, description="η schedule.")
    sampling: Literal["shuffle", "with_replacement"] = Field(
        "shuffle",
        description="shuffle: ⌊n/m⌋ disjoint minibatches an epoch; with_replacement: each step "
        "draws its m indices uniformly from 1..n (the course's SGD).",
    )

    @field_validator("batch_size")
    @classmethod
    def _positive_batch(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 1:
            raise ValueError("batch_size must be at least 1 (or \"full\")")
        return v



class EarlyStoppingSpec(_Strict):
    patience: int | None = Field(
        None, ge=1, le=10_000, description="Patience p in epochs; empty = off."
    )
    monitor: Literal["val_accuracy", "val_loss"] = Field(
        "val_accuracy", description="What improves the best model z*."
    )


class TrainingSpec(_Strict):
    max_epochs: int = Field(50, ge=1, le=100_000, description="Number of epochs T.")
    early_stopping: EarlyStoppingSpec = Field(
        default_factory=EarlyStoppingSpec, description="Early stopping (COURSE.md §3)."
    )
    log_every_steps: int | None = Field(
        None, ge=1, description="Also stream the minibatch loss every N steps."
    )
    keep: Literal["auto", "best", "last"] = Field(
        "auto",
        description="The model a run returns: best (z*, best on S_v), last (the last epoch's), "
        "or auto: best with early stopping, last without.",
    )



class AugmentOp(_Strict):
    """One augmentation step; extra parameters depend on the op (augment_spec.py has one
    parameter model per op, published in the schema under ``x-op-params``)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "x-op-params": {op: m.model_json_schema() for op, m in OP_PARAMS.items()}
        },
    )
    op: Literal[
        "random_crop", "random_horizontal_flip", "random_vertical_flip", "random_resized_crop",
        "random_rotation", "random_affine", "color_jitter",
    ] = Field(description="torchvision transform to apply to training batches.")

    @model_validator(mode="after")
    def _params(self) -> AugmentOp:
        # Errors come out at augment.<i>.<param>.
        validate_op_params(self.op, self.model_extra or {})
        return self


class EnsembleSpec(_Strict):
    members: int = Field(1, ge=1, le=64, description="K networks trained from seeds seed…seed+K−1.")
    combine: Literal["mean", "vote"] = Field(
        "mean", description="mean of probabilities, or majority vote."
    )
    select: Literal["per_member", "joint"] = Field(
        "per_member",
        description="per_member: each member keeps its own z* (own validation curve and "
        "patience); joint: one z* for the ensemble, chosen on the combined prediction.",
    )



class DiagnosticsSpec(_Strict):
    layer_stats: bool = Field(True, description="Per-layer activation and gradient std each epoch.")
    grad_noise: bool = Field(
        False, description="Variance of the minibatch gradient for several m, every few epochs."
    )
    boundary: Literal["auto", "on", "off"] | bool = Field(
        "auto", description="Decision-boundary grid for 2-D datasets."
    )


class SpeedSpec(_Strict):
    """How fast the same computation runs. The defaults are plain float32 eager PyTorch; neither
    option changes what is trained, only how it runs."""

    precision: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="bfloat16: forward passes under torch.autocast(bfloat16), faster on GPUs "
        "with bf16 tensor cores; parameters, gradients and the optimiser stay float32.",
    )
    compile: bool = Field(
        False,
        description="torch.compile the network: a slower first epoch (compiling), faster steps "
        "after it, mostly on a GPU; the same figures up to float rounding.",
    )
    auto: bool = Field(
        True,
        description="On a GPU, with precision float32 and compile off (the defaults), time a "
        "few throwaway training steps of float32 eager, bfloat16, compiled (long runs only) "
        "and CUDA-graph captured, and keep the fastest (at least 5 % faster than float32 "
        "eager, else float32 eager); result.speed says which. Runs under 1 000 steps are "
        "not timed, nor is anything on the CPU: the options stay as set. false: run exactly "
        "as set.",
    )
    cuda_graph: bool = Field(
        False,
        description="On a GPU, capture the fixed-shape training step (forward, backward, "
        "optimiser) once in a CUDA graph and replay it: the same computation without "
        "per-operation launch costs. Ignored on the CPU (result.speed says so) and for what "
        "cannot be captured (the step's reasons are in result.speed).",
    )


class Spec(_Strict):
    """An experiment: data, model, optimisation, training, augmentation, ensemble, diagnostics,
    speed."""

    name: str | None = Field(None, max_length=200, description="Optional label.")
    seed: int = Field(
        0, ge=0, le=2**31 - 1,
        description="Everything random derives from it: split, init, order, dropout, augmentation.",
    )
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|cuda|cuda:\d+)$",
        description="auto | cpu | cuda | cuda:N (auto = cuda when the worker has it).",
    )
    data: DataSpec = Field(default_factory=DataSpec, description="Data.")
    model: ModelSpec = Field(default_factory=ModelSpec, description="Model.")
    optim: OptimSpec = Field(default_factory=OptimSpec, description="Optimisation.")
    training: TrainingSpec = Field(default_factory=TrainingSpec, description="Training.")
    augment: list[AugmentOp] = Field(
        default_factory=list, max_length=20,
        description="Ordered augmentation ops, applied to training data only.",
    )
    ensemble: EnsembleSpec = Field(default_factory=EnsembleSpec, description="Ensemble.")
    diagnostics: DiagnosticsSpec = Field(
        default_factory=DiagnosticsSpec, description="Diagnostics."
    )
    speed: SpeedSpec = Field(
        default_factory=SpeedSpec,
        description="Speed: precision and compilation.",
    )

    @model_validator(mode="after")
    def _augment_fits_data(self) -> Spec:
        # Image datasets only; size = the image size; fill has 1 or C values.
        check_augment_fits(self.augment, self.data.dataset)
        return self

    @model_validator(mode="after")
    def _model_fits_data(self) -> Spec:
        dataset = self.data.dataset
        if self.model.batchnorm and self.optim.batch_size == 1:
            raise ValueError(
                "model.batchnorm needs optim.batch_size of at least 2: batchnorm normalises each "
                "unit over the minibatch, and one example always normalises to β (its variance "
                "is 0), so nothing would be learned through it"
            )
        if self.model.arch == "cnn" and dataset in TWO_D_DATASETS:
            raise ValueError(
                f"model.arch 'cnn' needs images or signals; {dataset!r} is a set of 2-D points: "
                "use arch 'mlp'"
            )
        if self.diagnostics.boundary in ("on", True) and dataset not in TWO_D_DATASETS:
            raise ValueError(
                "diagnostics.boundary 'on' needs a 2-D dataset "
                f"({', '.join(sorted(TWO_D_DATASETS))}); {dataset!r} is not one: "
                "use 'auto' or 'off'"
            )
        return self


def parse_spec(data: dict[str, Any] | None) -> Spec:
    """Validate a spec from plain data (JSON or YAML); raises pydantic.ValidationError."""
    return Spec.model_validate(data or {})


# --- predicates on a spec (no torch: the API groups a study's runs with them) ----------------


def pack_reason(spec: Spec) -> str | None:
    """Why runs of this spec cannot be packed, or None when they can."""
    if spec.ensemble.members > 1:
        return "an ensemble is a stacked network already"
    if spec.model.batchnorm and spec.model.batchnorm_eval == "full_pass":
        return "full-pass batchnorm statistics are measured on one shared training set"
    return None


def pack_key(spec: Spec) -> str:
    """Equal for runs that differ only in seed (and name): those a pack may hold together."""
    fields = spec.model_dump(mode="json")
    fields.pop("seed")
    fields.pop("name")
    return json.dumps(fields, sort_keys=True)
