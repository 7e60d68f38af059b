"""Implicit layers: a deep equilibrium (DEQ) layer whose output is a fixed point.

`DEQFixedPoint(f)` maps x to z* with z* = f(z*, x). The forward pass finds z* by iteration
with no graph recorded. The backward pass uses the implicit function theorem instead of
backpropagating through the iterations: differentiating z* = f(z*, x) gives

    dz*/dθ = (I − J)⁻¹ ∂f/∂θ,    J = ∂f/∂z at z*,

so for an upstream gradient ȳ = dL/dz*, the gradient reaching θ (f's parameters, or x) is
θ̄ = (∂f/∂θ)ᵀ g where g solves the linear system

    g = Jᵀ g + ȳ.

That system is itself a fixed point, solved by iteration with one vector-Jacobian product
Jᵀ g per step (`gg.autograd.grad` of f at z* with `grad_outputs=g`); no Jacobian is ever
formed. The last VJP, (∂f/∂θ)ᵀ g, is the ordinary backward of one call f(z*, x), which
the forward pass records with z* detached. Memory is that of one call of f, whatever the
number of iterations.
"""

from __future__ import annotations

from collections.abc import Callable

from ..autograd import Function
from ..autograd import grad as autograd_grad
from ..autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from ..creation import zeros, zeros_like
from ..tensor import Tensor, _wrap_array
from .module import Module

__all__ = ["DEQFixedPoint", "fixed_point_iteration", "anderson"]


def _relative_residual(fz: Tensor, z: Tensor) -> float:
    """‖f(z) − z‖ / ‖f(z)‖ over the whole tensor (one host read)."""
    return ((fz - z).norm() / (fz.norm() + 1e-12)).item()


def fixed_point_iteration(fn: Callable[[Tensor], Tensor], z0: Tensor, max_iter: int = 50,
                          tol: float = 1e-5) -> tuple[Tensor, dict]:
    """Iterate z ← fn(z) from `z0` until the relative residual ‖fn(z) − z‖/‖fn(z)‖ falls
    below `tol` or `max_iter` calls were made. Returns (z, {"iters", "residual"})."""
    z, res, iters = z0, float("inf"), 0
    while iters < max(1, int(max_iter)):
        fz = fn(z)
        iters += 1
        res = _relative_residual(fz, z)
        z = fz
        if res < tol:
            break
    return z, {"iters": iters, "residual": res}


def anderson(fn: Callable[[Tensor], Tensor], z0: Tensor, max_iter: int = 50, tol: float = 1e-5,
             m: int = 5, lam: float = 1e-4, beta: float = 1.0) -> tuple[Tensor, dict]:
    """Anderson acceleration of z ← fn(z), batched over the first dimension.

    Each step mixes the last `m` iterates: with residuals G_i = fn(z_i) − z_i, the weights
    α minimise ‖Σ α_i G_i‖² (plus a ridge `lam`·mean‖G_i‖²·‖α‖²) subject to Σ α_i = 1, and
    the next iterate is β·Σ α_i fn(z_i) + (1 − β)·Σ α_i z_i. Stops as
    `fixed_point_iteration` does.
    """
    backend = z0._backend
    xp = backend.xp
    shape = tuple(z0.shape)
    bsz = shape[0] if len(shape) > 1 else 1
    m = max(2, int(m))

    def f(flat):
        out = fn(_wrap_array(flat.reshape(shape), backend))
        return out._data.reshape(bsz, -1)

    x0 = z0._data.reshape(bsz, -1)
    d = x0.shape[1]
    dtype = x0.dtype
    X = xp.zeros((bsz, m, d), dtype=dtype)
    F = xp.zeros((bsz, m, d), dtype=dtype)
    X[:, 0], F[:, 0] = x0, f(x0)
    X[:, 1], F[:, 1] = F[:, 0], f(F[:, 0])

    def residual(k):
        fz, z = F[:, k % m], X[:, k % m]
        return float(xp.linalg.norm(fz - z) / (xp.linalg.norm(fz) + 1e-12))

    H = xp.zeros((bsz, m + 1, m + 1), dtype=dtype)
    H[:, 0, 1:] = H[:, 1:, 0] = 1
    y = xp.zeros((bsz, m + 1, 1), dtype=dtype)
    y[:, 0] = 1
    k, res = 1, residual(1)
    while res >= tol and k + 1 < max_iter:
        k += 1
        n = min(k, m)
        G = F[:, :n] - X[:, :n]
        GG = G @ G.transpose(0, 2, 1)
        # Regularise relative to the residuals' size, which shrinks by orders of magnitude.
        ridge = lam * (xp.trace(GG, axis1=1, axis2=2) / n)[:, None, None] + 1e-30
        H[:, 1:n + 1, 1:n + 1] = GG + ridge * xp.eye(n, dtype=dtype)
        alpha = xp.linalg.solve(H[:, :n + 1, :n + 1], y[:, :n + 1])[:, 1:n + 1, 0]
        mixed = (alpha[:, None] @ F[:, :n])[:, 0]
        if beta != 1.0:
            mixed = beta * mixed + (1 - beta) * (alpha[:, None] @ X[:, :n])[:, 0]
        X[:, k % m] = mixed
        F[:, k % m] = f(mixed)
        res = residual(k)
    z = _wrap_array(xp.ascontiguousarray(F[:, k % m]).reshape(shape), backend)
    return z, {"iters": k + 1, "residual": res}


