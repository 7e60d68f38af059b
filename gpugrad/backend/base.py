"""The Backend interface: the only seam between gpugrad's math and an array library."""

from __future__ import annotations

from ..device import device as Device


class TransferCounter:
    """Counts device-to-host copies and explicit synchronisations (a training step should
    have none; tests assert that by reading these counters)."""

    __slots__ = ("device_to_host", "synchronizations")

    def __init__(self) -> None:
        self.device_to_host = 0
        self.synchronizations = 0

    def reset(self) -> None:
        self.device_to_host = 0
        self.synchronizations = 0


class Backend:
    """Array operations for one device.

    `xp` is the array module (numpy or cupy) for plain array math. The named methods are
    the places where the backends differ or where a fused kernel matters for speed.
    """

    name: str
    xp = None
    array_type: type = object

    def __init__(self, dev: Device) -> None:
        self.device = dev
        self.counter = TransferCounter()

    # A backend is a per-device singleton: copies of tensors share it (ops compare
    # backends by identity to detect device mixing).
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        from . import get_backend

        return (get_backend, (str(self.device),))

    # -- moving data ---------------------------------------------------------------
    def asarray(self, data, dtype=None):
        """An array on this device from host data (lists, scalars, NumPy arrays)."""
        raise NotImplementedError

    def to_host(self, array):
        """A NumPy array with the contents of `array` (counted as a device-to-host copy)."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for queued work on this device (counted; a no-op on the CPU)."""
        self.counter.synchronizations += 1

    # -- random numbers ------------------------------------------------------------
    def manual_seed(self, seed: int) -> None:
        raise NotImplementedError

    def uniform(self, shape, dtype):
        raise NotImplementedError

    def normal(self, shape, dtype):
        raise NotImplementedError

    def randint(self, low, high, shape, dtype):
        raise NotImplementedError

    # -- array helpers used by several ops -------------------------------------------
    def sum_to_shape(self, array, shape: tuple):
        """Sum `array` over the axes that broadcasting added or expanded, giving `shape`."""
        if array.shape == shape:
            return array
        lead = array.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, n in enumerate(shape) if n == 1 and array.shape[i + lead] != 1
        )
        out = array.sum(axis=axes, keepdims=True)
        return out.reshape(shape) if lead else out

    def index_add_(self, out, index, values) -> None:
        """out[index] += values, accumulating repeated indices."""
        raise NotImplementedError

    def reshape_view(self, array, shape):
        """`array` reshaped without a copy; raises ValueError when a copy would be needed."""
        raise NotImplementedError

    # -- fused activation kernels (the NumPy versions are the reference) ---------------
    # Each multi-step formula is one `*_into` kernel writing into preallocated outputs;
    # `_run_elementwise` applies it (the NumPy backend in cache-sized blocks, so its
    # several passes cost about one trip through memory, like a fused GPU kernel).
    def _run_elementwise(self, kernel, outs: tuple, ins: tuple) -> None:
        kernel(self.xp, *outs, *ins)

    def binary(self, ufunc, a, b):
        """ufunc(a, b) with broadcasting (the CPU backend splits large ones across threads)."""
        return ufunc(a, b)

    def add_(self, a, b) -> None:
        """a += b in place (b has a's shape and dtype)."""
        self.xp.add(a, b, out=a)

    def over_rows(self, fn, n: int, work: int, *, row_bytes: int = 0,
                  blas: bool = False) -> None:
        """fn(lo, hi) on row ranges covering range(n) (fn must not depend on how they are
        cut). `work` counts the elements touched, `row_bytes` one row's working set and
        `blas` says fn calls BLAS: the CPU backend spreads large jobs over its threads in
        cache-sized ranges (see cpu_parallel.over_rows); a GPU backend runs fn(0, n)."""
        fn(0, n)

    def _new(self, like):
        return self.xp.empty(like.shape, dtype=like.dtype)

    def act_forward(self, kind: str, x):
        """y = act(x) for kind in relu, sigmoid, tanh."""
        xp = self.xp
        if kind == "relu":
            return xp.maximum(x, 0)
        if kind == "tanh":
            return xp.tanh(x)
        if kind == "sigmoid":
            out = self._new(x)
            self._run_elementwise(_sigmoid_into, (out,), (x, 1))
            return out
        raise ValueError(f"unknown activation {kind!r}")

    def act_backward(self, kind: str, y, g):
        """x̄ from the activation's output y and upstream ȳ, in one pass."""
        xp = self.xp
        if kind == "relu":
            # Zero only where y <= 0, so a NaN passes its gradient through (as PyTorch).
            return xp.where(y <= 0, xp.zeros((), dtype=g.dtype), g)
        kernels = {"tanh": _tanh_backward_into, "sigmoid": _sigmoid_backward_into}
        if kind not in kernels:
            raise ValueError(f"unknown activation {kind!r}")
        out = self._new(y)
        self._run_elementwise(kernels[kind], (out,), (y, g))
        return out

    def swish_forward(self, x, beta):
        """y = x·σ(βx) (β a number or a broadcastable array)."""
        out = self._new(x)
        self._run_elementwise(_swish_into, (out,), (x, beta))
        return out

    def swish_backward(self, x, beta, g, need_beta: bool):
        """(x̄, per-element β̄) of swish: with s = σ(βx),
        x̄ = ȳ·s·(1 + βx(1 − s)) and β̄ᵢ = ȳ·x²·s(1 − s) (None unless need_beta)."""
        gx = self._new(x)
        gb = self._new(x) if need_beta else None
        self._run_elementwise(_swish_backward_into, (gx, gb), (x, beta, g))
        return gx, gb

    def np_dtype(self, dtype):
        """The array dtype this backend uses for a gpugrad dtype (None if unsupported)."""
        return dtype.np

    # -- optimizer updates (in place on lists of arrays; the NumPy versions are the
    # reference, the CUDA backend may replace each with one fused multi-tensor kernel) -----
    def sgd_update(self, params, grads, bufs, *, lr, momentum, dampening, weight_decay,
                   nesterov, maximize) -> None:
        """PyTorch's SGD, in place: d = ±g + wd·p; b ← μ·b + (1 − τ)·d (b = d on the first
        step, when `bufs[i]` is None and the new buffer is stored into `bufs`);
        d = d + μ·b (Nesterov) or b; p ← p − lr·d."""
        xp = self.xp
        for i, p in enumerate(params):
            d = -grads[i] if maximize else grads[i]
            if weight_decay != 0:
                d = d + weight_decay * p
            if momentum != 0:
                buf = bufs[i]
                if buf is None:
                    buf = bufs[i] = xp.array(d, copy=True)
                else:
                    buf *= momentum
                    buf += (1 - dampening) * d
                d = d + momentum * buf if nesterov else buf
            p -= lr * d

    def adam_update(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *,
                    lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                    decoupled_weight_decay) -> None:
        """PyTorch's Adam/AdamW, in place, with `steps[i]` the new (host) step count:
        m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; v̂ = max(v̂, v) with amsgrad;
        p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε). Weight decay adds wd·p to g
        (Adam) or scales p by 1 − lr·wd first (AdamW)."""
        xp = self.xp
        for i, p in enumerate(params):
            g = -grads[i] if maximize else grads[i]
            if weight_decay != 0:
                if decoupled_weight_decay:
                    p *= 1 - lr * weight_decay
                else:
                    g = g + weight_decay * p
            m, v = exp_avgs[i], exp_avg_sqs[i]
            m += (1 - beta1) * (g - m)
            v *= beta2
            v += (1 - beta2) * (g * g)
            if amsgrad:
                xp.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
                v = max_exp_avg_sqs[i]
            step_size = lr / (1 - beta1 ** steps[i])
            denom = xp.sqrt(v) / (1 - beta2 ** steps[i]) ** 0.5
            denom += eps
            p -= step_size * (m / denom)

    def rmsprop_update(self, params, grads, square_avgs, grad_avgs, momentum_bufs, *, lr,
                       alpha, eps, weight_decay, momentum, centered, maximize) -> None:
        """PyTorch's RMSprop, in place: s ← αs + (1 − α)g²; with `centered`, ḡ ← αḡ +
        (1 − α)g and s − ḡ² replaces s below; a = √s + ε; with momentum b ← μb + g/a and
        p ← p − lr·b, else p ← p − lr·g/a. `grad_avgs` / `momentum_bufs` entries are
        used only when centered / momentum > 0."""
        xp = self.xp
        for i, p in enumerate(params):
            g = -grads[i] if maximize else grads[i]
            if weight_decay != 0:
                g = g + weight_decay * p
            s = square_avgs[i]
            s *= alpha
            s += (1 - alpha) * (g * g)
            if centered:
                ga = grad_avgs[i]
                ga += (1 - alpha) * (g - ga)
                avg = xp.sqrt(s - ga * ga)
            else:
                avg = xp.sqrt(s)
            avg += eps
            if momentum > 0:
                buf = momentum_bufs[i]
                buf *= momentum
                buf += g / avg
                p -= lr * buf
            else:
                p -= lr * (g / avg)


