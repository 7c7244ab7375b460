"""Our own layers: batch normalisation (COURSE.md §6), dropout with inclusion probabilities
(COURSE.md §8), and the stacked Linear / Conv layers that let K ensemble members train as one.

Stacked layers hold K members' parameters with a leading member dimension, so member k's
weight is ``weight[k]``, shaped exactly like the nn.Linear / nn.ConvNd weight of a single
network: a stacked state dict is K single state dicts stacked, key for key.

Layouts (why they look unusual): a stacked MLP keeps activations *feature-major*, (K, d, B),
and computes W @ h with one batched matmul; then the weight gradient comes out of autograd
already contiguous. With the usual (K, B, d) layout, h @ Wᵀ gives a transposed gradient that
autograd copies on every step (a quarter of the step time at K = 64, measured). A stacked CNN
keeps its feature maps as (B, K·C, …) and runs grouped convolutions (groups = K), so batchnorm,
pooling, activation and dropout treat K·C channels exactly as a single network treats C.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# PyTorch's defaults. The course writes ε ≈ 1e−8, but in float32 that lets a near-constant unit
# be scaled by up to 10⁴; 1e−5 keeps the formula and matches torch.nn.BatchNorm for comparison.
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


class BatchNorm(nn.Module):
    """COURSE.md §6 for each unit (or channel) over the minibatch:

        μ = (1/m) Σ a_i,   σ = √(ε + (1/m) Σ (a_i − μ)²),   ã_i = γ (a_i − μ)/σ + β

    (the Σ in σ is the one the slide drops). γ, β are learned. For prediction μ and σ² come
    from running averages updated like PyTorch's (μ_r ← (1 − ρ) μ_r + ρ μ, σ²_r with the
    unbiased variance), or from one full pass over the training set (``full_pass_statistics``).
    In a convolutional layer the m values of a channel are every position of every example.

    ``members``: None for one network, K for a stacked ensemble. ``spatial``: False for
    (B, d) inputs — (K, d, B) when stacked — True for (B, C, …) feature maps — (B, K·C, …).
    """

    def __init__(
        self, num_features: int, *, members: int | None = None, spatial: bool = False,
        eps: float = BN_EPS, momentum: float = BN_MOMENTUM,
    ) -> None:
        super().__init__()
        shape = (num_features,) if members is None else (members, num_features)
        self.members, self.spatial, self.eps, self.momentum = members, spatial, eps, momentum
        self.weight = nn.Parameter(torch.ones(shape))  # γ
        self.bias = nn.Parameter(torch.zeros(shape))  # β
        self.register_buffer("running_mean", torch.zeros(shape))
        self.register_buffer("running_var", torch.ones(shape))
        # False while diagnostics evaluate gradients (under vmap): the running averages must
        # only follow the training steps.
        self.update_running = True
        # While full_pass_statistics measures this layer: (Σ a, Σ a², count) in float64.
        self._collect: list | None = None

    def _layout(self, x: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(dims reduced over, shape the per-unit statistics broadcast as)."""
        if self.spatial:  # (B, C, *S): every example and position of a channel
            extra = x.ndim - 2
            return (0, *range(2, x.ndim)), (1, -1, *([1] * extra))
        if self.members is None:  # (B, d)
            return (0,), (1, -1)
        return (x.ndim - 1,), (*self.weight.shape, 1)  # (K, d, B)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims, view = self._layout(x)
        if self._collect is not None:
            s, s2, count = self._collect
            xd = x.detach().double()
            self._collect = [s + xd.sum(dims), s2 + (xd * xd).sum(dims),
                             count + math.prod(x.shape[d] for d in dims)]
        if self.training:
            var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
            if self.update_running:
                with torch.no_grad():
                    m = x.numel() // mean.numel()
                    unbiased = var * (m / max(m - 1, 1))
                    self.running_mean.mul_(1 - self.momentum).add_(
                        mean.reshape(self.running_mean.shape), alpha=self.momentum)
                    self.running_var.mul_(1 - self.momentum).add_(
                        unbiased.reshape(self.running_var.shape), alpha=self.momentum)
        else:
            mean, var = self.running_mean.reshape(view), self.running_var.reshape(view)
        x_hat = (x - mean) * torch.rsqrt(var + self.eps)  # (a − μ)/σ, σ = √(ε + var)
        return x_hat * self.weight.reshape(view) + self.bias.reshape(view)

    def extra_repr(self) -> str:
        return f"{tuple(self.weight.shape)}, eps={self.eps}, momentum={self.momentum}"


@torch.no_grad()
def full_pass_statistics(model: nn.Module, X: torch.Tensor, chunk: int = 8192) -> None:
    """Replace every BatchNorm's running μ, σ² by the exact mean and (biased) variance of its
    input over the whole training set X — what the course means by "estimates over the training
    set". Layers are measured in order, each pass using the statistics already fixed for the
    layers before it, so the result equals one train-mode forward of X as a single minibatch
    (without dropout), computed in chunks. ``X`` is one model input (stacked: shared by all)."""
    bns = [m for m in model.modules() if isinstance(m, BatchNorm)]
    if not bns:
        return
    was_training = model.training
    model.eval()
    try:
        for bn in bns:
            bn._collect = [0.0, 0.0, 0]
            for start in range(0, len(X), chunk):
                model(X[start:start + chunk])
            s, s2, count = bn._collect
            bn._collect = None
            mean = s.reshape(bn.weight.shape) / count
            var = (s2.reshape(bn.weight.shape) / count - mean * mean).clamp_min(0)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
    finally:
        for bn in bns:
            bn._collect = None
        model.train(was_training)