_SOLVERS = {"fixed_point": fixed_point_iteration, "anderson": anderson}


def _solver(name: str) -> Callable:
    try:
        return _SOLVERS[name]
    except KeyError:
        raise ValueError(f"DEQFixedPoint: unknown solver {name!r}; choose "
                         f"{' or '.join(_SOLVERS)}") from None


class _ImplicitBackward(Function):
    """Identity in forward; in backward maps ȳ to g = (I − Jᵀ)⁻¹ ȳ, J = ∂f/∂z at z*.

    It sits on the output of one recorded call f(z*, x), so the engine then applies
    (∂f/∂x)ᵀ and (∂f/∂θ)ᵀ to g: exactly the IFT gradient.
    """

    @staticmethod
    def forward(ctx, z: Tensor, state: tuple) -> Tensor:
        ctx.deq, ctx.z_star, ctx.x = state  # a tuple: no graph edges to z* or x here
        return z

    @staticmethod
    def backward(ctx, grad: Tensor):
        if is_grad_enabled():
            raise RuntimeError("DEQFixedPoint: the implicit backward is first-order only; "
                               "create_graph=True (higher derivatives) is not supported")
        deq = ctx.deq
        x = ctx.x.detach() if isinstance(ctx.x, Tensor) else ctx.x
        with enable_grad():
            z0 = ctx.z_star.detach().requires_grad_(True)
            fz = deq.f(z0, x)
        if not fz.requires_grad:  # f does not depend on z: J = 0
            return grad, None

        def step(g: Tensor) -> Tensor:
            (jtg,) = autograd_grad(fz, z0, g, retain_graph=True, allow_unused=True)
            return grad if jtg is None else jtg + grad

        g, info = deq._solve(deq.backward_solver, step, grad, deq.backward_iters,
                             deq.backward_tol)
        deq.backward_info = info
        return g.detach(), None


class DEQFixedPoint(Module):
    """A deep equilibrium layer: returns z* with z* = f(z*, x), differentiated implicitly.

    `f` is a module (or callable) taking (z, x). The forward solve (`solver`:
    "anderson" or "fixed_point", at most `solver_iters` calls of f, relative residual
    `tol`) runs under no_grad from `z0`: when not passed to forward, zeros shaped like x,
    or like x with its last dimension replaced by `hidden_features` if that is set. The backward
    solves g = (∂f/∂z)ᵀ g + ȳ with `backward_solver` (default plain fixed-point iteration)
    by VJPs of f at z*, then sends g through one recorded call of f to x and to f's
    parameters. f must be contractive enough in z for both iterations to converge.
    `anderson_m` (history size) and `anderson_beta` (mixing) tune Anderson acceleration.
    The last solves' statistics are in `forward_info` and `backward_info`.
    """

    def __init__(self, f: Callable, solver: str = "anderson", solver_iters: int = 50,
                 tol: float = 1e-5, backward_solver: str = "fixed_point",
                 backward_iters: int | None = None, backward_tol: float | None = None,
                 anderson_m: int = 5, anderson_beta: float = 1.0,
                 hidden_features: int | None = None) -> None:
        super().__init__()
        _solver(solver), _solver(backward_solver)
        self.f = f
        self.solver, self.backward_solver = solver, backward_solver
        self.solver_iters, self.tol = int(solver_iters), float(tol)
        self.backward_iters = int(backward_iters if backward_iters is not None else solver_iters)
        self.backward_tol = float(backward_tol if backward_tol is not None else tol)
        self.anderson_m, self.anderson_beta = int(anderson_m), float(anderson_beta)
        self.hidden_features = hidden_features
        self.forward_info: dict = {}
        self.backward_info: dict = {}

    def forward(self, x: Tensor, z0: Tensor | None = None) -> Tensor:
        if z0 is None and self.hidden_features is not None:
            z0 = zeros(tuple(x.shape[:-1]) + (self.hidden_features,), dtype=x.dtype,
                       device=x.device)
        elif z0 is None:
            z0 = zeros_like(x)
        with no_grad():
            z_star, self.forward_info = self._solve(self.solver, lambda z: self.f(z, x),
                                                    z0.detach(), self.solver_iters, self.tol)
        if not is_grad_enabled():
            return z_star
        # One recorded call of f at the (detached) fixed point: the path to x and θ.
        z = self.f(z_star, x)
        return _ImplicitBackward.apply(z, (self, z_star, x))

    def _solve(self, name: str, fn: Callable, z0: Tensor, max_iter: int, tol: float):
        if name == "anderson":
            return anderson(fn, z0, max_iter, tol, m=self.anderson_m, beta=self.anderson_beta)
        return fixed_point_iteration(fn, z0, max_iter, tol)

    def extra_repr(self) -> str:
        return (f"solver={self.solver}, solver_iters={self.solver_iters}, tol={self.tol}, "
                f"backward_solver={self.backward_solver}")
