"""`weight_norm` and `spectral_norm` as parametrizations, as
`torch.nn.utils.parametrizations` (same state-dict keys: original0/original1 for
weight norm, original with `_u`, `_v` buffers for spectral norm)."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..creation import empty
from ..ops.elementwise import sqrt
from ..tensor import Tensor
from . import init
from ._functional_extra import normalize
from .module import Module
from .parametrize import register_parametrization

__all__ = ["weight_norm", "spectral_norm"]


def _norm_except_dim(v: Tensor, dim: int) -> Tensor:
    """‖v‖₂ over every dim but `dim`, kept broadcastable (the whole norm, 0-d, when
    dim = −1, as PyTorch's norm_except_dim)."""
    if dim == -1:
        return sqrt((v * v).sum())
    dims = tuple(d for d in range(v.ndim) if d != dim)
    return sqrt((v * v).sum(dims, keepdim=True))


class _WeightNorm(Module):
    """w = g · v / ‖v‖ (norm over all dims but `dim`); right inverse (‖w‖, w)."""

    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_v * (weight_g / _norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight: Tensor) -> tuple:
        return _norm_except_dim(weight, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize `module.<name>` as g·v/‖v‖ (Salimans & Kingma), the magnitude g in
    `parametrizations.<name>.original0` and the direction v in `original1`."""
    return register_parametrization(module, name, _WeightNorm(dim), unsafe=True)


class _SpectralNorm(Module):
    """W / σ(W), σ estimated by power iteration on W as a matrix (dim `dim` as rows):
    in training mode each forward first runs `n_power_iterations` steps u ← Wv/‖Wv‖,
    v ← Wᵀu/‖Wᵀu‖ (no gradient), then σ = uᵀWv (gradient through W only)."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if not -ndim <= dim < max(ndim, 1):
            raise IndexError(f"spectral_norm: dim {dim} out of range for a {ndim}-d weight")
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            mat = self._reshape_weight_to_matrix(weight)
            h, w = mat.shape
            kw = {"dtype": weight.dtype, "device": weight.device}
            u, v = init.normal_(empty(h, **kw)), init.normal_(empty(w, **kw))
            self.register_buffer("_u", normalize(u, dim=0, eps=eps))
            self.register_buffer("_v", normalize(v, dim=0, eps=eps))
            self._power_method(mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, mat: Tensor, n: int) -> None:
        with no_grad():
            mat = mat.detach()
            for _ in range(n):
                self._u.copy_(normalize(mat @ self._v, dim=0, eps=self.eps))
                self._v.copy_(normalize(mat.transpose(0, 1) @ self._u, dim=0, eps=self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return normalize(weight, dim=0, eps=self.eps)
        mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = (u * (mat @ v)).sum()
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Reparametrize `module.<name>` as W/σ(W) (Miyato et al.); `dim` defaults to 1 for
    transposed convolutions and 0 otherwise."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{type(module).__name__}' has no parameter or buffer with "
                         f"name '{name}'")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    return register_parametrization(module, name,
                                    _SpectralNorm(weight, n_power_iterations, dim, eps))
