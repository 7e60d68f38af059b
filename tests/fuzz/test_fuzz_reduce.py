"""Property tests: reductions with generated dims (None, int, tuple, negative) and keepdim,
over shapes with size-0 and size-1 axes, against PyTorch (values and gradients)."""

import math

import numpy as np
import pytest
import torch
from _fuzzlib import DTYPES, LAYOUTS, arrays, compare, dims_for, shapes
from hypothesis import given
from hypothesis import strategies as st

import gpugrad as gg


def _torch_dims(dim):
    return dim


REDUCTIONS = {
    # name -> (gpugrad call, torch call, domain)
    "sum": (lambda x, d, k: x.sum(d, keepdim=k), lambda x, d, k: x.sum(d, keepdim=k)
            if d is not None else (x.sum().reshape([1] * x.ndim) if k else x.sum()), "real"),
    "mean": (lambda x, d, k: x.mean(d, keepdim=k), lambda x, d, k: x.mean(d, keepdim=k)
             if d is not None else (x.mean().reshape([1] * x.ndim) if k else x.mean()), "real"),
    "amax": (lambda x, d, k: x.amax(d, keepdim=k),
             lambda x, d, k: x.amax(() if d is None else d, keepdim=k), "real"),
    "amin": (lambda x, d, k: x.amin(d, keepdim=k),
             lambda x, d, k: x.amin(() if d is None else d, keepdim=k), "real"),
    "logsumexp": (lambda x, d, k: x.logsumexp(d, keepdim=k),
                  lambda x, d, k: x.logsumexp(tuple(range(x.ndim)) if d is None else d,
                                              keepdim=k), "large"),
    "norm": (lambda x, d, k: x.norm(dim=d, keepdim=k),
             lambda x, d, k: torch.linalg.vector_norm(x, dim=d, keepdim=k), "real"),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(shape=shapes(), dtype=DTYPES, lay=LAYOUTS, keepdim=st.booleans(), data=st.data())
def test_reduction(name, shape, dtype, lay, keepdim, data):
    gfn, tfn, domain = REDUCTIONS[name]
    x = data.draw(arrays(shape, dtype, domain))
    dim = dims_for(data.draw, len(shape))
    compare(lambda v: gfn(v, dim, keepdim), [x], torch_fn=lambda v: tfn(v, dim, keepdim),
            layouts=[lay])


@given(shape=shapes(), dtype=DTYPES, keepdim=st.booleans(), correction=st.sampled_from([0, 1, 2]),
       data=st.data())
def test_var(shape, dtype, keepdim, correction, data):
    x = data.draw(arrays(shape, dtype))
    dim = dims_for(data.draw, len(shape))

    def g(v):
        return v.var(dim, correction=correction, keepdim=keepdim)

    def t(v):
        return torch.var(v, dim, correction=correction, keepdim=keepdim)

    # With correction >= n (torch warns "degrees of freedom is <= 0") torch's gradient is
    # inf/NaN by a special case whose signs differ between its dim=None and dim=... branches;
    # only the values are compared there.
    dims = range(x.ndim) if dim is None else ((dim,) if isinstance(dim, int) else dim)
    n = math.prod(x.shape[d] for d in dims) if x.ndim else 1
    compare(g, [x], torch_fn=t, grad=correction < n)


@given(shape=shapes(), dtype=DTYPES, keepdim=st.booleans(), largest=st.booleans(),
       lay=LAYOUTS, data=st.data())
def test_max_min_dim(shape, dtype, keepdim, largest, lay, data):
    # values from a continuous range: torch and NumPy may pick different indices among ties
    x = data.draw(arrays(shape, dtype, "large"))
    dim = data.draw(st.integers(-max(len(shape), 1), max(len(shape), 1) - 1))
    name = "max" if largest else "min"

    def f(v):
        return getattr(v, name)(dim, keepdim=keepdim)

    out = compare(f, [x], layouts=[lay])
    if out is not None:
        assert out[1].dtype == gg.int64 and not out[1].requires_grad


@given(shape=shapes(), dtype=DTYPES, largest=st.booleans(), data=st.data())
def test_max_min_all(shape, dtype, largest, data):
    x = data.draw(arrays(shape, dtype))
    name = "max" if largest else "min"
    compare(lambda v: getattr(v, name)(), [x])


@given(shape=shapes(), data=st.data())
def test_reduce_int_and_bool(shape, data):
    x = np.random.default_rng(data.draw(st.integers(0, 99))).integers(-3, 4, size=shape)
    dim = dims_for(data.draw, len(shape))
    compare(lambda v: v.sum(dim), [x], grad=False)
    compare(lambda v: (v > 0).sum(dim), [x], grad=False)
