"""Bad input by generation: public ops and layers called with wrong shapes, wrong dtypes,
out-of-range indices and dims must raise one of gpugrad's documented error types (exactly:
never a NumPy subclass such as AxisError, never a KeyError/AttributeError from our
internals), with a message naming the op, and must leave every tensor and module they
touched unchanged. NaN/inf values in ordinary math simply propagate, as in PyTorch."""

import numpy as np
import pytest
import torch
from _fuzzlib import DTYPES, arrays, compare, exact_type_ok, shapes
from hypothesis import assume, given
from hypothesis import strategies as st

import gpugrad as gg
import gpugrad.nn as nn
import gpugrad.nn.functional as F


def _leaf(a, grad=True, with_grad=False):
    t = gg.from_numpy(a.copy())
    if grad and a.dtype.kind == "f":
        t.requires_grad_(True)
        if with_grad:  # an accumulated .grad that a failed call must not touch
            (t * 1.0).sum().backward()
    return t


def _snapshot(tensors, modules=()):
    snap = []
    for t in tensors:
        snap.append((t.array.copy(), None if t.grad is None else t.grad.array.copy(),
                     t.requires_grad, tuple(t.shape), t.dtype))
    for m in modules:
        for k, v in m.state_dict().items():
            snap.append((k, v.array.copy()))
        for p in m.parameters():
            snap.append(None if p.grad is None else p.grad.array.copy())
    return snap


def _same(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype and \
            np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def expect_error(call, names, tensors=(), modules=(), types=None, shapes_=()):
    """`call()` raises a documented error (of `types` when given) whose message names one of
    `names` (and one of `shapes_` when given); `tensors`/`modules` are left unchanged."""
    before = _snapshot(tensors, modules)
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the type is what is checked
        assert exact_type_ok(e), f"undocumented error type {type(e)!r}: {e}"
        if types is not None:
            assert isinstance(e, types), f"expected {types}, got {type(e).__name__}: {e}"
        msg = str(e).lower()
        assert any(n.lower() in msg for n in names), f"message does not name {names}: {e}"
        if shapes_:
            assert any(str(tuple(s)) in str(e) for s in shapes_), \
                f"message does not name the shapes {shapes_}: {e}"
    else:
        raise AssertionError("no error raised")
    after = _snapshot(tensors, modules)
    assert len(before) == len(after) and all(map(_same, before, after)), \
        "a failed call changed a tensor, a .grad or a module's state"


@st.composite
def clashing_shapes(draw):
    """Two shapes that do not broadcast: one axis with sizes > 1 that differ."""
    a = list(draw(shapes(1, 4, min_side=1)))
    b = list(a[draw(st.integers(0, len(a) - 1)):])
    i = draw(st.integers(1, len(b)))
    n = draw(st.integers(2, 4))
    a[-i], b[-i] = n, n + draw(st.integers(1, 2))
    if draw(st.integers(0, 1)):
        b[-i] = 0 if draw(st.booleans()) else b[-i]
    return (tuple(a), tuple(b)) if draw(st.booleans()) else (tuple(b), tuple(a))


BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: a ** b,
    "maximum": lambda a, b: gg.maximum(a, b), "minimum": lambda a, b: gg.minimum(a, b),
    "where": lambda a, b: gg.where(a > 0, a, b), "lt": lambda a, b: a < b,
    "eq": lambda a, b: a == b, "mse_loss": lambda a, b: F.mse_loss(a, b),
}
ALIASES = {"lt": "less", "eq": "equal"}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(pair=clashing_shapes(), dtype=DTYPES, with_grad=st.booleans(), data=st.data())
def test_binary_shape_mismatch(name, pair, dtype, with_grad, data):
    a = _leaf(data.draw(arrays(pair[0], dtype)), with_grad=with_grad)
    b = _leaf(data.draw(arrays(pair[1], dtype)))
    expect_error(lambda: BINARY[name](a, b), [name, ALIASES.get(name, name)],
                 [a, b], types=(gg.ShapeError,), shapes_=pair)


@st.composite
def bad_matmul(draw):
    kind = draw(st.sampled_from(["inner", "batch", "0d", "dtype", "int"]))
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    if kind == "inner":
        return kind, (n, k), (k + draw(st.integers(1, 2)), m), np.float64, np.float64
    if kind == "batch":
        return kind, (2, n, k), (3, k, m), np.float32, np.float32
    if kind == "0d":
        return kind, (), (k, m), np.float64, np.float64
    if kind == "dtype":
        return kind, (n, k), (k, m), np.float32, np.float64
    return kind, (n, k), (k, m), np.int64, np.float32


