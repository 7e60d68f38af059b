"""Epilogues of the row ops: a pointwise program (gpugrad/backend/pointwise.py) applied to
the output y of softmax, log-softmax or a normalisation while y is computed, instead of in
a second pass over y (gpugrad.fuse builds them for a chain of pointwise ops that starts on
such an output).

The CPU backend computes y one cache block of rows at a time and runs the program's NumPy
rendering on that block while it is in cache, on the CPU thread pool (`cpu_rows`). The
CUDA backend compiles a variant of its row kernel whose store also evaluates the program's
CUDA rendering (`cuda_epilogue_source`). A backend or case without either runs the program
as a second pass (`Epilogue.finish`), with the same result.
"""

from __future__ import annotations

import numpy as np

from . import cpu_parallel
from .array import is_half
from .pointwise import Program, cuda_pieces

__all__ = ["Epilogue", "cpu_rows", "cuda_epilogue_source", "epilogue_kernel_name"]


class Epilogue:
    """The program `prog` to run on a row op's output y: operand `slot` of `prog` is y, the
    other operands are `operands` (arrays broadcasting against y, or numbers; the entry at
    `slot` is ignored), `params` its scalar parameters. `keep_y` says whether y itself is
    wanted (the op's backward saves it, or it is read elsewhere); otherwise only the
    program's result is stored. The row op sets `out`, the program's result (a tuple for
    several outputs)."""

    __slots__ = ("prog", "slot", "operands", "params", "keep_y", "out")

    def __init__(self, prog: Program, slot: int, operands, params=(), keep_y: bool = True):
        self.prog, self.slot, self.params, self.keep_y = prog, slot, tuple(params), keep_y
        self.operands = tuple(operands)
        self.out = None

    def with_y(self, y) -> list:
        """The program's operands with y at its slot."""
        ops = list(self.operands)
        ops[self.slot] = y
        return ops

    def finish(self, backend, y):
        """Run the program as a second pass over y (no fused epilogue here); returns y."""
        self.out = backend.pointwise(self.prog, self.with_y(y), self.params)
        return y


def cpu_rows(ep: Epilogue, rows_fn, x, blockable: bool) -> tuple:
    """(y or None, *stats) where rows_fn(x_block) -> (y_block, *stats_block) is a row op's
    NumPy code (each stat keeps its reduced axes, so it has x's leading axis), applied to
    blocks of rows of x (along axis 0, when `blockable`: the op reduces no axis 0), with
    the program of `ep` run on each block's y while it is in cache and written into
    `ep.out`; y is stored only when `ep.keep_y`. One blocked pass on the thread pool."""
    prog, slot, params = ep.prog, ep.slot, ep.params
    half = x.dtype if is_half(x) else None
    for a in ep.operands:
        if is_half(a):
            half = a.dtype
    others = [a for k, a in enumerate(ep.operands) if k != slot]
    n_out = len(prog.outputs)
    fn_out = prog.numpy_out_fn()
    shape = x.shape
    if blockable and x.ndim:
        probe_x = x[:1]
    else:
        probe_x = x
    probe = rows_fn(probe_x)
    y1, stats1 = probe[0], probe[1:]
    # the program's result dtypes, from one element
    one = [a.reshape(-1)[:1] if isinstance(a, np.ndarray) else a for a in ep.with_y(y1)]
    if half is not None:
        one = [a.astype(np.float32) if is_half(a) else a for a in one]
    res = prog.numpy_fn()(np, *one, *params)
    res = res if type(res) is tuple else (res,)
    outs = tuple(np.empty(shape, dtype=half if half is not None else np.asarray(r).dtype)
                 for r in res)
    if probe_x is x:  # one block: the op's own results are whole already
        y, stats = (y1 if ep.keep_y else None), tuple(stats1)
        _block(fn_out, outs, None, (), slot, params, half, others, y1, ())
    else:
        y = np.empty(shape, dtype=y1.dtype) if ep.keep_y else None
        stats = tuple(np.empty((shape[0],) + s.shape[1:], dtype=s.dtype) for s in stats1)
        n_st = len(stats)

        def kernel(xp, *blk):
            ob, yb, sb = blk[:n_out], blk[n_out], blk[n_out + 1:n_out + 1 + n_st]
            xb, ob_others = blk[n_out + 1 + n_st], blk[n_out + 2 + n_st:]
            r = rows_fn(xb)
            _block(fn_out, ob, yb, sb, slot, params, half, ob_others, r[0], r[1:])

        cpu_parallel.blocked(kernel, (*outs, y, *stats), (x, *others))
    ep.out = outs if n_out > 1 else outs[0]
    return (y, *stats)