# --- elementwise kernels shared by every backend: kernel(xp, *outs, *ins) ------------------
def _is_one(beta) -> bool:
    return isinstance(beta, (int, float)) and beta == 1


def _sigmoid_into(xp, out, x, beta):
    """out = σ(βx); β = 1 (SiLU, sigmoid) skips a pass."""
    if _is_one(beta):
        xp.negative(x, out=out)
    else:
        xp.multiply(x, -beta, out=out)
    xp.exp(out, out=out)
    out += 1
    xp.reciprocal(out, out=out)


def _tanh_backward_into(xp, out, y, g):
    """out = ȳ·(1 − y²)."""
    xp.multiply(y, y, out=out)
    xp.subtract(1, out, out=out)
    xp.multiply(out, g, out=out)


def _sigmoid_backward_into(xp, out, y, g):
    """out = ȳ·y(1 − y)."""
    xp.subtract(1, y, out=out)
    out *= y
    xp.multiply(out, g, out=out)


def _swish_into(xp, out, x, beta):
    """out = x·σ(βx)."""
    _sigmoid_into(xp, out, x, beta)
    out *= x


def _swish_backward_into(xp, gx, gb, x, beta, g):
    """gx = ȳ·s·(1 + βx(1 − s)), gb = ȳ·x²·s(1 − s) (if gb is not None), s = σ(βx)."""
    s = xp.empty(gx.shape, dtype=gx.dtype)
    _sigmoid_into(xp, s, x, beta)
    xp.subtract(1, s, out=gx)
    gx *= x                                  # gx = x(1 − s) so far
    if gb is not None:
        xp.multiply(gx, x, out=gb)
        gb *= s
        gb *= g
    if not _is_one(beta):
        gx *= beta
    gx += 1
    gx *= s
    gx *= g
