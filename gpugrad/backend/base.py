"""The Backend interface: the only seam between gpugrad's math and an array library."""

from __future__ import annotations

from ..device import device as Device
from .pointwise import normal_cdf


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

    def index_reduce_(self, out, index, values, op: str) -> None:
        """out[index] = op(out[index], values) with repeats combined; op: max, min, mul."""
        raise NotImplementedError

    def accumulate(self, op: str, x, axis: int):
        """The inclusive scan of the binary ufunc `op` (maximum, minimum, fmax, fmin,
        logaddexp) along `axis`: NumPy's ufunc.accumulate."""
        return getattr(self.xp, op).accumulate(x, axis=axis)

    def reshape_view(self, array, shape):
        """`array` reshaped without a copy; raises ValueError when a copy would be needed."""
        raise NotImplementedError

    # -- elementwise kernels (the NumPy versions are the reference) ----------------------
    # A multi-step formula is one `*_into` kernel writing into preallocated outputs;
    # `_run_elementwise` applies it (the NumPy backend in cache-sized blocks, so its
    # several passes cost about one trip through memory, like a fused GPU kernel). The
    # pointwise table's rows go through `pointwise`.
    def _run_elementwise(self, kernel, outs: tuple, ins: tuple) -> None:
        kernel(self.xp, *outs, *ins)

    def binary(self, ufunc, a, b):
        """ufunc(a, b) with broadcasting (the CPU backend splits large ones across threads)."""
        return ufunc(a, b)

    def unary(self, ufunc, a):
        """ufunc(a) (the CPU backend splits large ones across threads)."""
        return ufunc(a)

    def normal_cdf(self, x):
        """Φ(x), the standard normal CDF (the table's `ndtr` primitive; see
        gpugrad/backend/pointwise.py for its accuracy)."""
        return normal_cdf(self.xp, x)

    # Whether a pointwise row should keep its expensive intermediates from forward for a
    # backward without a graph (compute-bound CPUs) rather than recompute them (GPUs,
    # where the extra memory pass costs more than the arithmetic).
    keeps_intermediates = False

    def pointwise(self, prog, ins, params=()):
        """The output(s) of a pointwise program (gpugrad/backend/pointwise.py) over `ins`
        (arrays, broadcasting, or Python numbers) and the scalar `params`: its NumPy/CuPy
        rendering, with float16/bfloat16 operands computed in float32 and the results
        stored back in their dtype (the CUDA backend compiles the program instead)."""
        xp = self.xp
        half = None
        for a in ins:
            if _is_half(a):
                half = a.dtype
        if half is not None:
            ins = [_widen(xp, a) for a in ins]
        out = prog.numpy_fn()(xp, *ins, *params)
        if half is not None:
            if type(out) is tuple:
                return tuple(_narrow(xp, o, half) for o in out)
            return _narrow(xp, out, half)
        return out

    def sum(self, x, axis, keepdims: bool):
        """x.sum(axis=axis, keepdims=keepdims) (the CPU backend splits a large full
        reduction across threads: a different, fixed summation order)."""
        return x.sum(axis=axis, keepdims=keepdims)

    def mul_pair(self, g, a, b) -> tuple:
        """(g·b, g·a), the two products of a multiplication's VJP, for same-shape real
        arrays (the CPU backend makes both in one cache-blocked pass, reading g once)."""
        return g * b, g * a

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

    # -- softmax family over the last axis ----------------------------------------------------
    # Whether ops route through the fused kernels below that only pay off on a GPU: the
    # row kernels (softmax, log_softmax, integer-target cross-entropy and layer norm over
    # the last axis; the CUDA backend). The CPU ops keep their own NumPy formulas.
    fused_kernels = False

    def softmax(self, x):
        """exp(x − max) / Σ exp(x − max) along the last axis (float32 math for 16-bit x)."""
        xp = self.xp
        with _quiet_fp(xp):
            z = _widen(xp, x)
            z = z - z.max(axis=-1, keepdims=True)
            e = xp.exp(z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True)))
        return e.astype(x.dtype, copy=False)

    def log_softmax(self, x):
        """(x − max) − log Σ exp(x − max) along the last axis."""
        xp = self.xp
        with _quiet_fp(xp):
            z = _widen(xp, x)
            z = z - z.max(axis=-1, keepdims=True)
            out = z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))
        return out.astype(x.dtype, copy=False)

    def softmax_backward(self, y, g):
        """x̄ = y·(ȳ − Σ ȳ·y) from the softmax output y."""
        xp = self.xp
        y32, g32 = _widen(xp, y), _widen(xp, g)
        return (y32 * (g32 - (g32 * y32).sum(axis=-1, keepdims=True))).astype(y.dtype,
                                                                               copy=False)

    def log_softmax_backward(self, y, g):
        """x̄ = ȳ − exp(y)·Σ ȳ from the log-softmax output y."""
        xp = self.xp
        y32, g32 = _widen(xp, y), _widen(xp, g)
        return (g32 - xp.exp(y32) * g32.sum(axis=-1, keepdims=True)).astype(y.dtype,
                                                                             copy=False)

    def softmax_cross_entropy(self, logits, target, ignore_index: int = -100,
                              reduction: str = "mean"):
        """(loss, lse) for logits (N, C) and integer targets (N,): per row
        lse = log Σ_c exp(x_c) and ℓ = lse − x[target] (0 where target == ignore_index);
        the loss is ℓ (reduction "none"), Σℓ ("sum") or Σℓ / #non-ignored rows ("mean",
        NaN when every row is ignored, as PyTorch), in the logits' dtype. lse (N,) is kept
        for the backward, in float32 (float64 for float64 logits). A target outside
        [0, C) that is not ignore_index gives a NaN loss for its row."""
        xp = self.xp
        _check_xent(logits, target, reduction)
        with _quiet_fp(xp):
            z = _widen(xp, logits)
            m = z.max(axis=-1, keepdims=True)
            lse = (m + xp.log(xp.exp(z - m).sum(axis=-1, keepdims=True)))[:, 0]
            ignored = target == ignore_index
            valid = (target >= 0) & (target < z.shape[-1])
            picked = xp.take_along_axis(z, xp.where(valid, target, 0)[:, None], axis=-1)[:, 0]
            rows = xp.where(ignored, 0, xp.where(valid, lse - picked, xp.nan)).astype(z.dtype)
            loss = _reduce_rows(xp, rows, ignored, reduction)
        return loss.astype(logits.dtype), lse

    def softmax_cross_entropy_backward(self, logits, target, lse, g, ignore_index: int = -100,
                                       reduction: str = "mean"):
        """x̄ = (softmax(x) − one_hot(target))·s, with softmax(x) = exp(x − lse), and
        s = ȳ / #non-ignored rows ("mean"), ȳ ("sum") or ȳ per row ("none"); rows whose
        target is ignore_index get 0. `g` is the loss gradient (0-d, or (N,) for "none")."""
        xp = self.xp
        _check_xent(logits, target, reduction)
        z = _widen(xp, logits)
        ignored = target == ignore_index
        scale = xp.asarray(g).astype(z.dtype)
        if reduction == "mean":
            scale = scale / (~ignored).sum().astype(z.dtype)
        scale = scale[:, None] if reduction == "none" else scale
        with _quiet_fp(xp):
            p = xp.exp(z - lse[:, None].astype(z.dtype))
            onehot = xp.arange(z.shape[-1])[None, :] == target[:, None]
            gx = xp.where(ignored[:, None], 0, (p - onehot) * scale)
        return gx.astype(logits.dtype)

    # -- layer normalisation over the last axis -----------------------------------------------
    def layer_norm_forward(self, x, weight, bias, eps: float):
        """(y, mean, rstd): y = (x − μ)·rstd·w + b over the last axis, rstd = 1/√(σ² + ε)
        with the biased variance; `weight` / `bias` (shape (C,)) may be None. mean and rstd
        have shape x.shape[:-1], in float32 (float64 for float64 x)."""
        xp = self.xp
        z = _widen(xp, x)
        mean = z.mean(axis=-1)
        d = z - mean[..., None]
        rstd = 1 / xp.sqrt((d * d).mean(axis=-1) + z.dtype.type(eps))
        y = d * rstd[..., None]
        if weight is not None:
            y = y * _widen(xp, weight)
        if bias is not None:
            y = y + _widen(xp, bias)
        return y.astype(x.dtype, copy=False), mean, rstd

    def layer_norm_backward(self, x, weight, mean, rstd, g):
        """(x̄, w̄, b̄) of layer_norm_forward: with x̂ = (x − μ)·rstd and ĝ = ȳ·w,
        x̄ = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)); w̄ = Σ ȳ·x̂ and b̄ = Σ ȳ over the leading
        axes (both None when weight is None)."""
        xp = self.xp
        z, g32 = _widen(xp, x), _widen(xp, g)
        xhat = (z - mean[..., None]) * rstd[..., None]
        gh = g32 * _widen(xp, weight) if weight is not None else g32
        gx = rstd[..., None] * (gh - gh.mean(axis=-1, keepdims=True)
                                - xhat * (gh * xhat).mean(axis=-1, keepdims=True))
        gw = gb = None
        if weight is not None:
            c = x.shape[-1]
            gw = (g32 * xhat).reshape(-1, c).sum(axis=0).astype(weight.dtype)
            gb = g32.reshape(-1, c).sum(axis=0).astype(weight.dtype)
        return gx.astype(x.dtype, copy=False), gw, gb

    # -- dropout with a counter-based RNG --------------------------------------------------
    # Whether dropout regenerates its mask in backward from a Philox (seed, offset) instead
    # of storing it (the CUDA backend: one kernel each way, no mask in memory). The CPU
    # keeps storing it: there a stored mask is cheaper than NumPy recomputing Philox.
    regenerates_dropout_mask = False
    _philox_seed: int | None = None
    _philox_offset = 0

    def philox_state(self, n: int) -> tuple[int, int]:
        """(seed, offset) for `n` fresh dropout values, advancing the offset past them (as
        PyTorch's CUDA generator does). The seed follows `manual_seed`; it is kept on the
        host, so drawing one never reads the device."""
        if self._philox_seed is None:
            import random

            self._philox_seed = random.getrandbits(63)
        offset = self._philox_offset
        self._philox_offset += (n + 3) // 4  # counters used: one per four values
        return self._philox_seed, offset

    def seed_philox(self, seed: int) -> None:
        """Restart the dropout stream at (seed, offset 0) (called by `manual_seed`)."""
        self._philox_seed, self._philox_offset = int(seed) & ((1 << 64) - 1), 0

    def dropout_forward(self, x, p: float, seed: int, offset: int):
        """y = x·m/(1 − p) where m is the Philox4x32-10 mask of (seed, offset) (see
        `dropout_mask`); the same (seed, offset) regenerates it in `dropout_backward`."""
        return self._dropout_apply(x, p, seed, offset)

    def dropout_backward(self, g, p: float, seed: int, offset: int):
        """x̄ = ȳ·m/(1 − p) with the forward's mask, regenerated from (seed, offset)."""
        return self._dropout_apply(g, p, seed, offset)

    def dropout_mask(self, n: int, p: float, seed: int, offset: int):
        """The keep mask (bool, n elements) of dropout: element i keeps when word i mod 4 of
        Philox4x32-10(counter = (j_lo, j_hi, offset_lo, offset_hi), key = (seed_lo,
        seed_hi)), j = i div 4, is ≥ ⌊p·2³²⌋."""
        xp = self.xp
        j = xp.arange((n + 3) // 4, dtype=xp.uint64)
        words = philox4x32_10(xp, (j & _U32, j >> 32, offset & _U32, (offset >> 32) & _U32),
                              (seed & _U32, (seed >> 32) & _U32))
        u = xp.stack(words, axis=-1).reshape(-1)[:n]
        return u >= xp.uint32(dropout_threshold(p))

    def _dropout_apply(self, x, p, seed, offset):
        xp = self.xp
        acc = xp.float64 if x.dtype == xp.float64 else xp.float32
        if p >= 1:
            scale = acc(0)
        else:
            keep = self.dropout_mask(x.size, p, seed, offset).reshape(x.shape)
            scale = xp.where(keep, acc(1.0 / (1.0 - p)), acc(0))
        return (_widen(xp, x) * scale).astype(x.dtype, copy=False)

    def np_dtype(self, dtype):
        """The array dtype this backend uses for a gpugrad dtype (None if unsupported)."""
        return dtype.np

    # -- optimizer updates (in place on lists of arrays; the NumPy versions are the
    # reference, the CUDA backend may replace each with one fused multi-tensor kernel) -----
    #
    # Shared conventions of the methods below:
    # * Every list holds arrays of this device; params[i], grads[i] and the state arrays of
    #   entry i have the same shape and dtype. Hyperparameters are Python numbers.
    # * found_inf: None, or a float32 array of shape (1,) on this device (written by
    #   `unscale_grads_`). When its value is nonzero the update is skipped: every parameter
    #   and state array keeps its value bit for bit. The decision is taken on the device
    #   (masked writes), never by reading the flag on the host, so a skipped step costs no
    #   synchronisation. Non-finite intermediate values of a skipped update are discarded.
    def sgd_update(self, params, grads, bufs, *, lr, momentum, dampening, weight_decay,
                   nesterov, maximize, found_inf=None) -> None:
        """PyTorch's SGD, in place: d = ±g + wd·p; b ← μ·b + (1 − τ)·d (b = d on the first
        step, when `bufs[i]` is None and the new buffer is stored into `bufs`);
        d = d + μ·b (Nesterov) or b; p ← p − lr·d.

        With `found_inf` nonzero nothing changes, except that a buffer created by this call
        (bufs[i] None on entry, momentum ≠ 0) is stored as zeros; the next update then forms
        b = μ·0 + (1 − τ)·d, which equals PyTorch's first-step b = d whenever τ = 0."""
        xp = self.xp
        skip = self._skip_flag(found_inf)
        with self._quiet(skip):
            for i, p in enumerate(params):
                saved = self._snapshot(skip, p, bufs[i])
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
                self._restore(skip, (p, bufs[i]), saved)

    def adam_update(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *,
                    lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                    decoupled_weight_decay, found_inf=None) -> None:
        """PyTorch's Adam/AdamW, in place:
        m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; v̂ = max(v̂, v) with amsgrad;
        p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε). Weight decay adds wd·p to g
        (Adam) or scales p by 1 − lr·wd first (AdamW).

        `steps[i]` is the step count t of this update, already advanced by the caller: a
        Python int (the bias corrections are host numbers), or a 0-d float32 array on this
        device (capturable/scaled steps: lr/(1 − β₁ᵗ) and √(1 − β₂ᵗ) are computed on the
        device in float64, then rounded to float32, or kept float64 for float64 parameters,
        as the host numbers are; the array is only read).
        A skipped update (`found_inf` nonzero) leaves p, m, v and v̂ unchanged."""
        xp = self.xp
        skip = self._skip_flag(found_inf)
        with self._quiet(skip):
            for i, p in enumerate(params):
                m, v = exp_avgs[i], exp_avg_sqs[i]
                vmax = max_exp_avg_sqs[i] if amsgrad else None
                saved = self._snapshot(skip, p, m, v, vmax)
                g = -grads[i] if maximize else grads[i]
                if weight_decay != 0:
                    if decoupled_weight_decay:
                        p *= 1 - lr * weight_decay
                    else:
                        g = g + weight_decay * p
                m += (1 - beta1) * (g - m)
                v *= beta2
                v += (1 - beta2) * (g * g)
                if amsgrad:
                    xp.maximum(vmax, v, out=vmax)
                    v = vmax
                t = steps[i]
                if isinstance(t, (int, float)):
                    step_size = lr / (1 - beta1 ** t)
                    denom = xp.sqrt(v) / (1 - beta2 ** t) ** 0.5
                else:  # corrections in float64 (1 − β₂ᵗ cancels badly in float32)
                    t = t.astype(xp.float64)
                    ct = xp.float64 if p.dtype == xp.float64 else xp.float32
                    step_size = (lr / (1 - beta1 ** t)).astype(ct)
                    denom = xp.sqrt(v) / ((1 - beta2 ** t) ** 0.5).astype(ct)
                denom += eps
                p -= step_size * (m / denom)
                self._restore(skip, (p, m, exp_avg_sqs[i], vmax), saved)

    def rmsprop_update(self, params, grads, square_avgs, grad_avgs, momentum_bufs, *, lr,
                       alpha, eps, weight_decay, momentum, centered, maximize,
                       found_inf=None) -> None:
        """PyTorch's RMSprop, in place: s ← αs + (1 − α)g²; with `centered`, ḡ ← αḡ +
        (1 − α)g and s − ḡ² replaces s below; a = √s + ε; with momentum b ← μb + g/a and
        p ← p − lr·b, else p ← p − lr·g/a. `grad_avgs` / `momentum_bufs` entries are
        used only when centered / momentum > 0. A skipped update (`found_inf` nonzero)
        leaves p, s, ḡ and b unchanged."""
        xp = self.xp
        skip = self._skip_flag(found_inf)
        with self._quiet(skip):
            for i, p in enumerate(params):
                s = square_avgs[i]
                ga = grad_avgs[i] if centered else None
                buf = momentum_bufs[i] if momentum > 0 else None
                saved = self._snapshot(skip, p, s, ga, buf)
                g = -grads[i] if maximize else grads[i]
                if weight_decay != 0:
                    g = g + weight_decay * p
                s *= alpha
                s += (1 - alpha) * (g * g)
                if centered:
                    ga += (1 - alpha) * (g - ga)
                    avg = xp.sqrt(s - ga * ga)
                else:
                    avg = xp.sqrt(s)
                avg += eps
                if momentum > 0:
                    buf *= momentum
                    buf += g / avg
                    p -= lr * buf
                else:
                    p -= lr * (g / avg)
                self._restore(skip, (p, s, ga, buf), saved)

    def grad_norm(self, grads, norm_type: float = 2.0):
        """The norm of all of `grads` taken together (as if concatenated into one vector),
        as a 0-d array on this device, computed without a host read:
        (Σ|g|ᵖ)^(1/p) for finite p > 0 (p = 2 by default), max|g| for p = inf, min|g| for
        p = −inf, the number of nonzero elements for p = 0. The result and the accumulation
        are float64 if any gradient is float64, else float32 (float16/bfloat16 values are
        widened before they are raised to p, so they cannot overflow). An inf or NaN in
        any gradient propagates into the norm (inf for p > 0 when no NaN is present, NaN
        otherwise). No gradients, or only empty ones: 0. `grads` is not modified.
        ValueError for a negative finite p."""
        xp = self.xp
        p = float(norm_type)
        if p < 0 and p != float("-inf"):
            raise ValueError(f"grad_norm: norm_type must be >= 0, inf or -inf, got {norm_type}")
        acc = xp.float64 if any(g.dtype == xp.float64 for g in grads) else xp.float32
        grads = [g for g in grads if g.size]
        if not grads:
            return xp.zeros((), dtype=acc)
        mags = [xp.abs(g).astype(acc, copy=False) for g in grads]
        if p == float("inf"):
            out = xp.stack([a.max() for a in mags]).max()
        elif p == float("-inf"):
            out = xp.stack([a.min() for a in mags]).min()
        elif p == 0:
            out = xp.stack([(a != 0).sum(dtype=acc) for a in mags]).sum()
        elif p == 2:
            out = xp.sqrt(xp.stack([(a * a).sum() for a in mags]).sum())
        else:
            out = xp.stack([(a ** p).sum() for a in mags]).sum() ** (1.0 / p)
        return xp.asarray(out, dtype=acc)  # NumPy reductions give scalars, not 0-d arrays

    def unscale_grads_(self, grads, inv_scale, found_inf) -> None:
        """In place, for every array g of `grads`: first found_inf[0] ← 1.0 if g holds any
        inf or NaN (checked before scaling), then g ← g·inv_scale, the product formed in
        float32 (float64 for float64 g) and rounded to g's dtype. `inv_scale` is a float32
        array of shape () or (1,) on this device; `found_inf` a float32 array of shape (1,)
        that is only ever set to 1, never cleared, so one flag collects several calls.
        Nothing is read on the host."""
        xp = self.xp
        inv = inv_scale.reshape(())
        for g in grads:
            if not g.size:
                continue
            bad = xp.logical_not(xp.isfinite(g).all())
            xp.maximum(found_inf, bad.astype(xp.float32), out=found_inf)
            g *= inv.astype(xp.float64) if g.dtype == xp.float64 else inv

    def clip_grads_(self, grads, max_norm: float, total_norm) -> None:
        """In place: c = min(1, max_norm / (total_norm + 1e-6)), computed on the device in
        total_norm's dtype (a 0-d array on this device, e.g. from `grad_norm`); then every
        g ← g·c, the product formed in float32 (float64 for float64 g) and rounded to g's
        dtype. As in PyTorch, a NaN total makes every gradient NaN and an inf total turns
        finite entries into zeros. Nothing is read on the host."""
        xp = self.xp
        coef = xp.minimum(float(max_norm) / (total_norm + 1e-6), 1.0)
        for g in grads:
            if g.size:
                g *= coef.astype(xp.float64 if g.dtype == xp.float64 else xp.float32)

    # helpers of the found_inf masking (the reference way to skip without a host read)
    def _skip_flag(self, found_inf):
        """None, or a 0-d bool array: True when the update must be skipped."""
        return None if found_inf is None else found_inf.reshape(()) != 0

    def _quiet(self, skip):
        """Silence NumPy's overflow/invalid warnings while a possibly non-finite update is
        computed only to be discarded (CuPy never warns)."""
        import contextlib

        if skip is None or not hasattr(self.xp, "errstate"):
            return contextlib.nullcontext()
        return self.xp.errstate(all="ignore")

    def _snapshot(self, skip, *arrays) -> list | None:
        """Copies of `arrays` (None entries stay None) to restore from, when skipping."""
        if skip is None:
            return None
        return [None if a is None else a.copy() for a in arrays]

    def _restore(self, skip, arrays, saved) -> None:
        """Where `skip` is set, put back the snapshot; an array created during the update
        (no snapshot) is zeroed."""
        if skip is None:
            return
        xp = self.xp
        for a, s in zip(arrays, saved):
            if a is not None:
                xp.copyto(a, xp.zeros((), a.dtype) if s is None else s, where=skip)

# --- helpers of the fused-kernel references ---------------------------------------------------
_U32 = 0xFFFFFFFF
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_XENT_REDUCTIONS = ("mean", "sum", "none")


def _is_half(a) -> bool:
    """Whether `a` is a float16 or bfloat16 array (cheap: it runs on every activation)."""
    dt = getattr(a, "dtype", None)
    return dt is not None and dt.itemsize == 2 and (dt.kind == "f" or dt.name == "bfloat16")


def _widen(xp, a):
    """float16/bfloat16 arrays as float32 (the kernels' accumulation type); others as is."""
    return a.astype(xp.float32) if _is_half(a) else a


def _narrow(xp, a, half):
    """A float32 result stored back as the 16-bit operand dtype `half`."""
    a = xp.asarray(a)
    return a.astype(half) if a.dtype == xp.float32 else a


def _quiet_fp(xp):
    """NumPy's floating-point warnings off (exp overflow to inf is intended); CuPy never
    warns."""
    import contextlib

    errstate = getattr(xp, "errstate", None)
    return errstate(all="ignore") if errstate else contextlib.nullcontext()


def _check_xent(logits, target, reduction: str) -> None:
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"softmax_cross_entropy: logits of shape (N, C) and target of shape "
                         f"(N,) expected, got {tuple(logits.shape)} and {tuple(target.shape)}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy: integer targets expected, got {target.dtype}")
    if reduction not in _XENT_REDUCTIONS:
        raise ValueError(f"softmax_cross_entropy: reduction must be one of "
                         f"{_XENT_REDUCTIONS}, got {reduction!r}")


