"""The model file, one format for every writer and reader: ``torch.save({spec, state_dict,
classes, input_shape})``. The worker stores it as a run's model (the API's download hands it
out as is), ``epoque train`` writes it as model.pt, and predict.py loads it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .spec import Spec, parse_spec


@dataclass
class SavedModel:
    spec: Spec
    state_dict: dict[str, torch.Tensor]
    classes: list[str]
    input_shape: tuple[int, ...]  # one example's shape, e.g. (1, 8, 8) for digits


def model_bytes(spec: Spec, outcome: Any) -> bytes:
    """The file of the model a run returned (a TrainOutcome: state_dict, classes,
    input_shape)."""
    buffer = io.BytesIO()
    torch.save({"spec": spec.model_dump(mode="json"), "state_dict": outcome.state_dict,
                "classes": list(outcome.classes),
                "input_shape": [int(d) for d in outcome.input_shape]}, buffer)
    return buffer.getvalue()


def write_model(path: Path, spec: Spec, outcome: Any) -> None:
    path.write_bytes(model_bytes(spec, outcome))


def read_model(blob: bytes) -> SavedModel:
    saved: dict[str, Any] = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    return SavedModel(spec=parse_spec(saved["spec"]), state_dict=saved["state_dict"],
                      classes=list(saved["classes"]),
                      input_shape=tuple(int(d) for d in saved["input_shape"]))
