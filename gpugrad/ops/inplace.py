"""In-place forms of the elementwise ops: `t.exp_()`, `t.pow_(2)`, `t.addcmul_(a, b, value=v)`.

`t.NAME_(*args, **kwargs)` is `t.NAME(*args, **kwargs)` written into `t`'s storage, through
the one path every in-place op takes (`Tensor._inplace_binary`): a leaf that requires grad
refuses under grad mode, the version counter is bumped (so a saved copy of `t` is caught
at backward), and when a gradient is needed the op is recorded on the old value of `t`,
which then takes over the result's place in the graph. A result dtype that cannot be cast
back to `t`'s (`int_tensor.sqrt_()`) raises TypeError, as PyTorch refuses it.

`INPLACE_OPS` lists the ops that get a `*_` form; one factory makes them all. Extend the
list as elementwise ops are added (each name must be a Tensor method or a `gg.NAME(input,
...)` function). An op whose result is not differentiable (floor, comparisons) detaches
the tensor from the graph, as `fill_` does; PyTorch keeps it with a zero gradient.
`addcmul` and `addcdiv` are composed here from existing ops (as methods, where the Tensor
does not have them yet) so that their in-place forms exist too; `lerp` is a table row.
"""

from __future__ import annotations

import warnings

from .. import ops as _ops
from ..autograd.grad_mode import _state as _grad_state
from ..tensor import Tensor

__all__ = ["INPLACE_OPS", "inplace_method", "addcmul", "addcdiv"]

INPLACE_OPS = (
    "abs", "neg", "negative", "exp", "log", "log1p", "sqrt", "sin", "cos", "tanh", "sigmoid",
    "relu", "clamp", "clip", "sign", "sgn", "round", "floor", "ceil", "trunc", "pow",
    "remainder", "floor_divide", "multiply", "subtract", "divide", "eq", "ne", "lt", "le",
    "gt", "ge", "logical_not", "logical_and", "logical_or", "masked_fill", "addcmul",
    "addcdiv", "lerp",
    # rows of the pointwise table (ops/table.py) that PyTorch gives an in-place form
    "erf", "erfc", "exp2", "expm1", "log2", "log10", "rsqrt", "tan", "asin", "acos", "atan",
    "atan2", "sinh", "cosh", "asinh", "acosh", "atanh", "hypot", "copysign", "fmod",
    "square", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
    "bitwise_left_shift", "bitwise_right_shift", "logical_xor", "arcsin", "arccos", "arctan",
    "arctan2", "arcsinh", "arccosh", "arctanh",
)


def addcmul(input: Tensor, tensor1, tensor2, *args, value=1) -> Tensor:
    """input + value · tensor1 · tensor2 (broadcasting; composed of mul and add, so its VJP
    is theirs: input̄ = ȳ, tensor1̄ = value·ȳ·tensor2, tensor2̄ = value·ȳ·tensor1).
    Also PyTorch's deprecated `addcmul(input, value, tensor1, tensor2)`."""
    value, tensor1, tensor2 = _value_first(value, tensor1, tensor2, args, "addcmul")
    prod = tensor1 * tensor2
    return input + (prod if _is_one(value) else prod * value)


def addcdiv(input: Tensor, tensor1, tensor2, *args, value=1) -> Tensor:
    """input + value · tensor1 / tensor2 (broadcasting; composed of div, mul and add).
    Also PyTorch's deprecated `addcdiv(input, value, tensor1, tensor2)`."""
    value, tensor1, tensor2 = _value_first(value, tensor1, tensor2, args, "addcdiv")
    if all(isinstance(t, Tensor) and t.dtype.category < 2 for t in (tensor1, tensor2)):
        raise RuntimeError(f"addcdiv: integer division of tensor1 ({tensor1.dtype}) by "
                           f"tensor2 ({tensor2.dtype}) is not supported, as in PyTorch; use "
                           "input + value * torch.div(tensor1, tensor2, rounding_mode=...)")
    quot = tensor1 / tensor2
    return input + (quot if _is_one(value) else quot * value)


def _value_first(value, t1, t2, args: tuple, op: str):
    if not args:
        return value, t1, t2
    if len(args) != 1:
        raise TypeError(f"{op}() takes input, tensor1, tensor2 and value=, got "
                        f"{3 + len(args)} positional arguments")
    warnings.warn(f"This overload of {op} is deprecated: {op}(Number value, Tensor tensor1, "
                  f"Tensor tensor2); use {op}(Tensor tensor1, Tensor tensor2, *, Number "
                  "value) instead", UserWarning, stacklevel=3)
    return t1, t2, args[0]  # the deprecated (value, tensor1, tensor2) order


def _is_one(value) -> bool:
    return not isinstance(value, Tensor) and value == 1


def inplace_method(name: str):
    """The method `NAME_`: `Tensor.NAME` (looked up when called, so a rebound method is
    used) computed on `self` and written into it (see the module docstring)."""
    op = name + "_"

    def method(self: Tensor, *args, **kwargs) -> Tensor:
        fn = getattr(Tensor, name, None) or getattr(_ops, name)
        # The tensor operand that decides whether a graph is recorded (and whose dtype is
        # checked against ours): the first that requires grad, else the first floating one
        # (integer index and mask operands, as in scatter_ or masked_fill_, never count).
        other = None
        for a in (*args, *kwargs.values()):
            if isinstance(a, Tensor) and (a.dtype.is_floating_point or a.dtype.is_complex) \
                    and (other is None or (a._requires_grad and not other._requires_grad)):
                other = a

        def compute(t: Tensor, _) -> Tensor:
            # With a graph, `t` is a copy of self's old value (`_inplace_binary` saves an
            # "original self" as PyTorch does), so ops that save their input stay valid.
            out = fn(t, *args, **kwargs)
            cut[0] = out.grad_fn is None
            return out

        cut = [False]
        had_graph = self.grad_fn is not None
        self._inplace_binary(compute, other, op)
        if cut[0] and had_graph and _grad_state.enabled:
            # A non-differentiable result (floor_, eq_): the value no longer depends on the
            # graph, so it leaves it, as after fill_ (PyTorch keeps a zero gradient instead).
            self.detach_()
        return self

    method.__name__ = method.__qualname__ = op
    method.__doc__ = f"In-place `{name}`: `t.{op}(...)` writes `t.{name}(...)` into `t`."
    return method


def _install() -> None:
    for name, fn in (("addcmul", addcmul), ("addcdiv", addcdiv)):
        if not hasattr(Tensor, name):
            setattr(Tensor, name, fn)
    for name in INPLACE_OPS:
        setattr(Tensor, name + "_", inplace_method(name))


_install()