class Dropout(nn.Module):
    """Keeps each unit with inclusion probability ``p_inc`` (COURSE.md §8) and scales kept units
    by 1/p_inc during training ("inverted" dropout, PyTorch's way). Expected activation is then
    the full network's, so at inference keeping every unit unscaled *is* the course's strategy B
    (keep all units, weight their outgoing connections by p_inc, for a net trained unscaled).
    ``active``: None follows train/eval; True forces masks in eval mode (strategy A, Monte-Carlo
    averaging); False turns them off (gradient-noise diagnostics).

    Per-member streams (a pack, whose member k must be its run alone): with ``generators``
    (K of them) and no ``generator``, member k's mask is drawn from ``generators[k]`` in the
    shape and layout its run alone draws it — (B, d) for an MLP, (B, C, …) for a CNN — and
    placed in the stacked layout ``layout`` names: ``features`` (K, d, B) or ``channels``
    (B, K·C, …). So member k gets bit for bit the masks of its run alone."""

    def __init__(self, p_inc: float, layout: str = "features") -> None:
        super().__init__()
        if not 0 < p_inc <= 1:
            raise ValueError(f"inclusion probability must be in (0, 1], got {p_inc}")
        if layout not in ("features", "channels"):
            raise ValueError(f"unknown dropout layout {layout!r}")
        self.p_inc, self.layout = p_inc, layout
        self.active: bool | None = None
        # Masks come from this generator (the trainer seeds one per run); None: global RNG.
        self.generator: torch.Generator | None = None
        # A pack's per-member generators (see above); used only while ``generator`` is None.
        self.generators: list[torch.Generator] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        on = self.training if self.active is None else self.active
        if not on or self.p_inc == 1.0:
            return x
        return x * self._mask(x).div_(self.p_inc)

    def _mask(self, x: torch.Tensor) -> torch.Tensor:
        """The 0/1 mask for x: per member (a pack) or from the one generator."""
        if self.generators is not None and self.generator is None:
            return self._member_masks(x)
        # A contiguous mask in x's shape (what empty_like gives for the contiguous activations
        # a network makes), so the per-member masks can be drawn alike.
        return torch.empty(x.shape, dtype=x.dtype, device=x.device).bernoulli_(
            self.p_inc, generator=self.generator)

    def _member_masks(self, x: torch.Tensor) -> torch.Tensor:
        gens = self.generators
        assert gens is not None
        k = len(gens)

        def draw(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
            return torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(
                self.p_inc, generator=gen)

        if self.layout == "features":  # x (K, d, B); the run alone draws (B, d)
            if x.ndim != 3 or x.shape[0] != k:
                raise ValueError(f"per-member dropout: {k} members, activations {tuple(x.shape)}")
            d, b = x.shape[1], x.shape[2]
            return torch.stack([draw((b, d), g).T for g in gens])
        # channels: x (B, K·C, …); the run alone draws (B, C, …)
        if x.shape[1] % k:
            raise ValueError(f"per-member dropout: {k} members, activations {tuple(x.shape)}")
        shape = (x.shape[0], x.shape[1] // k, *x.shape[2:])
        return torch.cat([draw(shape, g) for g in gens], dim=1)

    def extra_repr(self) -> str:
        return f"p_inc={self.p_inc}, layout={self.layout}"


class StackedLinear(nn.Module):
    """K independent Linear layers. Input (K, in, B) — or (in, B) shared by all members —
    output (K, out, B): out_k = W_k h_k + b_k, one batched matmul (one plain matmul when the
    input is shared)."""

    def __init__(self, members: int, in_features: int, out_features: int,
                 bias: bool = True) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features)) if bias else None
        bound = 1 / math.sqrt(in_features)  # torch's default, overwritten when members are stacked
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        k, d_out = self.members, self.out_features
        if h.ndim == 2:  # shared input: one (K·out, in) @ (in, B) product, no K copies of h
            w = self.weight.reshape(k * d_out, self.in_features)
            out = w @ h if self.bias is None else torch.addmm(self.bias.reshape(-1, 1), w, h)
            return out.view(k, d_out, h.shape[-1])
        if self.bias is None:
            return torch.bmm(self.weight, h)
        return torch.baddbmm(self.bias.unsqueeze(-1), self.weight, h)

    def extra_repr(self) -> str:
        return f"members={self.members}, {self.in_features} → {self.out_features}"


class StackedConv(nn.Module):
    """K independent convolutions (1-D or 2-D, kernel k, 'same' padding) as one grouped
    convolution over (B, K·C_in, …) feature maps."""

    def __init__(self, members: int, dims: int, c_in: int, c_out: int, kernel: int = 3,
                 bias: bool = True) -> None:
        super().__init__()
        self.members, self.dims, self.in_channels, self.out_channels = members, dims, c_in, c_out
        self.padding = kernel // 2
        self.weight = nn.Parameter(torch.empty(members, c_out, c_in, *([kernel] * dims)))
        self.bias = nn.Parameter(torch.empty(members, c_out)) if bias else None
        bound = 1 / math.sqrt(c_in * kernel**dims)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = F.conv2d if self.dims == 2 else F.conv1d
        w = self.weight.reshape(-1, *self.weight.shape[2:])
        b = None if self.bias is None else self.bias.reshape(-1)
        return conv(x, w, b, padding=self.padding, groups=self.members)

    def extra_repr(self) -> str:
        return f"members={self.members}, {self.in_channels} → {self.out_channels}, {self.dims}-D"
