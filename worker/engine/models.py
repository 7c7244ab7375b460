"""Networks. Layers carry stable names (fc1, fc2, …, out; conv1, conv2, …, out; bn1, …) because
diagnostics, the metric keys (``act_std/fc1``) and the saved state dict all refer to layers by
these names.

Every network exists in two forms with the same code: one network (``members=None``, plain
torch layers, logits (B, C)) or K stacked ensemble members (``members=K``, the stacked layers of
layers.py, logits (K, B, C)). A stacked network takes either (K, B, *input_shape) — each member
its own minibatch — or (B, *input_shape), shared by all members.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .init import initialise
from .layers import BatchNorm, Dropout, StackedConv, StackedLinear
from .spec import Spec

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


class _Net(nn.Module):
    """What MLP and CNN share: names, layer access, dropout control, member extraction."""

    hidden_names: list[str]
    members: int | None
    input_shape: tuple[int, ...]
    config: dict[str, Any]  # constructor arguments, to rebuild one member as its own network

    @property
    def layer_names(self) -> list[str]:
        """Every weight layer, input to output (hidden ones and ``out``)."""
        return [*self.hidden_names, "out"]

    def layer(self, name: str) -> nn.Module:
        """The weight layer ``name`` (Linear, Conv or their stacked forms)."""
        return getattr(self, name)

    def dropouts(self) -> list[Dropout]:
        return [m for m in self.modules() if isinstance(m, Dropout)]

    def set_dropout(self, *, generator: torch.Generator | None = None,
                    generators: list[torch.Generator] | None = None) -> None:
        """Where masks come from: one ``generator`` for the whole network (a run, an
        ensemble), or, stacked, ``generators[k]`` for member k (a pack, layers.Dropout)."""
        if generators is not None and len(generators) != self.members:
            raise ValueError(f"{len(generators)} dropout generators for {self.members} members")
        for d in self.dropouts():
            d.generator, d.generators = generator, generators

    def member(self, k: int) -> _Net:
        """Member k of a stacked network as a network of its own (a copy)."""
        if self.members is None:
            raise ValueError("not a stacked network")
        single = type(self)(**{**self.config, "members": None})
        single.load_state_dict({n: v[k] for n, v in self.state_dict().items()})
        return single.to(next(self.parameters()).device).train(self.training)

    def _per_member(self, x: torch.Tensor) -> bool:
        """Stacked only: does x carry one minibatch per member (K, B, …) or one shared (B, …)?"""
        return x.ndim == len(self.input_shape) + 2


class MLP(_Net):
    """input → flatten → [dropout p_inc_input] → [Linear → (batchnorm) → activation →
    (dropout p_inc_hidden)] per hidden width → Linear (logits). With batchnorm the hidden
    Linear layers have no bias (β plays its part)."""

    def __init__(
        self, input_dim: int, hidden: Sequence[int], n_classes: int, activation: str = "relu",
        *, batchnorm: bool = False, p_inc_input: float = 1.0, p_inc_hidden: float = 1.0,
        members: int | None = None, input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        self.input_shape = tuple(int(d) for d in input_shape) if input_shape else (input_dim,)
        if math.prod(self.input_shape) != input_dim:
            raise ValueError(f"input_shape {self.input_shape} does not hold {input_dim} values")
        self.config = {
            "input_dim": input_dim, "hidden": list(hidden), "n_classes": n_classes,
            "activation": activation, "batchnorm": batchnorm, "p_inc_input": p_inc_input,
            "p_inc_hidden": p_inc_hidden, "members": members, "input_shape": self.input_shape,
        }
        self.members = members
        widths = [input_dim, *hidden]
        self.hidden_names = [f"fc{i}" for i in range(1, len(hidden) + 1)]

        def linear(d_in: int, d_out: int, bias: bool = True) -> nn.Module:
            if members is None:
                return nn.Linear(d_in, d_out, bias=bias)
            return StackedLinear(members, d_in, d_out, bias=bias)

        # Modules are registered layer by layer, so their parameters are created (and torch's
        # default init drawn) in the same order with or without dropout. A layer followed by
        # batchnorm has no bias: β takes its role, and a bias there would get only round-off as
        # gradient (which Adam would blow up into steps of ±η).
        self.drop_in = Dropout(p_inc_input) if p_inc_input < 1 else None
        for i, (name, d_in, d_out) in enumerate(zip(self.hidden_names, widths[:-1], widths[1:])):
            self.add_module(name, linear(d_in, d_out, bias=not batchnorm))
            if batchnorm:
                self.add_module(f"bn{i + 1}", BatchNorm(d_out, members=members))
            if p_inc_hidden < 1:
                self.add_module(f"drop{i + 1}", Dropout(p_inc_hidden))
        self.out = linear(widths[-1], n_classes)
        self._blocks = [
            (getattr(self, name), getattr(self, f"bn{i}", None), getattr(self, f"drop{i}", None))
            for i, name in enumerate(self.hidden_names, start=1)
        ]
        # Stateless, so one instance serves every layer. In place where torch offers it: the
        # activation's input is a fresh Linear or batchnorm output that autograd does not keep,
        # so overwriting it saves one activation-sized allocation and write per layer and step
        # (2–3 % of a stacked K = 64 step, measured).
        act = ACTIVATIONS[activation]
        self.act = act(inplace=True) if activation in ("relu", "leaky_relu") else act()

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        if self.members is None:
            return x.flatten(1)  # (N, 1, 8, 8) images and already-flat (N, 64) inputs both work
        if self._per_member(x):
            return x.flatten(2).transpose(1, 2)  # feature-major (K, d, B)
        h = x.flatten(1).T  # shared by all members: (d, B), StackedLinear broadcasts it
        if self.drop_in is not None:
            h = h.expand(self.members, *h.shape)  # so that input dropout draws K masks
        return h

    def _output(self, logits: torch.Tensor) -> torch.Tensor:
        return logits if self.members is None else logits.transpose(1, 2)  # (K, B, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._input(x)
        if self.drop_in is not None:
            h = self.drop_in(h)
        for fc, bn, drop in self._blocks:
            h = fc(h)
            if bn is not None:
                h = bn(h)
            h = self.act(h)
            if drop is not None:
                h = drop(h)
        return self._output(self.out(h))

    def forward_with_activations(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and each hidden layer's post-activation output (before dropout), keyed by
        layer name. A separate method so the training step's ``forward`` never pays for it."""
        acts: dict[str, torch.Tensor] = {}
        h = self._input(x)
        if self.drop_in is not None:
            h = self.drop_in(h)
        for name, (fc, bn, drop) in zip(self.hidden_names, self._blocks):
            h = fc(h)
            if bn is not None:
                h = bn(h)
            h = self.act(h)
            acts[name] = h
            if drop is not None:
                h = drop(h)
        return self._output(self.out(h)), acts


