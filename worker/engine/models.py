"""Networks. Layers carry stable names (fc1, fc2, …, out) because diagnostics, the metric keys
(``act_std/fc1``) and the saved state dict all refer to layers by these names."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .spec import Spec

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


class MLP(nn.Module):
    """input → flatten → [Linear → activation] per hidden width → Linear (logits)."""

    def __init__(
        self, input_dim: int, hidden: Sequence[int], n_classes: int, activation: str = "relu"
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        # Flatten makes (N, 1, 8, 8) images and already-flat (N, 64) inputs both work.
        self.flatten = nn.Flatten()
        widths = [input_dim, *hidden]
        self.hidden_names: list[str] = [f"fc{i}" for i in range(1, len(hidden) + 1)]
        for name, d_in, d_out in zip(self.hidden_names, widths[:-1], widths[1:]):
            self.add_module(name, nn.Linear(d_in, d_out))
        self.out = nn.Linear(widths[-1], n_classes)
        # Stateless, so one instance serves every layer.
        self.act = ACTIVATIONS[activation]()

    @property
    def layer_names(self) -> list[str]:
        """Every Linear layer, input to output (hidden ones and ``out``)."""
        return [*self.hidden_names, "out"]

    def linear(self, name: str) -> nn.Linear:
        layer = getattr(self, name)
        assert isinstance(layer, nn.Linear)
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.flatten(x)
        for name in self.hidden_names:
            h = self.act(getattr(self, name)(h))
        return self.out(h)

    def forward_with_activations(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and each hidden layer's post-activation output, keyed by layer name.
        A separate method so the training step's ``forward`` never pays for diagnostics."""
        acts: dict[str, torch.Tensor] = {}
        h = self.flatten(x)
        for name in self.hidden_names:
            h = self.act(getattr(self, name)(h))
            acts[name] = h
        return self.out(h), acts


def build_model(spec: Spec, input_shape: Sequence[int], n_classes: int) -> MLP:
    """The network ``spec.model`` describes, initialised from the current torch RNG state
    (the caller seeds it)."""
    m = spec.model
    if m.arch != "mlp":
        raise ValueError(f"arch {m.arch!r} is not available")
    input_dim = 1
    for d in input_shape:
        input_dim *= int(d)
    return MLP(input_dim, m.hidden, n_classes, m.activation)
