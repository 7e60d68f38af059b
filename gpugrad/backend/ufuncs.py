"""The pointwise family's array side: single ufuncs, the pointwise table's programs
(gpugrad/backend/pointwise.py) and multi-output elementwise kernels; the NumPy versions
are the reference."""

from __future__ import annotations

from . import trace as _trace
from .array import is_half, narrow, widen
from .pointwise import normal_cdf
from .pointwise_reduce import reduce_reference


class PointwiseFamily:
    """Elementwise kernels of a backend (mixed into Backend; uses `xp`)."""

    # A multi-step formula is one `*_into` kernel writing into preallocated outputs;
    # `_run_elementwise` applies it (the NumPy backend in cache-sized blocks, so its
    # several passes cost about one trip through memory, like a fused GPU kernel). The
    # pointwise table's rows go through `pointwise`.
    def _run_elementwise(self, kernel, outs: tuple, ins: tuple) -> None:
        kernel(self.xp, *outs, *ins)

    def binary(self, ufunc, a, b):
        """ufunc(a, b) with broadcasting (the CPU backend splits large ones across threads)."""
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel(ufunc.__name__, self, (a, b), self.binary, ufunc, a, b)
        return ufunc(a, b)

    def unary(self, ufunc, a):
        """ufunc(a) (the CPU backend splits large ones across threads)."""
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel(ufunc.__name__, self, (a,), self.unary, ufunc, a)
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
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel(f"gg_pw_{prog.key}", self, ins, self.pointwise, prog, ins, params)
        xp = self.xp
        half = None
        for a in ins:
            if is_half(a):
                half = a.dtype
        if half is not None:
            ins = [widen(xp, a) for a in ins]
        out = prog.numpy_fn()(xp, *ins, *params)
        if half is not None:
            if type(out) is tuple:
                return tuple(narrow(xp, o, half) for o in out)
            return narrow(xp, out, half)
        return out

    def pointwise_reduce(self, prog, ins, params, kind: str, dims: tuple, keepdim: bool):
        """The reduction `kind` ("sum", "mean", "amax", "amin") over `dims` of a one-output
        pointwise program's result (gpugrad.fuse's reduction epilogue): here the program's
        result, reduced (the CPU backend reduces each cache block as it computes it, the
        CUDA backend runs one generated reduction kernel)."""
        return reduce_reference(self.xp, self.pointwise(prog, ins, params), kind, dims, keepdim)

    @_trace.traced
    def mul_pair(self, g, a, b) -> tuple:
        """(g·b, g·a), the two products of a multiplication's VJP, for same-shape real
        arrays (the CPU backend makes both in one cache-blocked pass, reading g once)."""
        return g * b, g * a

    def add_(self, a, b) -> None:
        """a += b in place (b has a's shape and dtype)."""
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel("add_", self, (a, b), self.add_, a, b)
        self.xp.add(a, b, out=a)


# --- elementwise kernels shared by every backend: kernel(xp, *outs, *ins) ------------------
def mul_pair_into(xp, ga, gb, g, a, b):
    """ga = g·b, gb = g·a."""
    xp.multiply(g, b, out=ga)
    xp.multiply(g, a, out=gb)