@given(case=bad_matmul(), data=st.data())
def test_matmul_bad(case, data):
    kind, sa, sb, da, db = case
    a = _leaf(np.ones(sa, da))
    b = _leaf(data.draw(arrays(sb, db)), with_grad=True)
    types = (TypeError,) if kind in ("dtype", "int") else (gg.ShapeError,)
    expect_error(lambda: a @ b, ["matmul"], [a, b], types=types)
    expect_error(lambda: gg.matmul(a, b), ["matmul"], [a, b], types=types)


def _one(d):
    """Shift an out-of-range dim one further out (for ops that accept ndim + 1 dims)."""
    return 1 if d > 0 else -1


DIM_OPS = {
    "sum": lambda x, d: x.sum(d), "mean": lambda x, d: x.mean(d), "var": lambda x, d: x.var(d),
    "amax": lambda x, d: x.amax(d), "amin": lambda x, d: x.amin(d),
    "max": lambda x, d: x.max(d), "min": lambda x, d: x.min(d),
    "logsumexp": lambda x, d: x.logsumexp(d), "norm": lambda x, d: x.norm(dim=d),
    "argmax": lambda x, d: x.argmax(d), "softmax": lambda x, d: F.softmax(x, d),
    "log_softmax": lambda x, d: F.log_softmax(x, d), "transpose": lambda x, d: x.transpose(0, d),
    "squeeze": lambda x, d: x.squeeze(d), "unsqueeze": lambda x, d: x.unsqueeze(d + _one(d)),
    "flatten": lambda x, d: x.flatten(d), "cat": lambda x, d: gg.cat([x, x], d),
    "stack": lambda x, d: gg.stack([x, x], d + _one(d)), "split": lambda x, d: x.split(1, d),
    "chunk": lambda x, d: x.chunk(2, d), "gather": lambda x, d: x.gather(d, gg.zeros(
        x.shape, dtype=gg.int64)),
    "index_select": lambda x, d: x.index_select(d, gg.zeros(1, dtype=gg.int64)),
    "unbind": lambda x, d: x.unbind(d), "permute": lambda x, d: x.permute(
        *([d] + list(range(1, x.ndim)))),
}


@pytest.mark.parametrize("name", sorted(DIM_OPS))
@given(shape=shapes(1, 4, min_side=1), dtype=DTYPES, data=st.data())
def test_dim_out_of_range(name, shape, dtype, data):
    n = len(shape)
    d = data.draw(st.integers(n, n + 3) | st.integers(-n - 4, -n - 1))
    x = _leaf(data.draw(arrays(shape, dtype)), with_grad=True)
    expect_error(lambda: DIM_OPS[name](x, d), [name, "dim"], [x],
                 types=(IndexError, gg.ShapeError, ValueError))


@given(shape=shapes(1, 4, min_side=1), dtype=DTYPES, data=st.data())
def test_repeated_dims(shape, dtype, data):
    x = _leaf(data.draw(arrays(shape, dtype)))
    d = data.draw(st.integers(0, len(shape) - 1))
    for name in ("sum", "mean", "amax", "logsumexp", "norm", "var"):
        expect_error(lambda name=name: DIM_OPS[name](x, (d, d - len(shape))), [name], [x])


SHAPE_CASES = ["reshape", "view", "expand", "cat", "stack", "split", "chunk", "pad",
               "permute_len", "permute_repeat", "broadcast_to"]


@pytest.mark.parametrize("case", SHAPE_CASES)
@given(shape=shapes(1, 4, min_side=2), dtype=DTYPES, data=st.data())
def test_shape_op_bad(case, shape, dtype, data):
    x = _leaf(data.draw(arrays(shape, dtype)), with_grad=data.draw(st.booleans()))
    size = int(np.prod(shape))
    y = _leaf(np.zeros(shape[:-1] + (shape[-1] + 1,), dtype))
    calls = {
        "reshape": (lambda: x.reshape(size + 1), ["reshape"]),
        "view": (lambda: x.view(-1, size + 1), ["view"]),
        "expand": (lambda: x.expand(*(s + 1 for s in shape)), ["expand", "broadcast"]),
        "cat": (lambda: gg.cat([x, y] if len(shape) > 1 else [x, y.reshape(1, -1)], 0),
                ["cat"]),
        "stack": (lambda: gg.stack([x, y]), ["stack"]),
        "split": (lambda: x.split([1, shape[0]], 0), ["split"]),
        "chunk": (lambda: x.chunk(0), ["chunk"]),
        "pad": (lambda: gg.pad(x, (1, 1, 1)), ["pad"]),
        "permute_len": (lambda: x.permute(*range(len(shape) + 1)), ["permute"]),
        "permute_repeat": (lambda: x.permute(*([0] * len(shape))), ["permute"]),
        "broadcast_to": (lambda: x.broadcast_to(shape[:-1] + (shape[-1] + 1,)),
                         ["broadcast_to"]),
    }
    if case == "permute_repeat":
        assume(len(shape) > 1)
    call, names = calls[case]
    expect_error(call, names, [x, y])


