"""Kernels generated from pointwise expressions (`expr.py`).

A `Program` is a tuple of output expressions over named input variables and scalar
parameters. It renders to

- an array function `numpy_fn(xp, *inputs, *params)` (Python source over the NumPy/CuPy
  API, compiled once), which the CPU backend runs on its blocked thread pool;
- a CUDA kernel per storage dtype (`cuda_source`), a plain grid-stride loop that loads
  each operand through kernels/common.cuh, computes in the accumulation type (float for
  float16/bfloat16/float32, double for float64) and stores each output, compiled by the
  CuPy backend through NVRTC and cached.

Parameters are kernel arguments, never baked into the code, so one kernel serves every
slope or beta. The helpers in `_H` are the NumPy side of the precision-sensitive
primitives (stable sigmoid and softplus, erf/erfc, Φ).
"""

from __future__ import annotations

import hashlib
import math
import time
import types

import numpy as np

from . import trace as _trace
from .expr import PRIMS, free_vars, topo_order

__all__ = ["Program", "normal_cdf", "cuda_source", "cuda_pieces"]

_SQRT1_2 = math.sqrt(0.5)


# --- NumPy/CuPy helpers of the hand-written primitives -------------------------------------
def _is_cupy(xp) -> bool:
    return xp.__name__ == "cupy"


def _special(xp):
    """scipy.special (cupyx's on the GPU), or None where SciPy is not installed."""
    try:
        if _is_cupy(xp):
            import cupyx.scipy.special as special
        else:
            import scipy.special as special
    except ImportError:
        return None
    return special


def _math_ufunc(xp, fn, x):
    x = xp.asarray(x)
    return np.vectorize(fn, otypes=[x.dtype])(x) if x.size else x.copy()


def _sigmoid(xp, x):
    """1 / (1 + e⁻ˣ): exp overflow gives 1/inf = 0, never NaN."""
    if getattr(x, "ndim", 0) == 0 or x.dtype.kind == "c":
        return 1 / (1 + xp.exp(-x))
    t = xp.negative(x)
    xp.exp(t, out=t)
    t += 1
    xp.reciprocal(t, out=t)
    return t


def _softplus(xp, x):
    """ln(1 + eˣ) = max(x, 0) + ln(1 + e^−|x|), without overflow."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def _erf(xp, x):
    special = _special(xp)
    if special is None:
        return _math_ufunc(xp, math.erf, x)
    return special.erf(x)


def _erfc_exact(xp, z):
    """erfc elementwise to the dtype's precision (SciPy, else math.erfc per element)."""
    special = _special(xp)
    if special is None:
        return _math_ufunc(xp, math.erfc, z)
    return special.erfc(z).astype(z.dtype, copy=False)


def _erfc(xp, x):
    return _erfc_exact(xp, xp.asarray(x))


def _erfinv_scalar(v: float) -> float:
    """erf⁻¹(v) without SciPy: Giles' single-precision estimate refined by Newton steps on
    erf(y) = |v| (on erfc(y) = 1 − |v| above ½, where 1 − |v| is exact)."""
    if not -1.0 < v < 1.0:
        return math.copysign(math.inf, v) if abs(v) == 1.0 else math.nan
    w = -math.log((1.0 - v) * (1.0 + v))
    if w < 5.0:
        w -= 2.5
        p = 2.81022636e-08
        for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                  -0.00125372503, -0.00417768164, 0.246640727, 1.50140941):
            p = c + p * w
    else:
        w = math.sqrt(w) - 3.0
        p = -0.000200214257
        for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                  -0.0076224613, 0.00943887047, 1.00167406, 2.83297682):
            p = c + p * w
    a = abs(v)
    y = p * a
    for _ in range(60):
        r = (1.0 - a) - math.erfc(y) if a > 0.5 else math.erf(y) - a
        step = r / (2.0 / math.sqrt(math.pi) * math.exp(-y * y))
        y -= step
        if abs(step) <= 1e-16 * abs(y):
            break
    return math.copysign(y, v)


