"""Property tests: shape ops (reshape, permute, transpose, expand, cat, stack, split, chunk,
pad, squeeze, unsqueeze, flatten) against PyTorch on generated shapes and layouts."""

import math

import numpy as np
import torch
from _fuzzlib import DTYPES, LAYOUTS, arrays, compare, shapes
from hypothesis import given
from hypothesis import strategies as st

import gpugrad as gg
import gpugrad.nn.functional as F


@st.composite
def reshape_target(draw, shape):
    """A shape with the same number of elements (size-1 axes inserted, one -1 sometimes)."""
    size = math.prod(shape)
    if size == 0:
        out = list(draw(st.permutations(list(shape))))
    else:
        out, rest = [], size
        while rest > 1:
            divisors = [d for d in range(2, rest + 1) if rest % d == 0]
            d = draw(st.sampled_from(divisors))
            out.append(d)
            rest //= d
    for _ in range(draw(st.integers(0, 2))):
        out.insert(draw(st.integers(0, len(out))), 1)
    out = out[:6]
    if math.prod(out) != size:
        out = [size]
    if out and size and draw(st.booleans()):
        out[draw(st.integers(0, len(out) - 1))] = -1
    return tuple(out)


@given(shape=shapes(), dtype=DTYPES, lay=LAYOUTS, data=st.data())
def test_reshape(shape, dtype, lay, data):
    x = data.draw(arrays(shape, dtype))
    target = data.draw(reshape_target(shape))
    compare(lambda v: v.reshape(target), [x], layouts=[lay])


@given(shape=shapes(), dtype=DTYPES, lay=LAYOUTS, data=st.data())
def test_permute_transpose(shape, dtype, lay, data):
    x = data.draw(arrays(shape, dtype))
    n = len(shape)
    perm = tuple(data.draw(st.permutations(range(n))))
    compare(lambda v: v.permute(perm), [x], layouts=[lay])
    d0, d1 = (data.draw(st.integers(-max(n, 1), max(n, 1) - 1)) for _ in range(2))
    compare(lambda v: v.transpose(d0, d1), [x], layouts=[lay])


@given(shape=shapes(max_dims=4), dtype=DTYPES, data=st.data())
def test_expand(shape, dtype, data):
    x = data.draw(arrays(shape, dtype))
    lead = data.draw(st.lists(st.integers(0, 3), max_size=2))
    sizes = [data.draw(st.sampled_from([n, -1] + ([0, 3] if n == 1 else []))) for n in shape]
    target = tuple(lead) + tuple(sizes)
    compare(lambda v: v.expand(target), [x])


@given(shape=shapes(1, 4), dtype=DTYPES, n=st.integers(1, 4), stack=st.booleans(),
       data=st.data())
def test_cat_stack(shape, dtype, n, stack, data):
    nd = len(shape)
    dim = data.draw(st.integers(-(nd + stack), nd + stack - 1))
    xs = []
    for _ in range(n):
        s = list(shape)
        if not stack:
            s[dim] = data.draw(st.integers(0, 3))
        xs.append(data.draw(arrays(tuple(s), dtype)))
    lays = [data.draw(LAYOUTS) for _ in xs]
    if stack:
        compare(lambda *v: gg.stack(list(v), dim), xs, lambda *v: torch.stack(list(v), dim),
                layouts=lays)
    else:
        compare(lambda *v: gg.cat(list(v), dim), xs, lambda *v: torch.cat(list(v), dim),
                layouts=lays)


@given(shape=shapes(1), dtype=DTYPES, lay=LAYOUTS, data=st.data())
def test_split_chunk(shape, dtype, lay, data):
    x = data.draw(arrays(shape, dtype))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[dim]
    how = data.draw(st.sampled_from(["size", "sections", "chunk"]))
    if how == "size":
        arg = data.draw(st.integers(1, max(n, 1) + 1))
        compare(lambda v: v.split(arg, dim), [x], layouts=[lay])
    elif how == "sections":
        cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
        sections = [b - a for a, b in zip([0] + cuts, cuts + [n])]
        compare(lambda v: v.split(sections, dim), [x], layouts=[lay])
    else:
        chunks = data.draw(st.integers(1, 5))
        compare(lambda v: v.chunk(chunks, dim), [x], layouts=[lay])


@given(shape=shapes(1), dtype=DTYPES, data=st.data())
def test_pad(shape, dtype, data):
    x = data.draw(arrays(shape, dtype))
    k = data.draw(st.integers(1, len(shape)))
    widths = tuple(data.draw(st.lists(st.integers(0, 2), min_size=2 * k, max_size=2 * k)))
    value = data.draw(st.sampled_from([0.0, 1.5, -2.0]))
    compare(lambda v: gg.pad(v, widths, value=value), [x],
            lambda v: torch.nn.functional.pad(v, widths, value=value))
    compare(lambda v: F.pad(v, widths, value=value) if hasattr(F, "pad")
            else gg.pad(v, widths, value=value), [x],
            lambda v: torch.nn.functional.pad(v, widths, value=value))


@given(shape=shapes(), dtype=DTYPES, lay=LAYOUTS, data=st.data())
def test_squeeze_unsqueeze_flatten(shape, dtype, lay, data):
    x = data.draw(arrays(shape, dtype))
    n = len(shape)
    compare(lambda v: v.squeeze(), [x], layouts=[lay])
    d = data.draw(st.integers(-max(n, 1), max(n, 1) - 1))
    compare(lambda v: v.squeeze(d), [x], layouts=[lay])
    if n:
        ds = tuple(data.draw(st.lists(st.integers(0, n - 1), min_size=1, unique=True)))
        compare(lambda v: v.squeeze(ds), [x], layouts=[lay])
    u = data.draw(st.integers(-n - 1, n))
    compare(lambda v: v.unsqueeze(u), [x], layouts=[lay])
    s = data.draw(st.integers(-max(n, 1), max(n, 1) - 1))
    e = data.draw(st.integers(-max(n, 1), max(n, 1) - 1))
    compare(lambda v: v.flatten(s, e), [x], layouts=[lay])
    compare(lambda v: v.flatten(), [x], layouts=[lay])


@given(shape=shapes(2, 4), dtype=DTYPES, data=st.data())
def test_view_of_noncontiguous(shape, dtype, data):
    """view() on a transposed tensor either works as in torch or raises RuntimeError."""
    x = data.draw(arrays(shape, dtype))
    target = data.draw(reshape_target(tuple(reversed(shape))))
    compare(lambda v: v.transpose(0, -1).contiguous().view(target), [x])
    np.testing.assert_equal(x, x)  # inputs untouched (arrays are copies in compare)