class CNN(_Net):
    """Conv blocks then a linear head. Each block: 3×3 convolution ('same' padding) →
    (batchnorm; the convolution then has no bias) → activation → 2×2 max-pool (skipped once
    the maps are 1 wide) → (dropout).
    2-D convolutions for images (C, H, W), 1-D for signals (C, L) such as mnist1d."""

    def __init__(
        self, input_shape: Sequence[int], channels: Sequence[int], n_classes: int,
        activation: str = "relu", *, batchnorm: bool = False, p_inc_input: float = 1.0,
        p_inc_hidden: float = 1.0, members: int | None = None,
    ) -> None:
        super().__init__()
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) not in (2, 3):
            raise ValueError(
                f"arch 'cnn' needs images (C, H, W) or signals (C, L); these inputs have shape "
                f"{input_shape}: use arch 'mlp' for flat features and 2-D points"
            )
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        self.config = {
            "input_shape": input_shape, "channels": list(channels), "n_classes": n_classes,
            "activation": activation, "batchnorm": batchnorm, "p_inc_input": p_inc_input,
            "p_inc_hidden": p_inc_hidden, "members": members,
        }
        self.members = members
        self.input_shape = input_shape
        dims = len(input_shape) - 1
        self.hidden_names = [f"conv{i}" for i in range(1, len(channels) + 1)]
        conv_cls = nn.Conv2d if dims == 2 else nn.Conv1d
        pool_cls = nn.MaxPool2d if dims == 2 else nn.MaxPool1d

        self.drop_in = Dropout(p_inc_input, "channels") if p_inc_input < 1 else None
        spatial = list(input_shape[1:])
        c_in = input_shape[0]
        self._blocks = []
        for i, (name, c_out) in enumerate(zip(self.hidden_names, channels), start=1):
            conv = (conv_cls(c_in, c_out, 3, padding=1, bias=not batchnorm) if members is None
                    else StackedConv(members, dims, c_in, c_out, bias=not batchnorm))
            self.add_module(name, conv)
            bn = BatchNorm(c_out, members=members, spatial=True) if batchnorm else None
            if bn is not None:
                self.add_module(f"bn{i}", bn)
            pool = pool_cls(2) if min(spatial) >= 2 else None
            if pool is not None:
                spatial = [s // 2 for s in spatial]
            drop = Dropout(p_inc_hidden, "channels") if p_inc_hidden < 1 else None
            if drop is not None:
                self.add_module(f"drop{i}", drop)
            self._blocks.append((conv, bn, pool, drop))
            c_in = c_out
        self.features = c_in * math.prod(spatial)
        self.out = (nn.Linear(self.features, n_classes) if members is None
                    else StackedLinear(members, self.features, n_classes))
        self.act = ACTIVATIONS[activation]()

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        if self.members is None:
            return x
        if self._per_member(x):  # (K, B, C, …) → (B, K·C, …): member k's channels in block k
            x = x.transpose(0, 1)
            return x.reshape(x.shape[0], -1, *x.shape[3:])
        return x.repeat(1, self.members, *([1] * (x.ndim - 2)))

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        if self.members is None:
            return self.out(h.flatten(1))
        h = h.reshape(h.shape[0], self.members, -1).permute(1, 2, 0)  # (K, features, B)
        return self.out(h).transpose(1, 2)  # (K, B, C)

    def _blocks_forward(self, x: torch.Tensor, acts: dict[str, torch.Tensor] | None):
        h = self._input(x)
        if self.drop_in is not None:
            h = self.drop_in(h)
        for name, (conv, bn, pool, drop) in zip(self.hidden_names, self._blocks):
            h = conv(h)
            if bn is not None:
                h = bn(h)
            h = self.act(h)
            if acts is not None:
                acts[name] = h
            if pool is not None:
                h = pool(h)
            if drop is not None:
                h = drop(h)
        return self._head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._blocks_forward(x, None)

    def forward_with_activations(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and each block's post-activation feature maps (before pooling)."""
        acts: dict[str, torch.Tensor] = {}
        return self._blocks_forward(x, acts), acts


def _construct(spec: Spec, input_shape: Sequence[int], n_classes: int,
               members: int | None) -> MLP | CNN:
    m = spec.model
    common: dict[str, Any] = {
        "batchnorm": m.batchnorm, "p_inc_input": m.dropout.p_inc_input,
        "p_inc_hidden": m.dropout.p_inc_hidden, "members": members,
    }
    if m.arch == "mlp":
        return MLP(math.prod(int(d) for d in input_shape), m.hidden, n_classes, m.activation,
                   input_shape=input_shape, **common)
    if m.arch == "cnn":
        return CNN(input_shape, m.hidden, n_classes, m.activation, **common)
    raise ValueError(f"arch {m.arch!r} is not available")


def build_model(spec: Spec, input_shape: Sequence[int], n_classes: int) -> MLP | CNN:
    """The network ``spec.model`` describes — stacked when ``spec.ensemble.members`` > 1 —
    with torch's default initialisation from the current RNG (for loading a saved state)."""
    k = spec.ensemble.members
    return _construct(spec, input_shape, n_classes, k if k > 1 else None)


def build_network(
    spec: Spec, input_shape: Sequence[int], n_classes: int, seeds: Sequence[int]
) -> tuple[MLP | CNN, dict[str, dict[str, Any]]]:
    """The initialised network and the init report ({layer: {scheme, bound|std|value}}).

    One seed: one network, initialised from ``torch.manual_seed(seed)``. K seeds: member k is
    built exactly as that single network from seeds[k], then the K are stacked. The caller's
    global RNG state is left untouched."""
    singles, report = [], {}
    for seed in seeds:
        # The weights are drawn on the CPU: only its generator is seeded (torch.manual_seed
        # would also reseed every GPU's, which fork_rng(devices=[]) does not restore).
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            net = _construct(spec, input_shape, n_classes, None)
            report = initialise({n: net.layer(n) for n in net.layer_names}, spec.model.init)
        singles.append(net)
    if len(singles) == 1:
        return singles[0], report
    stacked = _construct(spec, input_shape, n_classes, len(singles))
    states = [s.state_dict() for s in singles]
    stacked.load_state_dict({k: torch.stack([st[k] for st in states]) for k in states[0]})
    return stacked, report