def _erfinv(xp, x):
    """erf⁻¹ elementwise (SciPy's, else `_erfinv_scalar` per element)."""
    x = xp.asarray(x)
    special = _special(xp)
    if special is None or not hasattr(special, "erfinv"):
        return _math_ufunc(xp, _erfinv_scalar, x)
    return special.erfinv(x).astype(x.dtype, copy=False)


# erfc(a) = t·exp(−a² + P(t)), t = 1/(1 + a/2), a ≥ 0 (Numerical Recipes, "erfcc")
_ERFC_P = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
           -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def _shifted_coefficients() -> tuple:
    """P(t) + ln ½ as a polynomial in s = 2t − 1 ∈ (−1, 1] (float32 values): its terms
    nearly cancel far less than P's in t (Σ|coefficient| 1.5 instead of 6.8), so Horner
    in float32 keeps Φ within 2e-7 relative; the ln ½ folds Φ = ½·erfc in."""
    q = [0.0] * len(_ERFC_P)
    binom = [1.0]  # ((1 + s)/2)^k's coefficients, k = 0, 1, …
    for c in _ERFC_P:
        for j, b in enumerate(binom):
            q[j] += c * b
        binom = [(a + b) / 2 for a, b in zip([0.0] + binom, binom + [0.0])]
    q[0] += math.log(0.5)
    return tuple(np.float32(v) for v in q)


_PHI32_Q = _shifted_coefficients()
_PHI32_CHUNK = 1 << 15  # elements per pass: the 5 float32 arrays (640 KiB) stay in L2
_F32 = np.float32


def _horner(t, coefs: tuple, out) -> None:
    """out = Σₖ coefs[k]·tᵏ elementwise (Horner's scheme in place, 2·degree passes)."""
    np.multiply(t, coefs[-1], out=out)
    for coef in coefs[-2:0:-1]:
        out += coef
        out *= t
    out += coefs[0]


def _phi32_chunk(x, out, c, a, b, mask) -> None:
    """out = Φ(x) for a 1-d float32 chunk, in float32 with the scratch arrays c, a, b and
    the bool array mask (all x's length). With z = x/√2, t = 1/(1 + |z|/2):
    Φ(−|x|) = t·exp(−x²/2 + P(t) + ln ½), and the exponent's large part −h²/2 (h = x with
    its low 12 significand bits cleared, so h² is exact) is a separate exp: rounding
    x²/2 ≈ 100 in float32 would cost 3e-6 relative in the left tail. No masked ufuncs
    (`where=` runs ~20x slower than arithmetic): Φ(x) = p + [x > 0]·(1 − 2p)."""
    np.clip(x, -40.0, 40.0, out=c)  # ±inf → ±40, where Φ is already 0 or 1
    np.bitwise_and(c.view(np.int32), np.int32(-4096), out=a.view(np.int32))  # h
    np.abs(c, out=out)
    out *= _F32(0.5 * _SQRT1_2)
    out += _F32(1)
    np.reciprocal(out, out=out)  # t
    np.subtract(c, a, out=b)
    c += a
    b *= c
    b *= _F32(-0.5)  # −(x² − h²)/2, small
    np.multiply(a, _F32(-0.5), out=c)
    c *= a
    np.exp(c, out=c)
    c *= out  # t·exp(−h²/2)
    np.multiply(out, _F32(2), out=a)
    a -= _F32(1)  # s
    _horner(a, _PHI32_Q, out)
    out += b
    np.exp(out, out=out)
    out *= c  # p = Φ(−|x|)
    np.greater(x, 0, out=mask)
    np.multiply(out, _F32(-2), out=c)
    c += _F32(1)
    c *= mask
    out += c


# Φ(−|x|) = t·H(t)·exp(−x²/2), t = 1/(1 + |x|/(2√2)), for |x| ≤ 3: H's float32 coefficients
# (constant term first), fit by iteratively reweighted least squares in Chebyshev form for
# relative error against SciPy's erfcx (fit error 8e-8 on |x| ≤ 3; beyond, Φ(−|x|) < 1.4e-3
# only needs to keep 1 − Φ(−|x|) accurate).
_PHI32_MAIN_H = tuple(np.float32(v) for v in (
    0.140138939, 0.147640869, 0.109786101, 0.0751754567, 0.138779193, -0.149653003,
    0.0381324738))
