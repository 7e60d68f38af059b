"""Activation modules: thin wrappers over `gg.nn.functional`."""

from __future__ import annotations

from ..creation import tensor
from ..tensor import Tensor
from . import functional as F
from .module import Module
from .parameter import Parameter


class ReLU(Module):
    """max(x, 0)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)


class Sigmoid(Module):
    """1 / (1 + e⁻ˣ)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(Module):
    """tanh x."""

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class GELU(Module):
    """x·Φ(x), exact (`approximate="none"`) or with the tanh approximation."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x·σ(x)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input)


class Swish(Module):
    """x·σ(β·x). With `learnable=True`, β is a 0-d Parameter named `beta` trained with the
    rest of the model; otherwise it is a plain float."""

    def __init__(self, beta: float = 1.0, learnable: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.learnable = learnable
        if learnable:
            self.beta = Parameter(tensor(float(beta), device=device, dtype=dtype))
        else:
            self.beta = float(beta)

    def forward(self, input: Tensor) -> Tensor:
        return F.swish(input, self.beta)

    def extra_repr(self) -> str:
        beta = self.beta.item() if isinstance(self.beta, Tensor) else self.beta
        return f"beta={beta:g}, learnable={self.learnable}"


class LeakyReLU(Module):
    """x for x > 0, negative_slope·x otherwise."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class _Stateless(Module):
    """An activation without parameters or options: forward is `fn`."""

    fn = None

    def forward(self, input: Tensor) -> Tensor:
        return type(self).fn(input)


class Mish(_Stateless):
    """x·tanh(softplus(x))."""

    fn = staticmethod(F.mish)


class SELU(_Stateless):
    """λ·(x if x > 0 else α(eˣ − 1)) with SELU's fixed λ and α."""

    fn = staticmethod(F.selu)


class ReLU6(_Stateless):
    """min(max(x, 0), 6)."""

    fn = staticmethod(F.relu6)


class Hardsigmoid(_Stateless):
    """relu6(x + 3)/6."""

    fn = staticmethod(F.hardsigmoid)


class Hardswish(_Stateless):
    """x·relu6(x + 3)/6."""

    fn = staticmethod(F.hardswish)


class Softsign(_Stateless):
    """x/(1 + |x|)."""

    fn = staticmethod(F.softsign)


class LogSigmoid(_Stateless):
    """ln σ(x)."""

    fn = staticmethod(F.logsigmoid)


class Softplus(Module):
    """ln(1 + e^(βx))/β, or x where βx > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class ELU(Module):
    """x if x > 0 else α(eˣ − 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class CELU(ELU):
    """x if x > 0 else α(e^(x/α) − 1)."""

    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha)


class Hardtanh(Module):
    """clamp(x, min_val, max_val)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0,
                 inplace: bool = False) -> None:
        super().__init__()
        self.min_val, self.max_val = min_val, max_val

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Softmax(Module):
    """exp(x) / Σ_dim exp(x)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """x − logsumexp_dim(x)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