def _reduce_rows(xp, rows, ignored, reduction: str):
    """Per-row losses reduced as a 0-d array (mean over the rows not ignored)."""
    if reduction == "none":
        return rows
    total = rows.sum()
    if reduction == "mean":
        total = total / (~ignored).sum().astype(rows.dtype)
    return xp.asarray(total, dtype=rows.dtype)


def dropout_threshold(p: float) -> int:
    """⌊p·2³²⌋ for 0 ≤ p < 1: a Philox word u keeps its element when u ≥ this."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1) here, got {p}")
    return min(int(p * 4294967296.0), _U32)


def philox4x32_10(xp, counter, key) -> tuple:
    """Philox4x32-10 (Random123) of a counter of four 32-bit words (arrays or ints,
    broadcasting) and a key of two 32-bit ints: four uint32 arrays. The products of two
    32-bit words are formed exactly in uint64."""
    c0, c1, c2, c3 = (xp.asarray(c, dtype=xp.uint64) & xp.uint64(_U32) for c in counter)
    k0, k1 = int(key[0]) & _U32, int(key[1]) & _U32
    m0, m1 = xp.uint64(_PHILOX_M[0]), xp.uint64(_PHILOX_M[1])
    low = xp.uint64(_U32)
    for r in range(10):
        if r:
            k0, k1 = (k0 + _PHILOX_W[0]) & _U32, (k1 + _PHILOX_W[1]) & _U32
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = ((p1 >> xp.uint64(32)) ^ c1 ^ xp.uint64(k0), p1 & low,
                          (p0 >> xp.uint64(32)) ^ c3 ^ xp.uint64(k1), p0 & low)
    return tuple(c.astype(xp.uint32) for c in (c0, c1, c2, c3))


# --- elementwise kernels shared by every backend: kernel(xp, *outs, *ins) ------------------
def _mul_pair_into(xp, ga, gb, g, a, b):
    """ga = g·b, gb = g·a."""
    xp.multiply(g, b, out=ga)
    xp.multiply(g, a, out=gb)