_PHI32_MAIN_K = np.float32(2 * math.sqrt(2))
_PHI32_TAIL = np.float32(-3)  # below: the exact-exponent path (_phi32_chunk)


def _phi32_main(x, out, a, b) -> None:
    """out = Φ(x) for a 1-d float32 chunk, accurate to 6e-7 relative for x ≥ −3 (left of
    that, finite garbage that `_normal_cdf_f32` replaces): 24 NumPy passes with one exp
    against `_phi32_chunk`'s 42 with two, as x²/2 ≤ 4.5 rounds within 2.4e-7 in float32
    and needs no split. Φ = Φ(−|x|) where x's sign bit is set, else its complement (½ at
    ±0, NaN at NaN), selected on the bits (np.where and np.sign are several times slower)."""
    np.abs(x, out=a)
    np.add(a, _PHI32_MAIN_K, out=b)
    np.divide(_PHI32_MAIN_K, b, out=b)  # t
    _horner(b, _PHI32_MAIN_H, out)
    out *= b
    np.multiply(a, _F32(-0.5), out=b)
    b *= a
    np.exp(b, out=b)
    out *= b  # p = Φ(−|x|)
    np.subtract(_F32(1), out, out=b)  # 1 − p
    bits, comp, neg = out.view(np.int32), b.view(np.int32), a.view(np.int32)
    np.right_shift(x.view(np.int32), 31, out=neg)  # all ones where x's sign bit is set
    np.bitwise_xor(bits, comp, out=bits)  # p where x ≤ −0, else 1 − p: a select on the bits
    bits &= neg
    bits ^= comp


def _normal_cdf_f32(x):
    """Φ of a float32 NumPy array, in float32 chunks that stay in cache: `_phi32_main`, then
    `_phi32_chunk` on the elements below −3, gathered (few, in a network's activations)."""
    out = np.empty(x.shape, np.float32)
    flat_x, flat_o = x.reshape(-1), out.reshape(-1)
    n = flat_x.size
    if n == 0:
        return out
    m = min(n, _PHI32_CHUNK)
    a, b = np.empty(m, np.float32), np.empty(m, np.float32)
    for lo in range(0, n, m):
        k = min(m, n - lo)
        _phi32_main(flat_x[lo:lo + k], flat_o[lo:lo + k], a[:k], b[:k])
    tail = np.flatnonzero(flat_x < _PHI32_TAIL)
    if tail.size:
        xs = flat_x[tail]
        ys = np.empty(tail.size, np.float32)
        m = min(tail.size, _PHI32_CHUNK)
        scratch = [np.empty(m, np.float32) for _ in range(3)] + [np.empty(m, bool)]
        for lo in range(0, tail.size, m):
            k = min(m, tail.size - lo)
            _phi32_chunk(xs[lo:lo + k], ys[lo:lo + k], *[s[:k] for s in scratch])
        flat_o[tail] = ys
    return out


def normal_cdf(xp, x):
    """Φ(x) = ½·erfc(−x/√2), accurate in relative terms in both tails. float64: SciPy's
    erfc (else math.erfc per element); float32 (and smaller) on NumPy: Numerical Recipes'
    Chebyshev fit of erfc (relative error < 1.2e-7) evaluated in float32, in cache-sized
    chunks, with the exponent split so that the left tail keeps float32 precision
    (relative error < 4e-7 down to the denormals); on CuPy, cupyx's erfc."""
    x = xp.asarray(x)
    if x.dtype == xp.float64 or _is_cupy(xp) or x.dtype.kind == "c":
        return 0.5 * _erfc_exact(xp, x * -_SQRT1_2)
    if x.dtype == np.float32:
        return _normal_cdf_f32(x)
    return _normal_cdf_f32(x.astype(np.float32)).astype(x.dtype)