def _block(fn_out, outs, y_out, stats_out, slot, params, half, others, yb, statsb):
    """One block: store y and the stats where wanted, run the program into `outs`."""
    if y_out is not None:
        y_out[...] = yb
    for s_out, s in zip(stats_out, statsb):
        s_out[...] = s
    ops = list(others)
    ops.insert(slot, yb)
    if half is not None:
        ops = [a.astype(np.float32) if is_half(a) else a for a in ops]
    fn_out(np, *outs, *ops, *params)


# Per row family: the arguments before y, those after the program's, the row template's
# call (kernels/softmax.cu, kernels/layer_norm.cu) with the generated store `epi`.
_ROW_KERNELS = {
    "softmax": ("const T* __restrict__ x", "long long rows, long long cols, int log_out",
                "softmax_rows<T>(x, rows, cols, log_out, epi);"),
    "layer_norm": ("const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b",
                   "A* __restrict__ mean, A* __restrict__ rstd, long long rows, long long cols, "
                   "double eps",
                   "layer_norm_rows<T>(x, w, b, mean, rstd, rows, cols, eps, epi);"),
}


def epilogue_kernel_name(family: str, prog: Program, slot: int, suffix: str,
                         signature: str) -> str:
    """The name of a row kernel's generated epilogue variant."""
    return f"{family}_epi_{prog.key}_{slot}_{signature}_{suffix}"


def cuda_epilogue_source(family: str, prog: Program, slot: int, storage: str, suffix: str,
                         signature: str) -> str:
    """The CUDA kernel (without its includes: the row file is pasted before it with
    GG_ROW_EPILOGUE_ONLY defined) of `family`'s row kernel ("softmax", "layer_norm") whose
    store is a lambda that writes y (where the y pointer is not null) and evaluates `prog`
    at the element with operand `slot` equal to y rounded to the storage type (as a second
    pass would read it), storing its outputs there. `signature` is `launch_plan`'s for the
    program's operands over y's shape (the letter at `slot` is 'a'). Arguments: the row
    kernel's inputs, y, the program's (inputs but `slot`, outputs, parameters, strided
    layout, as `cuda_source`), then the row kernel's sizes."""
    head, tail, call = _ROW_KERNELS[family]
    acc = "double" if storage == "double" else "float"
    args, layout, pre, body, stores = cuda_pieces(prog, storage, signature, given={slot: "yv"})

    def typed(text: str) -> str:
        return text.replace("const T*", f"const {storage}*").replace("A*", f"{acc}*")

    name = epilogue_kernel_name(family, prog, slot, suffix, signature)
    sig = ", ".join([typed(head), f"{storage}* __restrict__ y", *args, *layout, typed(tail)])
    return "\n".join([
        f'extern "C" __global__ void {name}({sig}) {{',
        f"    typedef {storage} T;",
        "    typedef gg_acc<T>::type A;",
        *pre,
        "    auto epi = [&](long long i, A v) {",
        "        T yt;",
        "        gg_store(&yt, v);",
        "        if (y) y[i] = yt;",
        "        const A yv = gg_load(&yt);",
        *body,
        *stores,
        "    };",
        f"    {call}",
        "}",
    ])
