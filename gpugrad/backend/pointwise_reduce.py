"""A pointwise program followed by a reduction (sum, mean, amax, amin over some axes), run
without materialising the elementwise result where the backend can: the reduction
epilogue of gpugrad.fuse.

- `reduce_reference`: the reduction of a materialised result (NumPy/CuPy), the oracle;
- `cpu_pointwise_reduce`: the CPU's blocked pass: the program runs on cache-sized row
  blocks shared among the threads and each block is reduced while it is in cache;
- `cuda_reduce_source`: the generated kernel, the program's elementwise kernel
  (`pointwise.cuda_source`) turned into a grid-stride loop over (row, lane) pairs: lane t
  of a row folds the row's elements t, t + nt, t + 2nt, ... (consecutive threads read
  consecutive elements), writing one partial per pair in the accumulation type; the
  backend reduces the partials (rows x nt) in a second, small pass.
"""

from __future__ import annotations

import math

import numpy as np

from . import cpu_parallel
from .array import is_half
from .pointwise import cuda_source

__all__ = ["REDUCTIONS", "reduce_reference", "cpu_pointwise_reduce", "cuda_reduce_source"]

REDUCTIONS = ("sum", "mean", "amax", "amin")

# (initial value, fold of acc and v) in the kernels' accumulation type A
_FOLD = {"sum": ("A(0)", "acc + v"), "mean": ("A(0)", "acc + v"),
         "amax": ("-gg_inf<A>()", "gg_max(acc, v)"), "amin": ("gg_inf<A>()", "gg_min(acc, v)")}


def _reducer(xp, kind: str):
    return {"sum": xp.sum, "mean": xp.sum, "amax": xp.amax, "amin": xp.amin}[kind]


def reduce_reference(xp, full, kind: str, dims: tuple, keepdim: bool):
    """The reduction `kind` of `full` over `dims` (NumPy's mean, amax and amin; a NaN
    propagates through amax and amin)."""
    if kind == "mean":
        return xp.mean(full, axis=dims, keepdims=keepdim)
    return _reducer(xp, kind)(full, axis=dims, keepdims=keepdim)


def cpu_pointwise_reduce(prog, ins, params, kind: str, dims: tuple, keepdim: bool):
    """`reduce_reference(program(ins))` in one blocked pass over the rows of the broadcast
    shape, or None where that does not pay (small, or too few rows to share): the caller
    then runs the reference. float16/bfloat16 operands compute and reduce in float32 and
    the result is stored in their dtype."""
    shape = np.broadcast_shapes(*[np.shape(a) for a in ins])
    size = math.prod(shape)
    threads = cpu_parallel.THREADS
    if not shape or size < 4 * cpu_parallel.BLOCK or shape[0] < 2 * threads or not dims:
        return None
    n = shape[0]
    half = next((a.dtype for a in ins if is_half(a)), None)
    fn = prog.numpy_fn()
    reducer = _reducer(np, kind)
    rows = max(1, cpu_parallel.BLOCK * n // size)

    def block(lo: int, hi: int):
        blk = [a[lo:hi] if isinstance(a, np.ndarray) and a.ndim == len(shape)
               and a.shape[0] == n else a for a in ins]
        if half is not None:
            blk = [a.astype(np.float32) if is_half(a) else a for a in blk]
        v = fn(np, *blk, *params)
        if v.shape[1:] != shape[1:] or v.shape[0] != hi - lo:
            v = np.broadcast_to(v, (hi - lo,) + shape[1:])
        return reducer(v, axis=dims, keepdims=True)

    if 0 not in dims:
        first = block(0, min(rows, n))
        out = np.empty((n,) + first.shape[1:], dtype=first.dtype)
        out[:first.shape[0]] = first

        def run(lo: int, hi: int) -> None:
            for i in range(lo, hi, rows):
                out[i:min(i + rows, hi)] = block(i, min(i + rows, hi))

        start = first.shape[0]
        cpu_parallel.run_shares(lambda lo, hi: run(start + lo, start + hi), n - start,
                                threads)
    else:
        parts: dict = {}

        def run(lo: int, hi: int) -> None:
            acc = None
            for i in range(lo, hi, rows):
                p = block(i, min(i + rows, hi))
                acc = p if acc is None else reducer(np.stack([acc, p]), axis=0)
            parts[lo] = acc

        cpu_parallel.run_shares(run, n, threads)
        out = None
        for lo in sorted(parts):  # a fixed order: the same result every time
            p = parts[lo]
            if p is not None:
                out = p if out is None else reducer(np.stack([out, p]), axis=0)
    if kind == "mean":
        out = out / math.prod(shape[d] for d in dims)
    if half is not None:
        out = out.astype(half)
    if not keepdim:
        out = out.reshape(tuple(s for i, s in enumerate(out.shape) if i not in dims))
    return out


def cuda_reduce_source(prog, storage: str, sfx: str, signature: str, kind: str) -> str | None:
    """The reduction kernel of a one-output program for `storage` and an operand
    `signature` (see `pointwise.cuda_source`), or None where the elementwise kernel's text
    does not have the expected shape. Arguments: the inputs (laid out as rows x cols, the
    reduced axes last), the partials o0 (rows x nt, in the accumulation type), the
    parameters (double), rows, cols and nt."""
    if len(prog.outputs) != 1:
        return None
    init, fold = _FOLD[kind]
    acc = "double" if storage == "double" else "float"
    src = cuda_source(prog, storage, f"{sfx}_{kind}", signature)
    edits = [
        (f"{storage}* __restrict__ o0", f"{acc}* __restrict__ o0"),
        ("long long n)", "long long rows, long long cols, long long nt)"),
        ("    GG_GRID_STRIDE(i, n) {",
         "    GG_GRID_STRIDE(j, rows * nt) {\n"
         f"      A acc = {init};\n"
         "      const long long row = j / nt;\n"
         "      for (long long i = row * cols + j % nt; i < (row + 1) * cols; i += nt) {"),
    ]
    for old, new in edits:
        if src.count(old) != 1:
            return None
        src = src.replace(old, new)
    lines = src.split("\n")
    store = [k for k, ln in enumerate(lines) if ln.strip().startswith("gg_store(o0 + i, ")]
    if len(store) != 1 or lines[-2] != "    }" or lines[-1] != "}":
        return None
    value = lines[store[0]].strip()[len("gg_store(o0 + i, "):-2]
    lines[store[0]] = f"        {{ const A v = {value}; acc = {fold}; }}"
    lines[-2:] = ["      }", "      o0[j] = acc;", "    }", "}"]
    return "\n".join(lines)