def _rsqrt(xp, x):
    return 1 / xp.sqrt(x)


def _sgn(xp, x):
    """sign(x) for real x (0 at NaN, as torch.sign); x/|x| (0 at 0) for complex x."""
    if getattr(x, "dtype", None) is not None and x.dtype.kind == "c":
        a = xp.abs(x)
        return xp.where(a == 0, 0, x / xp.where(a == 0, 1, a))
    s = xp.sign(x)
    return _where(xp, s != s, 0, s) if getattr(s, "dtype", np.dtype(int)).kind == "f" else s


_BITS = {2: np.int16, 4: np.int32, 8: np.int64}  # a float width's integer of the same width


def _where(xp, c, a, b):
    """where(c, a, b). On NumPy, a select between floats of one dtype (and numbers) runs
    without branches, on the values' bits: np.where branches on every element, about 15x
    slower than arithmetic on a random mask (ReLU's backward), and a product with the
    mask would turn an infinite or NaN value that is not selected into NaN."""
    if xp is np and type(c) is np.ndarray and c.dtype == np.bool_:
        out = _select_bits(c, a, b)
        if out is not None:
            return out
    return xp.where(c, a, b)


def _select_bits(c, a, b):
    """where(c, a, b) as b ^ ((a ^ b) & m) on the bits (m: all ones where c), for a and
    b arrays of c's shape and one float dtype or numbers within its range; else None."""
    ref = a if type(a) is np.ndarray else b
    if type(ref) is not np.ndarray or ref.dtype.kind != "f" or ref.shape != c.shape:
        return None
    dt = ref.dtype
    bits = []
    for v in (a, b):
        if type(v) is np.ndarray:
            if v.dtype != dt or v.shape != c.shape:
                return None
            bits.append(v.view(_BITS[dt.itemsize]))
        elif type(v) is float or (type(v) is int and abs(v) < 1 << 24):
            bits.append(int(np.array(v, dt).view(_BITS[dt.itemsize])))
        else:
            return None
    ia, ib = bits
    if type(ia) is int and type(ib) is int:
        return None
    mask = c.astype(_BITS[dt.itemsize])
    if type(ia) is int and ia == 0:  # where(c, 0, b) = b & (c − 1)
        mask -= 1
        out = np.bitwise_and(ib, mask, out=mask)
    elif type(ib) is int and ib == 0:  # where(c, a, 0) = a & −c
        np.negative(mask, out=mask)
        out = np.bitwise_and(ia, mask, out=mask)
    else:
        np.negative(mask, out=mask)
        diff = np.bitwise_xor(ia, ib)
        np.bitwise_and(diff, mask, out=mask)
        out = np.bitwise_xor(ib, mask, out=mask)
    return out.view(dt)


def _remainder(xp, a, b):
    return xp.remainder(a, b)


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


_H = types.SimpleNamespace(py=_py, sigmoid=_sigmoid, softplus=_softplus, erf=_erf, erfc=_erfc,
                           ndtr=normal_cdf, rsqrt=_rsqrt, sgn=_sgn, remainder=_remainder,
                           where=_where, erfinv=_erfinv)


