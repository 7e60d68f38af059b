"""Finite-difference gradient checking (float64 central differences)."""

from __future__ import annotations

import numpy as np

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Analytical and numerical Jacobians disagree."""


def _outputs(fn, inputs) -> tuple:
    out = fn(*inputs)
    outs = (out,) if isinstance(out, Tensor) else tuple(out)
    return tuple(o for o in outs if isinstance(o, Tensor))


def _numerical_jacobian(fn, inputs, t, out_index: int, eps: float) -> np.ndarray:
    """J[m, k] = d out_m / d t_k by central differences, one input element at a time."""
    arr = t._data
    n_in = arr.size
    cols = []
    with no_grad():
        for k in range(n_in):
            idx = np.unravel_index(k, arr.shape)
            orig = arr[idx].copy() if hasattr(arr[idx], "copy") else arr[idx]
            arr[idx] = orig + eps
            plus = t._backend.to_host(_outputs(fn, inputs)[out_index]._data).astype(np.float64)
            arr[idx] = orig - eps
            minus = t._backend.to_host(_outputs(fn, inputs)[out_index]._data).astype(np.float64)
            arr[idx] = orig
            cols.append(((plus - minus) / (2 * eps)).reshape(-1))
    if not cols:
        return np.zeros((0, 0))
    return np.stack(cols, axis=1)


def _analytical_jacobian(out, diff, unit, dtype) -> dict:
    """{input index: J} with row m the VJP of the cotangent `unit`·e_m through `out`."""
    n_out = out._data.size
    jac = {i: np.zeros((n_out, t._data.size), dtype=dtype) for i, t in diff}
    if out.requires_grad:
        for m in range(n_out):
            onehot = np.zeros(n_out, dtype=out._data.dtype)
            onehot[m] = unit
            seed = Tensor(onehot.reshape(out.shape), device=out.device)
            grads = grad(out, [t for _, t in diff], seed, retain_graph=True,
                         allow_unused=True)
            for (i, _), g in zip(diff, grads):
                if g is not None:
                    jac[i][m] = g._backend.to_host(g._data).reshape(-1)
    return jac


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, check_undefined_grad: bool = False) -> bool:
    """Compare the gradients of `fn` at `inputs` with central finite differences.

    Every input that requires grad is perturbed element by element; every element of
    every output is backpropagated. Use float64 (or complex128) inputs. Complex inputs are
    perturbed along the real and the imaginary axis and compared, as in PyTorch, with the
    conjugate Wirtinger gradient ∂/∂Re + i·∂/∂Im; a complex output is checked through its
    real part (cotangent 1) and its imaginary part (cotangent 1j). Returns True, or raises
    `GradcheckError` (returns False with `raise_exception=False`) naming the first
    input/output pair whose Jacobians differ by more than `atol + rtol * |numerical|`.
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    diff = [(i, t) for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input requires grad")
    with enable_grad():
        outputs = _outputs(fn, inputs)
    if any(t._data.dtype.kind == "c" for _, t in diff) or \
            any(o._data.dtype.kind == "c" for o in outputs):
        return _gradcheck_complex(fn, inputs, diff, outputs, eps, atol, rtol, raise_exception)
    for j, out in enumerate(outputs):
        n_out = out._data.size
        analytical = _analytical_jacobian(out, diff, 1, np.float64)
        for i, t in diff:
            numerical = _numerical_jacobian(fn, inputs, t, j, eps).reshape(n_out, t._data.size)
            a = analytical[i]
            bad = ~(np.abs(a - numerical) <= atol + rtol * np.abs(numerical))
            if bad.any():
                m, k = np.argwhere(bad)[0]
                msg = (f"Jacobian mismatch for output {j} with respect to input {i} at "
                       f"(output element {m}, input element {k}): analytical "
                       f"{a[m, k]:.8g} vs numerical {numerical[m, k]:.8g}\n"
                       f"analytical:\n{a}\nnumerical:\n{numerical}")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def _numerical_wirtinger(fn, inputs, t, out_index: int, eps: float, part) -> np.ndarray:
    """J[m, k] = d part(out_m)/d Re t_k (+ i·d part(out_m)/d Im t_k for complex t), by
    central differences; `part` is np.real or np.imag."""
    arr = t._data
    cplx = arr.dtype.kind == "c"
    jac = np.zeros((_outputs(fn, inputs)[out_index]._data.size, arr.size),
                   dtype=np.complex128 if cplx else np.float64)

    def value():
        out = _outputs(fn, inputs)[out_index]
        return part(out._backend.to_host(out._data).astype(np.complex128)).reshape(-1)

    with no_grad():
        for k in range(arr.size):
            idx = np.unravel_index(k, arr.shape)
            orig = arr[idx].copy() if hasattr(arr[idx], "copy") else arr[idx]
            for direction in ((1, 1j) if cplx else (1,)):
                arr[idx] = orig + eps * direction
                plus = value()
                arr[idx] = orig - eps * direction
                minus = value()
                arr[idx] = orig
                jac[:, k] += (plus - minus) / (2 * eps) * direction
    return jac


def _gradcheck_complex(fn, inputs, diff, outputs, eps, atol, rtol, raise_exception) -> bool:
    """gradcheck when an input or an output is complex (see `gradcheck`)."""
    for j, out in enumerate(outputs):
        parts = ((np.real, 1), (np.imag, 1j)) if out._data.dtype.kind == "c" else \
            ((np.real, 1),)
        for part, unit in parts:
            analytical = _analytical_jacobian(out, diff, unit, np.complex128)
            for i, t in diff:
                numerical = _numerical_wirtinger(fn, inputs, t, j, eps, part)
                a = analytical[i]
                bad = ~(np.abs(a - numerical) <= atol + rtol * np.abs(numerical))
                if bad.any():
                    m, k = np.argwhere(bad)[0]
                    which = "real" if unit == 1 else "imaginary"
                    msg = (f"Jacobian mismatch for the {which} part of output {j} with respect "
                           f"to input {i} at (output element {m}, input element {k}): "
                           f"analytical {a[m, k]:.8g} vs numerical {numerical[m, k]:.8g}\n"
                           f"analytical:\n{a}\nnumerical:\n{numerical}")
                    if raise_exception:
                        raise GradcheckError(msg)
                    return False
    return True


from ..tensor import Tensor  # noqa: E402
from . import grad  # noqa: E402
from .grad_mode import enable_grad, no_grad  # noqa: E402
