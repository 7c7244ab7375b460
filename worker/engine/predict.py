"""Load a saved model and predict with it (used by the API's /predict and by scripts).

The file's format is modelfile.py's; loading it builds the network from its spec, so no
training code is involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .ensemble import probabilities
from .modelfile import read_model
from .models import build_model


class PredictError(ValueError):
    """Inputs that do not fit the model: the message says what was expected."""


@dataclass
class Predictor:
    model: torch.nn.Module
    classes: list[str]
    input_shape: tuple[int, ...]

    @classmethod
    def from_bytes(cls, blob: bytes) -> Predictor:
        saved = read_model(blob)
        model = build_model(saved.spec, saved.input_shape, len(saved.classes))
        model.load_state_dict(saved.state_dict)
        model.eval()
        return cls(model=model, classes=saved.classes, input_shape=saved.input_shape)

    @torch.no_grad()
    def probabilities(self, inputs: list[Any]) -> list[list[float]]:
        try:
            x = torch.as_tensor(inputs, dtype=torch.float32)
        except (TypeError, ValueError) as exc:
            raise PredictError(f"inputs must be a list of numeric arrays: {exc}") from None
        if not torch.isfinite(x).all():
            raise PredictError("inputs must be finite numbers (no NaN or Infinity)")
        flat = 1
        for d in self.input_shape:
            flat *= d
        if x.ndim < 1 or x.numel() != len(x) * flat or len(x) == 0:
            raise PredictError(
                f"each input must hold {flat} numbers (shape {list(self.input_shape)})"
            )
        x = x.reshape(len(x), *self.input_shape)
        # An ensemble's probabilities are its members' mean (ensemble.probabilities).
        return probabilities(self.model, x).tolist()