# --- programs ------------------------------------------------------------------------------
class Program:
    """Output expressions over input variables `inputs` (names, in argument order) and
    scalar parameters `params` (names, in argument order)."""

    def __init__(self, inputs: tuple, outputs: tuple, params: tuple = ()) -> None:
        unknown = free_vars(outputs) - set(inputs)
        if unknown:
            raise ValueError(f"pointwise program reads undeclared inputs {sorted(unknown)}")
        self.inputs, self.outputs, self.params = tuple(inputs), tuple(outputs), tuple(params)
        self.nodes = topo_order(self.outputs)
        # array passes of the rendering (its statements, uniform ones included): a
        # program of several passes is worth running in cache-sized blocks
        self.passes = sum(n.op not in ("var", "param", "const") for n in self.nodes)
        self._fn = self._out_fn = None
        self.key = hashlib.sha1(self.python_source().encode()).hexdigest()[:16]

    def python_source(self) -> str:
        """The NumPy/CuPy rendering: one statement per node (common subexpressions once)."""
        names: dict = {}
        args = [f"v{k}" for k in range(len(self.inputs))]
        pargs = [f"p{k}" for k in range(len(self.params))]
        for k, n in enumerate(self.inputs):
            names[("var", n)] = args[k]
        for k, n in enumerate(self.params):
            names[("param", n)] = pargs[k]
        lines = [f"def _pointwise(xp, {', '.join(args + pargs)}):"]
        uniform = set()  # nodes of parameters and constants only: Python numbers
        for k, node in enumerate(self.nodes):
            if node.op in ("var", "param"):
                names[node] = names[(node.op, node.value)]
                if node.op == "param":
                    uniform.add(node)
            elif node.op == "const":
                names[node] = repr(node.value[1])
                uniform.add(node)
            else:
                t = f"t{k}"
                code = PRIMS[node.op].np.format(*[names[a] for a in node.args])
                if all(a in uniform for a in node.args):
                    # computed on the host by NumPy, as a Python number: a NumPy scalar would
                    # not be weak in promotion (float32 stays float32 only against a number)
                    uniform.add(node)
                    code = f"_H.py({code.replace('xp', '_np')})"
                lines.append(f"    {t} = {code}")
                names[node] = t
        outs = [names[o] for o in self.outputs]
        lines.append(f"    return {outs[0] if len(outs) == 1 else '(' + ', '.join(outs) + ',)'}")
        return "\n".join(lines)

    def python_source_out(self) -> str:
        """The rendering as fn(xp, *outs, *inputs, *params) writing each output into its
        preallocated array (the last operation of each output writes there directly)."""
        src = self.python_source().split("\n")
        head, body, ret = src[0], src[1:-1], src[-1]
        outs = [f"o{k}" for k in range(len(self.outputs))]
        head = head.replace("(xp, ", f"(xp, {', '.join(outs)}, ", 1)
        last = {}
        for k, o in enumerate(self.outputs):
            idx = self.nodes.index(o)
            last.setdefault(f"t{idx}", k)
        lines, written = [head], set()
        for line in body:
            name, _, code = line.strip().partition(" = ")
            k = last.get(name)
            ufunc = _out_form(code) if k is not None else None
            if ufunc is not None:
                lines.append(f"    {name} = {ufunc[:-1]}, out=o{k})")
                written.add(k)
            else:
                lines.append(line)
        values = ret.strip().replace("return ", "").strip("(),").split(", ")
        for k, v in enumerate(values):
            if k not in written:
                lines.append(f"    o{k}[...] = {v}")
        return "\n".join(lines)

    def numpy_out_fn(self):
        """The compiled fn(xp, *outs, *inputs, *params) of `python_source_out`."""
        if self._out_fn is None:
            start = time.perf_counter_ns()
            scope = {"_H": _H, "_np": np, "__name__": __name__}  # warnings see gpugrad
            exec(compile(self.python_source_out(), f"<pointwise {self.key} out>", "exec"),
                 scope)
            self._out_fn = scope["_pointwise"]
            rec = _trace.active
            if rec is not None:
                rec.compiled("python", f"gg_pw_{self.key}_out", time.perf_counter_ns() - start)
        return self._out_fn

    def numpy_fn(self):
        """The compiled array function fn(xp, *inputs, *params)."""
        if self._fn is None:
            start = time.perf_counter_ns()
            scope = {"_H": _H, "_np": np, "__name__": __name__}  # warnings see gpugrad
            exec(compile(self.python_source(), f"<pointwise {self.key}>", "exec"), scope)
            self._fn = scope["_pointwise"]
            rec = _trace.active
            if rec is not None:
                rec.compiled("python", f"gg_pw_{self.key}", time.perf_counter_ns() - start)
        return self._fn

    def kernel_name(self, suffix: str, signature: str) -> str:
        return f"gg_pw_{self.key}_{signature}_{suffix}"