@st.composite
def bad_index(draw, shape):
    n0 = shape[0]
    kind = draw(st.sampled_from(["int", "neg_int", "too_many", "float_tensor", "float_list",
                                 "mask_shape", "int_list", "int_tensor", "str"]))
    if kind == "int":
        return kind, draw(st.integers(n0, n0 + 5))
    if kind == "neg_int":
        return kind, draw(st.integers(-n0 - 5, -n0 - 1))
    if kind == "too_many":
        return kind, (0,) * (len(shape) + 1)
    if kind == "float_tensor":
        return kind, gg.tensor([0.0, 1.0])
    if kind == "float_list":
        return kind, [0.5, 1.0]
    if kind == "mask_shape":
        return kind, gg.ones(n0 + 1, dtype=gg.bool)
    if kind == "int_list":
        return kind, [0, n0 + draw(st.integers(0, 3))]
    if kind == "int_tensor":
        return kind, gg.tensor([0, -n0 - 1 - draw(st.integers(0, 3))], dtype=gg.int64)
    return kind, "a"


@given(shape=shapes(1, 4, min_side=1), dtype=DTYPES, data=st.data())
def test_getitem_bad(shape, dtype, data):
    kind, key = data.draw(bad_index(shape))
    x = _leaf(data.draw(arrays(shape, dtype)), with_grad=True)
    expect_error(lambda: x[key], ["getitem", "index"], [x], types=(IndexError, TypeError))


@pytest.mark.parametrize("op", ["gather", "index_select", "index_add", "scatter_add"])
@pytest.mark.parametrize("kind", ["float_index", "too_big", "negative", "bool_index"])
@given(shape=shapes(1, 3, min_side=1), dtype=DTYPES, data=st.data())
def test_index_ops_bad(op, kind, shape, dtype, data):
    x = _leaf(data.draw(arrays(shape, dtype)), with_grad=True)
    d = data.draw(st.integers(0, len(shape) - 1))
    n = shape[d]
    k = data.draw(st.integers(1, 3))
    if op in ("gather", "scatter_add"):
        ishape = tuple(k if i == d else s for i, s in enumerate(shape))
    else:
        ishape = (k,)
    vals = np.zeros(ishape, np.int64)
    flat = vals.reshape(-1)
    flat[data.draw(st.integers(0, flat.size - 1))] = (n + data.draw(st.integers(0, 3))
                                                     if kind == "too_big" else
                                                     -1 - data.draw(st.integers(0, n + 2)))
    if kind == "float_index":
        idx = gg.from_numpy(vals.astype(dtype))
    elif kind == "bool_index":
        idx = gg.from_numpy(vals != 0)
    else:
        idx = gg.from_numpy(vals)
    src_shape = ishape if op == "scatter_add" else tuple(k if i == d else s
                                                         for i, s in enumerate(shape))
    src = _leaf(data.draw(arrays(src_shape, dtype)), with_grad=True)
    calls = {
        "gather": lambda: x.gather(d, idx),
        "index_select": lambda: x.index_select(d, idx),
        "index_add": lambda: x.index_add(d, idx, src),
        "scatter_add": lambda: gg.scatter_add(x, d, idx, src),
    }
    expect_error(calls[op], [op], [x, src, idx], types=(IndexError, TypeError, RuntimeError))


def test_int_requires_grad():
    for dt in (gg.int64, gg.int32, gg.bool):
        t = gg.zeros(3, dtype=dt)
        expect_error(lambda t=t: t.requires_grad_(True), ["grad", "float"], [t],
                     types=(TypeError,))
        expect_error(lambda dt=dt: gg.zeros(2, dtype=dt, requires_grad=True), ["grad", "float"],
                     types=(TypeError,))


# --- layers ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", [
    "linear_in", "linear_0d", "linear_int", "layernorm", "bn1d_channels", "bn1d_ndim",
    "bn2d_ndim", "embedding_range", "embedding_float", "ce_range", "ce_shape", "nll_range",
    "bce_shape", "softmax_dim", "logsoftmax_dim", "ce_float_shape"])
