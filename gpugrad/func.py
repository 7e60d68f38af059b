"""`gg.func`: composable function transforms (vjp, grad, jacobian)."""

from .autograd.functional import grad, jacobian, vjp

__all__ = ["vjp", "grad", "jacobian"]