_OPERATOR_UFUNCS = {"+": "add", "-": "subtract", "*": "multiply", "/": "true_divide"}
_NOT_UFUNCS = ("xp.real(",)


def _out_form(code: str) -> str | None:
    """`code` (one rendered operation) as a ufunc call that takes `out=`, or None."""
    if code.startswith("xp.") and not code.startswith(_NOT_UFUNCS):
        return code
    if code.startswith("(-") and " " not in code:
        return f"xp.negative({code[2:-1]})"
    parts = code[1:-1].split(" ") if code.startswith("(") else []
    if len(parts) == 3 and parts[1] in _OPERATOR_UFUNCS:
        return f"xp.{_OPERATOR_UFUNCS[parts[1]]}({parts[0]}, {parts[2]})"
    return None


# Strided operands ('x', 'y'): the launch iterates the output in C order over at most this
# many dims (after `collapse_dims`); a launch that keeps more copies its operands first.
MAX_STRIDED_DIMS = 8
_INT32_MAX = 2**31 - 1


def collapse_dims(shape: tuple, strides: list) -> tuple[tuple, list]:
    """(shape, [strides of each operand]) with dims of size 1 dropped and each run of
    adjacent dims that every operand walks linearly merged into one (as CuPy's elementwise
    kernels reduce dims), so most strided launches are 1-D or 2-D. `strides` are element
    strides over `shape` (0 on broadcast dims); the output is C-contiguous, so only the
    operands constrain a merge: dims j−1 and j merge when stride[j−1] = stride[j]·shape[j]
    for every operand."""
    keep = [j for j, d in enumerate(shape) if d != 1]
    dims: list = []
    out: list = [[] for _ in strides]
    for j in keep:
        if dims and all(o[-1] == s[j] * shape[j] for o, s in zip(out, strides)):
            dims[-1] *= shape[j]
            for o, s in zip(out, strides):
                o[-1] = s[j]
        else:
            dims.append(shape[j])
            for o, s in zip(out, strides):
                o.append(s[j])
    return tuple(dims), [tuple(o) for o in out]


def strided_signature(letters: str, shape: tuple, strides: list) -> str:
    """The operand signature of a launch with strided operands ('x'/'y' in `letters`, their
    element `strides` over the collapsed `shape` in operand order): the letters, the rank
    and the index width ('i' 32-bit when the element count and every operand's offset
    range fit in int, else 'l'), e.g. 'xa_2i'."""
    n = math.prod(shape)
    span = max((sum(abs(s) * (d - 1) for s, d in zip(st, shape)) for st in strides),
               default=0)
    wide = n > _INT32_MAX or span > _INT32_MAX
    return f"{letters}_{len(shape)}{'l' if wide else 'i'}"


def launch_plan(shape: tuple, operands: list) -> tuple[str, list, list]:
    """How a generated kernel reads each operand of a launch over the broadcast `shape`:
    `operands` holds, per input, None (a number) or an array (NumPy or CuPy: its shape,
    strides, itemsize, dtype and flags are read, never its data). A single value is read
    once ('s', 'c'), a C-contiguous operand of the full shape at the element index ('a',
    'b'), any other layout through its element strides ('x', 'y'; broadcast dims have
    stride 0) over the collapsed dims (`collapse_dims`); an operand whose collapsed strides
    are the output's reads at the index too. Returns (signature for `cuda_source`, the
    layout arguments that follow n as ints, the indices of the operands to pass
    C-contiguous and broadcast to `shape`: a copy, only where the collapsed launch keeps
    more than MAX_STRIDED_DIMS dims or a byte stride is no multiple of the item size)."""
    sig, strided = [], []
    for k, a in enumerate(operands):
        if a is None:
            sig.append("p")
            continue
        b = a.dtype == np.bool_
        if a.size == 1:
            sig.append("c" if b else "s")
        elif tuple(a.shape) == tuple(shape) and a.flags.c_contiguous:
            sig.append("b" if b else "a")
        else:
            sig.append("y" if b else "x")
            strided.append(k)
    strides = [_element_strides(operands[k], shape) for k in strided]
    if strided and all(s is not None for s in strides):
        dims, strides = collapse_dims(tuple(shape), strides)
        if len(dims) <= MAX_STRIDED_DIMS:
            contiguous, layout = _c_strides(dims), []
            for k, st in zip(strided, strides):
                if st == contiguous:  # walks the output's order: read at the element index
                    sig[k] = "b" if sig[k] == "y" else "a"
                else:
                    layout.extend(st)
            if not layout:
                return "".join(sig), [], []
            strides = [st for st in strides if st != contiguous]
            return (strided_signature("".join(sig), dims, strides), [*dims[1:], *layout], [])
    for k in strided:
        sig[k] = "b" if sig[k] == "y" else "a"
    return "".join(sig), [], strided