@given(n=st.integers(1, 4), f=st.integers(1, 5), data=st.data())
def test_layers_bad(case, n, f, data):
    gg.manual_seed(data.draw(st.integers(0, 100)))
    x = _leaf(np.random.default_rng(n).standard_normal((n, f)).astype(np.float32),
              with_grad=True)
    if case.startswith("linear"):
        m = nn.Linear(f + 1, 3)
        m(gg.ones(2, f + 1)).sum().backward()
        arg = {"linear_in": x, "linear_0d": gg.tensor(1.0),
               "linear_int": gg.ones(n, f + 1, dtype=gg.int64)}[case]
        expect_error(lambda: m(arg), ["linear", "matmul"], [x, arg], [m],
                     types=(gg.ShapeError, TypeError))
    elif case == "layernorm":
        m = nn.LayerNorm(f + 1)
        expect_error(lambda: m(x), ["layer_norm", "layernorm"], [x], [m],
                     types=(gg.ShapeError,))
    elif case.startswith("bn"):
        m = nn.BatchNorm1d(f) if case.startswith("bn1d") else nn.BatchNorm2d(f)
        m(gg.randn(4, f) if case.startswith("bn1d") else gg.randn(4, f, 2, 2))  # running stats
        arg = {"bn1d_channels": gg.randn(n + 1, f + 1), "bn1d_ndim": gg.randn(n),
               "bn2d_ndim": gg.randn(n + 1, f)}[case]
        expect_error(lambda: m(arg), ["batchnorm"], [x, arg], [m], types=(gg.ShapeError,))
    elif case.startswith("embedding"):
        m = nn.Embedding(f, 3)
        m(gg.tensor([0])).sum().backward()
        arg = (gg.tensor([0, f + data.draw(st.integers(0, 2))], dtype=gg.int64)
               if case == "embedding_range" else gg.tensor([0.0, 1.0]))
        expect_error(lambda: m(arg), ["embedding", "index"], [arg], [m],
                     types=(IndexError, TypeError))
    elif case in ("ce_range", "nll_range"):
        t = gg.tensor(np.r_[np.zeros(n - 1), f + data.draw(st.integers(0, 2))].astype(np.int64))
        fn = F.cross_entropy if case == "ce_range" else F.nll_loss
        expect_error(lambda: fn(x, t), ["cross_entropy", "nll_loss"], [x, t],
                     types=(IndexError,))
    elif case in ("ce_shape", "ce_float_shape"):
        t = gg.zeros(n + 1, dtype=gg.int64) if case == "ce_shape" else gg.zeros(n, f + 1)
        expect_error(lambda: F.cross_entropy(x, t), ["cross_entropy"], [x, t],
                     types=(gg.ShapeError,))
    elif case == "bce_shape":
        t = gg.zeros(n, f + 1)
        expect_error(lambda: F.binary_cross_entropy_with_logits(x, t),
                     ["binary_cross_entropy"], [x, t], types=(gg.ShapeError,))
    else:
        m = nn.Softmax(dim=2) if case == "softmax_dim" else nn.LogSoftmax(dim=-3)
        expect_error(lambda: m(x), ["softmax"], [x], types=(IndexError,))


# --- NaN / inf propagate ------------------------------------------------------------------
NONFINITE_OPS = {
    "add": lambda a, b: a + b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "exp": lambda a, b: a.exp(), "tanh": lambda a, b: a.tanh(),
    "sigmoid": lambda a, b: a.sigmoid(), "relu": lambda a, b: a.relu(),
    "abs": lambda a, b: a.abs(), "sum": lambda a, b: a.sum(-1), "mean": lambda a, b: a.mean(0),
    "amax": lambda a, b: a.amax(-1), "matmul": lambda a, b: a @ b.transpose(0, 1),
    "maximum": lambda a, b: a.maximum(b), "clamp": lambda a, b: a.clamp(-1, 1),
    "sqrt": lambda a, b: a.abs().sqrt(), "log": lambda a, b: a.abs().log(),
}


@pytest.mark.parametrize("name", sorted(NONFINITE_OPS))
@given(shape=shapes(2, 2, min_side=1),
       dtype=DTYPES, seed=st.integers(0, 2**31), grad=st.booleans())
def test_nonfinite_propagates(name, shape, dtype, seed, grad):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    for arr in (a, b):
        mask = rng.random(shape) < 0.3
        arr[mask] = rng.choice([np.nan, np.inf, -np.inf], size=int(mask.sum()))
    grad = grad and name != "matmul"
    with np.errstate(all="ignore"):
        compare(NONFINITE_OPS[name], [a, b], grad=grad)


def test_nonfinite_matmul_values():
    a = np.array([[np.inf, 1.0], [np.nan, 2.0]])
    b = np.array([[1.0, 0.0], [2.0, -np.inf]])
    ga, gb = gg.from_numpy(a), gg.from_numpy(b)
    np.testing.assert_array_equal((ga @ gb).numpy(), (torch.from_numpy(a) @ torch.from_numpy(b))
                                  .numpy())
