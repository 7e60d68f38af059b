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
    def act_forward(self, kind: str, x):
        """y = act(x) for kind in relu, sigmoid, tanh."""
        xp = self.xp
        if kind == "relu":
            return xp.maximum(x, 0)
        if kind == "tanh":
            return xp.tanh(x)
        if kind == "sigmoid":
            out = xp.negative(x, out=xp.empty_like(x))  # out= keeps 0-d results arrays
            xp.exp(out, out=out)
            out += 1
            return xp.reciprocal(out, out=out)
        raise ValueError(f"unknown activation {kind!r}")

    def act_backward(self, kind: str, y, g):
        """x̄ from the activation's output y and upstream ȳ, in one pass."""
        xp = self.xp
        if kind == "relu":
            # Zero only where y <= 0, so a NaN passes its gradient through (as PyTorch).
            return xp.where(y <= 0, xp.zeros((), dtype=g.dtype), g)
        if kind == "tanh":
            out = xp.multiply(y, y, out=xp.empty_like(y))
            xp.subtract(1, out, out=out)
            return xp.multiply(out, g, out=out)
        if kind == "sigmoid":
            out = xp.subtract(1, y, out=xp.empty_like(y))
            out *= y
            return xp.multiply(out, g, out=out)
        raise ValueError(f"unknown activation {kind!r}")

    def np_dtype(self, dtype):
        """The array dtype this backend uses for a gpugrad dtype (None if unsupported)."""
        return dtype.np

    # -- optimizer updates (in place on lists of arrays; the NumPy versions are the
    # reference, the CUDA backend may replace each with one fused multi-tensor kernel) -----
    def swish_forward(self, x, beta):
        """y = x·σ(βx) in place on one temporary (β a number or a broadcastable array)."""
        s = self._sigmoid_of_scaled(x, beta)
        return self.xp.multiply(s, x, out=s)

    def _sigmoid_of_scaled(self, x, beta):
        """σ(βx) into one new array (β = 1, the SiLU case, skips a pass)."""
        xp = self.xp
        unit = isinstance(beta, (int, float)) and beta == 1
        s = xp.negative(x, out=xp.empty_like(x)) if unit else \
            xp.multiply(x, -beta, out=xp.empty_like(x))
        xp.exp(s, out=s)
        s += 1
        return xp.reciprocal(s, out=s)

    def swish_backward(self, x, beta, g, need_beta: bool):
        """(x̄, per-element β̄) of swish: with s = σ(βx),
        x̄ = ȳ·s·(1 + βx(1 − s)) and β̄ᵢ = ȳ·x²·s(1 − s) (None unless need_beta)."""
        xp = self.xp
        s = self._sigmoid_of_scaled(x, beta)
        w = xp.subtract(1, s, out=xp.empty_like(s))
        w *= x                                   # w = x(1 − s)
        gb = None
        if need_beta:
            gb = xp.multiply(w, x)
            gb *= s
            gb *= g
        if not (isinstance(beta, (int, float)) and beta == 1):
            w *= beta
        w += 1
        w *= s
        return xp.multiply(w, g, out=w), gb

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