def _element_strides(a, shape: tuple) -> tuple | None:
    """`a`'s strides in elements as an operand broadcast to `shape` (0 on the dims it is
    broadcast along), or None when a byte stride is no multiple of the item size."""
    out = [0] * len(shape)
    lead = len(shape) - a.ndim
    for j, (d, s) in enumerate(zip(a.shape, a.strides)):
        if d != 1:
            if s % a.itemsize:
                return None
            out[lead + j] = s // a.itemsize
    return tuple(out)


def _c_strides(dims: tuple) -> tuple:
    """Element strides of a C-contiguous array of shape `dims`."""
    out, step = [], 1
    for d in reversed(dims):
        out.append(step)
        step *= d
    return tuple(reversed(out))


def cuda_source(prog: Program, storage: str, suffix: str, signature: str) -> str:
    """A CUDA kernel computing `prog` over n elements: `storage` is the C storage type of
    the float operands (float, double, gg_half, gg_bf16); `signature` has one letter per
    input: 'a' a full array, 's' a single value broadcast to every element (read once),
    'b' a full bool array, 'c' a single bool, 'p' a number (passed as a double), 'x' a
    strided (or broadcast) array, 'y' a strided bool array. With strided operands the
    letters are followed by `_` and the layout: the rank D of the launch and the index
    width ('i' int, 'l' long long), e.g. 'xa_2i' (see `strided_signature`).
    Arguments: the inputs, the outputs, the parameters (double) and n; with strided
    operands then the sizes of dims 1..D−1 of the (C-contiguous) output and, per strided
    operand in order, its D element strides (0 on broadcast dims, negative when flipped),
    all long long. The element index is split into coordinates innermost first, one
    division per dim (none for dim 0), in the index type."""
    name = prog.kernel_name(suffix, signature)
    args, layout, pre, body, stores = cuda_pieces(prog, storage, signature)
    return "\n".join([
        f'extern "C" __global__ void {name}({", ".join(args + ["long long n"] + layout)}) {{',
        f"    typedef gg_acc<{storage}>::type A;",
        *pre,
        "    GG_GRID_STRIDE(i, n) {",
        *body,
        *stores,
        "    }",
        "}",
    ])


