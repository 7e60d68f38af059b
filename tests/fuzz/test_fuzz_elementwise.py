"""Property tests: elementwise unary/binary ops, pow, where, clamp, maximum/minimum and
softmax/log_softmax against PyTorch, on generated shapes (0-d to 5-d, size-0 and size-1
axes), dtypes, memory layouts and values at the edges of each op's domain."""

import numpy as np
import pytest
import torch
from _fuzzlib import DTYPES, LAYOUTS, arrays, broadcast_pair, compare, shapes
from hypothesis import given
from hypothesis import strategies as st

import gpugrad as gg
import gpugrad.nn.functional as F

# name -> (fn on either library, value domain)
UNARY = {
    "neg": (lambda x: -x, "real"),
    "abs": (lambda x: x.abs(), "real"),
    "exp": (lambda x: x.exp(), "exp"),
    "log": (lambda x: x.log(), "positive"),
    "log1p": (lambda x: x.log1p(), "above_m1"),
    "sqrt": (lambda x: x.sqrt(), "nonneg"),
    "sin": (lambda x: x.sin(), "real"),
    "cos": (lambda x: x.cos(), "real"),
    "tanh": (lambda x: x.tanh(), "large"),
    "sigmoid": (lambda x: x.sigmoid(), "large"),
    "relu": (lambda x: x.relu(), "real"),
    "square": (lambda x: x ** 2, "real"),
    "cube": (lambda x: x ** 3, "real"),
    "pow0": (lambda x: x ** 0, "real"),
    "pow1": (lambda x: x ** 1, "real"),
    "pow_half": (lambda x: x ** 0.5, "nonneg"),
    "pow_neg": (lambda x: x ** -1.5, "positive"),
    "pow_frac_real": (lambda x: x ** 2.5, "real"),  # NaN for x < 0 in both libraries
    "rpow": (lambda x: 2.0 ** x, "real"),
    "rdiv": (lambda x: 1.5 / x, "away0"),
    "rsub": (lambda x: 1.5 - x, "real"),
    "clamp": (lambda x: x.clamp(-1.0, 1.0), "real"),
    "clamp_min": (lambda x: x.clamp(min=0.0), "real"),
    "clamp_max": (lambda x: x.clamp(max=1.0), "real"),
}

BINARY = {
    "add": (lambda a, b: a + b, "real", "real"),
    "sub": (lambda a, b: a - b, "real", "real"),
    "mul": (lambda a, b: a * b, "real", "real"),
    "div": (lambda a, b: a / b, "real", "away0"),
    "pow": (lambda a, b: a ** b, "positive", "real"),
    "maximum": (lambda a, b: a.maximum(b), "real", "real"),
    "minimum": (lambda a, b: a.minimum(b), "real", "real"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=shapes(), dtype=DTYPES, lay=LAYOUTS, data=st.data())
def test_unary(name, shape, dtype, lay, data):
    fn, domain = UNARY[name]
    x = data.draw(arrays(shape, dtype, domain))
    compare(fn, [x], layouts=[lay])


@pytest.mark.parametrize("name", sorted(BINARY))
@given(pair=broadcast_pair(), dtypes=st.tuples(
    DTYPES, DTYPES), lays=st.tuples(LAYOUTS, LAYOUTS), data=st.data())
def test_binary_broadcast(name, pair, dtypes, lays, data):
    fn, da, db = BINARY[name]
    a = data.draw(arrays(pair[0], dtypes[0], da))
    b = data.draw(arrays(pair[1], dtypes[1], db))
    compare(fn, [a, b], layouts=list(lays), dtype=np.float32 if np.float32 in dtypes else None)


@given(pair=broadcast_pair(max_dims=4), dtype=DTYPES, data=st.data())
def test_where(pair, dtype, data):
    a = data.draw(arrays(pair[0], dtype))
    b = data.draw(arrays(pair[1], dtype))
    cshape = data.draw(st.sampled_from([pair[0], pair[1], ()]))
    cond = np.random.default_rng(data.draw(st.integers(0, 99))).random(cshape) < 0.5

    def g(c, x, y):
        return gg.where(gg.from_numpy(c), x, y)

    def t(c, x, y):
        return torch.where(torch.from_numpy(c), x, y)

    compare(g, [cond, a, b], torch_fn=t)


@given(shape=shapes(), dtype=DTYPES, data=st.data(),
       bounds=st.sampled_from([(-1.0, 1.0), (0.0, None), (None, 0.0), (1.0, 1.0), (1.0, -1.0)]))
def test_clamp_bounds(shape, dtype, data, bounds):
    x = data.draw(arrays(shape, dtype))
    compare(lambda v: v.clamp(*bounds), [x])


@given(shape=shapes(1), dtype=DTYPES, data=st.data(), log=st.booleans(), lay=LAYOUTS)
def test_softmax(shape, dtype, data, log, lay):
    x = data.draw(arrays(shape, dtype, "large"))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    gf = F.log_softmax if log else F.softmax
    tf = torch.log_softmax if log else torch.softmax
    compare(lambda v: gf(v, dim=dim), [x], torch_fn=lambda v: tf(v, dim=dim), layouts=[lay])
