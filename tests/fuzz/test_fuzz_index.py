"""Property tests: __getitem__ with generated keys, gather/index_select/index_add/scatter_add
and matmul against PyTorch (values and gradients; repeated indices accumulate)."""

import numpy as np
import torch
from _fuzzlib import DTYPES, LAYOUTS, arrays, compare, shapes
from hypothesis import given
from hypothesis import strategies as st

import gpugrad as gg


@st.composite
def index_keys(draw, shape):
    """A getitem key: ints (negative too), slices (any step sign), None, one Ellipsis,
    and at most one advanced index (int list or bool mask) so NumPy and torch agree."""
    key, d, advanced = [], 0, False
    # a leading Ellipsis: the components that follow bind to the last dims, all of them
    ellipsis = bool(shape) and draw(st.integers(0, 3)) == 0
    if ellipsis:
        key.append(Ellipsis)
        d = len(shape) - draw(st.integers(0, len(shape)))
    while d < len(shape) and (ellipsis or draw(st.integers(0, 4))):
        n = shape[d]
        kinds = ["slice", "none"] + (["int"] if n else [])
        if not advanced:
            kinds += ["ints", "mask"]
        kind = draw(st.sampled_from(kinds))
        if kind == "int":
            key.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-n - 2, n + 2))
            stop = draw(st.none() | st.integers(-n - 2, n + 2))
            step = draw(st.none() | st.integers(1, 3))
            key.append(slice(start, stop, step))
        elif kind == "none":
            key.append(None)
            continue
        elif kind == "ints":
            advanced = True
            key.append(draw(st.lists(st.integers(-n, n - 1), max_size=4)) if n else [])
        else:
            advanced = True
            key.append(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                                dtype=bool))
        d += 1
    return tuple(key) if draw(st.booleans()) or len(key) != 1 else key[0]


def _torch_key(key):
    def conv(k):
        return (torch.from_numpy(k) if isinstance(k, np.ndarray) else
                (torch.tensor(k, dtype=torch.int64) if isinstance(k, list) else k))

    return tuple(conv(k) for k in key) if isinstance(key, tuple) else conv(key)


def _gg_key(key, as_tensor):
    def conv(k):
        return (gg.from_numpy(k) if isinstance(k, np.ndarray) and as_tensor else
                (gg.tensor(k, dtype=gg.int64) if isinstance(k, list) and as_tensor else k))

    return tuple(conv(k) for k in key) if isinstance(key, tuple) else conv(key)


@given(shape=shapes(), dtype=DTYPES, lay=LAYOUTS, as_tensor=st.booleans(), data=st.data())
def test_getitem(shape, dtype, lay, as_tensor, data):
    x = data.draw(arrays(shape, dtype))
    key = data.draw(index_keys(shape))
    compare(lambda v: v[_gg_key(key, as_tensor)], [x], lambda v: v[_torch_key(key)],
            layouts=[lay])


def _index_array(rng, shape, high):
    return rng.integers(0, max(high, 1), size=shape).astype(np.int64) if high else \
        np.zeros(shape, np.int64)


@given(shape=shapes(1, 4, min_side=1), dtype=DTYPES, lay=LAYOUTS, data=st.data())
def test_gather_scatter_add(shape, dtype, lay, data):
    x = data.draw(arrays(shape, dtype))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    ishape = tuple(data.draw(st.integers(0, n)) for n in shape)
    ishape = tuple(data.draw(st.integers(0, 4)) if i == dim % len(shape) else n
                   for i, n in enumerate(ishape))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    idx = _index_array(rng, ishape, shape[dim])
    compare(lambda v, i: v.gather(dim, i), [x, idx], lambda v, i: v.gather(dim, i),
            layouts=[lay, "c"])
    # src no larger than index: torch's own scatter_add backward rejects a larger src
    src = data.draw(arrays(ishape, dtype))
    compare(lambda v, i, s: gg.scatter_add(v, dim, i, s), [x, idx, src],
            lambda v, i, s: torch.scatter_add(v, dim, i, s), layouts=[lay, "c", "c"])


@given(shape=shapes(0, 4), dtype=DTYPES, lay=LAYOUTS, k=st.integers(0, 5), data=st.data())
def test_index_select_index_add(shape, dtype, lay, k, data):
    x = data.draw(arrays(shape, dtype))
    nd = max(len(shape), 1)
    dim = data.draw(st.integers(-nd, nd - 1))
    n = shape[dim] if shape else 1
    if n == 0:
        k = 0
    idx = _index_array(np.random.default_rng(k), (k,), n)
    compare(lambda v, i: v.index_select(dim, i), [x, idx], layouts=[lay, "c"])
    sshape = list(shape)
    if shape:
        sshape[dim] = k
    src = data.draw(arrays(tuple(sshape), dtype))
    alpha = data.draw(st.sampled_from([1, 2.5]))
    compare(lambda v, i, s: v.index_add(dim, i, s, alpha=alpha), [x, idx, src],
            layouts=[lay, "c", "c"])


@st.composite
def matmul_shapes(draw):
    n, k, m = (draw(st.integers(0, 4)) for _ in range(3))
    batch = draw(shapes(0, 2, max_side=3))
    kind = draw(st.sampled_from(["vv", "mv", "vm", "mm"]))
    bb = tuple(1 if draw(st.booleans()) else b for b in batch)[draw(st.integers(0, len(batch))):]
    a = (k,) if kind[0] == "v" else batch + (n, k)
    b = (k,) if kind[1] == "v" else bb + (k, m)
    return (a, b) if draw(st.booleans()) or kind != "mm" else (bb + (n, k), batch + (k, m))


@given(sh=matmul_shapes(), dtype=DTYPES, lays=st.tuples(LAYOUTS, LAYOUTS), data=st.data())
def test_matmul(sh, dtype, lays, data):
    a = data.draw(arrays(sh[0], dtype))
    b = data.draw(arrays(sh[1], dtype))
    compare(lambda u, v: u @ v, [a, b], layouts=list(lays))
