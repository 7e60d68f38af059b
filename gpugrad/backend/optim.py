"""The optimizer family: in-place multi-tensor updates (SGD, Adam/AdamW, RMSprop), the
gradient norm, unscaling and clipping. The NumPy versions are the reference; the CUDA
backend may replace each with one fused multi-tensor kernel (kernels/optim.cu)."""

from __future__ import annotations

import contextlib

from . import trace as _trace


class OptimFamily:
    """Optimizer kernels of a backend (mixed into Backend; uses `xp`)."""

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
    @_trace.traced
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

    @_trace.traced
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

    @_trace.traced
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

    @_trace.traced
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

    @_trace.traced
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

    @_trace.traced
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