def cuda_pieces(prog: Program, storage: str, signature: str, given: dict | None = None):
    """The parts of `cuda_source`'s kernel, for kernels that evaluate a program at an
    element index `i` of their own (a row kernel's epilogue): (arguments: inputs, outputs,
    parameters; the layout arguments of strided operands; statements before the loop,
    which need the accumulation type A defined; statements computing the outputs at i;
    the statements storing them at i). `given` maps an input's index to a C expression
    of type A that is its value (that input has no argument and is not loaded)."""
    given = given or {}
    letters, _, layout = signature.partition("_")
    strided = [k for k, sig in enumerate(letters) if sig in "xy" and k not in given]
    rank = int(layout[:-1]) if strided else 0
    args, lay, body = [], [], []
    names: dict = {}
    for k, (n, sig) in enumerate(zip(prog.inputs, letters)):
        if k in given:
            names[("var", n)] = (given[k], None)
            continue
        if sig == "p":  # a number operand: passed by value, like a parameter
            args.append(f"double v{k}")
            names[("var", n)] = (f"A(v{k})", None)
            continue
        is_bool = sig in "bcy"
        ctype = "bool" if is_bool else storage
        args.append(f"const {ctype}* __restrict__ v{k}")
        at = {"a": "i", "b": "i", "x": f"of{k}", "y": f"of{k}"}.get(sig)  # None: read once
        load = (f"v{k}[{at or 0}]" if is_bool
                else f"gg_load(v{k}{'' if at is None else ' + ' + at})")
        names[("var", n)] = (f"v{k}_", f"const {'bool' if is_bool else 'A'} v{k}_ = {load};")
    for k in range(len(prog.outputs)):
        args.append(f"{storage}* __restrict__ o{k}")
    for k, n in enumerate(prog.params):
        args.append(f"double p{k}_arg")
        names[("param", n)] = (f"p{k}", None)
    pre = [f"    const A p{k} = A(p{k}_arg);" for k in range(len(prog.params))]
    if strided:
        pre.append(f"    typedef {'long long' if layout[-1] == 'l' else 'int'} I;")
        for j in range(1, rank):
            lay.append(f"long long sz{j}_arg")
            pre.append(f"    const I sz{j} = I(sz{j}_arg);")
        for k in strided:
            for j in range(rank):
                lay.append(f"long long st{k}_{j}_arg")
                pre.append(f"    const I st{k}_{j} = I(st{k}_{j}_arg);")
        body.append("        I r = I(i);")
        body.append(f"        I {', '.join(f'of{k} = 0' for k in strided)};")
        for j in range(rank - 1, 0, -1):
            body.append(f"        {{ const I q = r / sz{j}; const I c = r - q * sz{j}; "
                        + " ".join(f"of{k} += c * st{k}_{j};" for k in strided)
                        + " r = q; }")
        body.append("        " + " ".join(f"of{k} += r * st{k}_0;" for k in strided))
    for k, node in enumerate(prog.nodes):
        if node.op in ("var", "param"):
            ident, stmt = names[(node.op, node.value)]
            names[node] = ident
            if stmt is not None:
                body.append(f"        {stmt}")
        elif node.op == "const":
            v = node.value[1]
            names[node] = ("true" if v else "false") if isinstance(v, bool) else f"A({v!r})"
        else:
            ctype = "bool" if node.is_bool else "A"
            body.append(f"        const {ctype} t{k} = "
                        + PRIMS[node.op].cu.format(*[names[a] for a in node.args]) + ";")
            names[node] = f"t{k}"
    stores = [f"        gg_store(o{k} + i, A({names[o]}));" for k, o in enumerate(prog.outputs)]
    return args, lay, pre, body, stores


# --- compile and build counters (read by gpugrad.fuse users and the profiler) --------------
_STATS = {"fused_programs": 0, "fused_build_s": 0.0, "cuda_kernels": 0, "cuda_compile_s": 0.0}


def record_build(kind: str, seconds: float) -> None:
    """Count one built object: kind "fused" (a fused program built by gpugrad.fuse: its
    expressions composed and its VJP derived) or "cuda" (a generated CUDA kernel compiled)."""
    prefix = "fused_programs" if kind == "fused" else "cuda_kernels"
    _STATS[prefix] += 1
    _STATS["fused_build_s" if kind == "fused" else "cuda_compile_s"] += seconds
    rec = _trace.active
    if rec is not None and kind == "fused":  # CUDA compiles report their kernel's name
        rec.compiled("fuse", "fused program", int(seconds * 1e9))


def compile_stats() -> dict:
    """Counters since start (or `reset_compile_stats`): `fused_programs`, the distinct fused
    programs gpugrad.fuse built, and `fused_build_s`, the seconds spent building them;
    `cuda_kernels`, the generated pointwise kernels (plain and reduction) compiled, and
    `cuda_compile_s`, the seconds NVRTC (or CuPy's disk cache) took for them."""
    return dict(_STATS)


def reset_compile_stats() -> None:
    """Zero the counters of `compile_stats`."""
    for k in _STATS:
        _STATS[k] = type(_STATS[k])(0)
