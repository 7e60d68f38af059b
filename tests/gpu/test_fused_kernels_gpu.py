"""Every CUDA kernel of kernels/*.cu against its NumPy reference (the Backend method of the
same name run by the CPU backend): odd sizes, non-contiguous inputs, large and tiny
magnitudes, the 16-bit types at their precision, Philox dropout masks bit-identical to
NumPy's, multi-tensor optimizers and found_inf skipping. Runs only where a GPU answers."""

from __future__ import annotations

import numpy as np
import pytest

from gpugrad.backend import cpu_backend, get_backend
from gpugrad.ops.table import ROWS as TABLE

pytestmark = pytest.mark.gpu

TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-11, atol=1e-12),
       "float16": dict(rtol=2e-3, atol=2e-3), "bfloat16": dict(rtol=1.6e-2, atol=1.6e-2)}


@pytest.fixture(scope="module")
def gpu():
    return get_backend("cuda")


def _np_dtype(gpu, name: str):
    """The host dtype for `name`, skipping bfloat16 where CuPy/ml_dtypes lack it."""
    if name != "bfloat16":
        return np.dtype(name)
    import gpugrad as gg

    dt = gpu.np_dtype(gg.bfloat16)
    if dt is None:
        pytest.skip("bfloat16 needs ml_dtypes")
    try:  # the round trip every test below makes
        back = gpu.to_host(gpu.asarray(np.arange(3, dtype=np.float32).astype(dt)))
        assert np.asarray(back).astype(np.float32).tolist() == [0.0, 1.0, 2.0]
    except Exception as exc:  # CuPy versions without bfloat16 arrays
        pytest.skip(f"CuPy has no bfloat16 arrays: {exc}")
    return dt


def _host(gpu, a) -> np.ndarray:
    return np.asarray(gpu.to_host(a)).astype(np.float64)


def _close(gpu, got, want, dtype: str) -> None:
    np.testing.assert_allclose(_host(gpu, got), np.asarray(want).astype(np.float64),
                               **TOL[dtype])


def _data(shape, dt, seed=0, scale=4.0, extremes=True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    if extremes and x.size >= 6:
        x.reshape(-1)[:6] = [80.0, -80.0, 1e-30, -1e-30, 0.0, 30.0]
    return x.astype(dt)


ALL = ["float32", "float64", "float16", "bfloat16"]
SHAPES = [(1,), (1023,), (33, 65), (0,), (70001,)]


# -- generated pointwise kernels (the table's rows) ----------------------------------------
ACT_ROWS = {"relu": (), "sigmoid": (), "tanh": (), "leaky_relu": (0.1,), "gelu": (),
            "gelu_tanh": (), "silu": (), "mish": (), "softplus": (1.0, 20.0), "elu": (1.0,),
            "swish_scalar": (0.7,)}


def _run_row(backend, name, x, g, params, to_dev):
    row = TABLE[name]
    y = backend.pointwise(row.program, [to_dev(x)], params)
    bw, srcs, _ = row.backward_row((True,), False)
    ins = [{"x": to_dev(x), "y": y, "g": to_dev(g)}[kind] for kind, _ in srcs]
    return y, backend.pointwise(bw.program, ins, params)


@pytest.mark.parametrize("name", sorted(ACT_ROWS))
@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("shape", SHAPES)
def test_activation(gpu, name, dtype, shape):
    dt = _np_dtype(gpu, dtype)
    x = _data(shape, dt)
    g = _data(shape, dt, seed=1, scale=1.0, extremes=False)
    # the NumPy reference computes 16-bit types in float32, as the kernel accumulates
    xr, gr = (x, g) if dtype in ("float32", "float64") else (x.astype(np.float32),
                                                              g.astype(np.float32))
    y_ref, gx_ref = _run_row(cpu_backend, name, xr, gr, ACT_ROWS[name], lambda a: a)
    y, gx = _run_row(gpu, name, x, g, ACT_ROWS[name], gpu.asarray)
    assert y.dtype == dt and y.shape == shape
    _close(gpu, y, y_ref, dtype)
    _close(gpu, gx, gx_ref, dtype)


@pytest.mark.parametrize("name", ["gelu", "silu", "leaky_relu", "relu"])
def test_activation_non_contiguous_and_nan(gpu, name):
    x = _data((40, 30), np.float32)
    x[3, 4] = np.nan
    g = _data((30, 40), np.float32, seed=2, extremes=False)
    y, gx = _run_row(gpu, name, x.T, g, ACT_ROWS[name], lambda a: gpu.asarray(a.T).T)
    y_ref, gx_ref = _run_row(cpu_backend, name, x.T, g, ACT_ROWS[name], lambda a: a)
    _close(gpu, y, y_ref, "float32")
    assert np.isnan(_host(gpu, y)[4, 3])
    _close(gpu, gx, gx_ref, "float32")


@pytest.mark.parametrize("dtype", ALL)
def test_broadcast_scalar_and_bool_operands(gpu, dtype):
    """A single-value operand, a number and a bool condition (where, swish with β)."""
    dt = _np_dtype(gpu, dtype)
    x = _data((33, 65), dt)
    beta = np.asarray(0.7, dtype=dt)
    c = x > 0
    for name, ins in [("swish", [x, beta]), ("where", [c, x, 2.5]), ("maximum", [x, beta])]:
        prog = TABLE[name].program
        ref_ins = [a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == dt
                   and dtype not in ("float32", "float64") else a for a in ins]
        got = gpu.pointwise(prog, [gpu.asarray(a) if isinstance(a, np.ndarray) else a
                                   for a in ins])
        _close(gpu, got, cpu_backend.pointwise(prog, ref_ins), dtype)


# -- softmax family --------------------------------------------------------------------------
ROWS = [(5, 1), (7, 33), (3, 1025), (2, 5000), (64, 10), (2, 3, 17)]


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("shape", ROWS)
def test_softmax(gpu, log, dtype, shape):
    dt = _np_dtype(gpu, dtype)
    x = _data(shape, dt, scale=10.0)
    g = _data(shape, dt, seed=6, scale=1.0, extremes=False)
    fwd = "log_softmax" if log else "softmax"
    bwd = "log_softmax_backward" if log else "softmax_backward"
    y_ref = getattr(cpu_backend, fwd)(x)
    y = getattr(gpu, fwd)(gpu.asarray(x))
    _close(gpu, y, y_ref, dtype)
    _close(gpu, getattr(gpu, bwd)(gpu.asarray(y_ref), gpu.asarray(g)),
           getattr(cpu_backend, bwd)(y_ref, g), dtype)


def test_softmax_non_contiguous_and_huge_logits(gpu):
    x = _data((50, 40), np.float32, scale=1e4)
    y = gpu.softmax(gpu.asarray(x).T)
    _close(gpu, y, cpu_backend.softmax(np.ascontiguousarray(x.T)), "float32")
    assert np.isfinite(_host(gpu, y)).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("shape", [(1, 2), (37, 11), (8, 5000), (300, 3)])
def test_softmax_cross_entropy(gpu, reduction, dtype, shape):
    dt = _np_dtype(gpu, dtype)
    rng = np.random.default_rng(7)
    x = _data(shape, dt, scale=6.0)
    target = rng.integers(0, shape[1], shape[0])
    target[::5] = -100
    loss_ref, lse_ref = cpu_backend.softmax_cross_entropy(x, target, -100, reduction)
    loss, lse = gpu.softmax_cross_entropy(gpu.asarray(x), gpu.asarray(target), -100, reduction)
    assert loss.dtype == dt and lse.dtype == lse_ref.dtype
    _close(gpu, lse, lse_ref, dtype)
    _close(gpu, loss, loss_ref, dtype)
    g = (rng.standard_normal(shape[0]) if reduction == "none" else np.asarray(0.9)).astype(dt)
    gx = gpu.softmax_cross_entropy_backward(gpu.asarray(x), gpu.asarray(target), lse,
                                            gpu.asarray(g), -100, reduction)
    want = cpu_backend.softmax_cross_entropy_backward(x, target, lse_ref, g, -100, reduction)
    _close(gpu, gx, want, dtype)


def test_softmax_cross_entropy_all_ignored_and_bad_target(gpu):
    x = gpu.asarray(np.zeros((3, 4), dtype=np.float32))
    loss, _ = gpu.softmax_cross_entropy(x, gpu.asarray(np.full(3, -1)), -1, "mean")
    assert np.isnan(_host(gpu, loss))
    loss, _ = gpu.softmax_cross_entropy(x, gpu.asarray(np.array([0, 9, 1])), -100, "none")
    out = _host(gpu, loss)
    assert np.isnan(out[1]) and np.allclose(out[[0, 2]], np.log(4))


# -- layer norm ------------------------------------------------------------------------------
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("shape", [(1, 1), (4, 7), (33, 1024), (3, 4097), (2, 5, 96)])
def test_layer_norm(gpu, affine, dtype, shape):
    dt = _np_dtype(gpu, dtype)
    cols = shape[-1]
    x = (_data(shape, np.float64, extremes=False) * 3 + 50).astype(dt)  # offset: cancellation
    g = _data(shape, dt, seed=8, scale=1.0, extremes=False)
    w = _data((cols,), dt, seed=9, extremes=False) if affine else None
    b = _data((cols,), dt, seed=10, extremes=False) if affine else None
    y_ref, mean_ref, rstd_ref = cpu_backend.layer_norm_forward(x, w, b, 1e-5)
    dw, db = _dev(gpu, [w, b])
    y, mean, rstd = gpu.layer_norm_forward(gpu.asarray(x), dw, db, 1e-5)
    assert mean.dtype == mean_ref.dtype and mean.shape == shape[:-1]
    _close(gpu, y, y_ref, dtype)
    _close(gpu, mean, mean_ref, "float64" if dtype == "float64" else "float32")
    np.testing.assert_allclose(_host(gpu, rstd), rstd_ref, rtol=1e-4 if dtype != "float64"
                               else 1e-10)
    gx, gw, gb = gpu.layer_norm_backward(gpu.asarray(x), dw, mean, rstd, gpu.asarray(g))
    rx, rw, rb = cpu_backend.layer_norm_backward(x, w, mean_ref, rstd_ref, g)
    _close(gpu, gx, rx, dtype)
    if affine:
        rows = x.size // cols
        for got, want in ((gw, rw), (gb, rb)):
            np.testing.assert_allclose(_host(gpu, got), want.astype(np.float64),
                                       rtol=TOL[dtype]["rtol"] * 10,
                                       atol=TOL[dtype]["atol"] * np.sqrt(rows))
    else:
        assert gw is None and gb is None


# -- dropout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("n", [1, 5, 1023, 1_000_003])
def test_dropout_bit_identical_to_numpy(gpu, dtype, n):
    dt = _np_dtype(gpu, dtype)
    x = _data(n, dt)
    seed, offset = 0xDEADBEEF_12345678, 3 << 33
    y = gpu.to_host(gpu.dropout_forward(gpu.asarray(x), 0.37, seed, offset))
    want = cpu_backend.dropout_forward(x, 0.37, seed, offset)
    np.testing.assert_array_equal(np.asarray(y).view(np.uint8), want.view(np.uint8))
    gx = gpu.to_host(gpu.dropout_backward(gpu.asarray(x), 0.37, seed, offset))
    np.testing.assert_array_equal(np.asarray(gx).view(np.uint8), want.view(np.uint8))


def test_dropout_non_contiguous(gpu):
    x = _data((30, 20), np.float32)
    y = gpu.dropout_forward(gpu.asarray(x).T, 0.5, 1, 2)
    want = cpu_backend.dropout_forward(np.ascontiguousarray(x.T), 0.5, 1, 2)
    np.testing.assert_array_equal(gpu.to_host(y), want)


# -- multi-tensor optimizers --------------------------------------------------------------------
SIZES = [1, 3, 65537, 0, 130000, 17]


def _tensors(dt, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(n) * scale).astype(dt) for n in SIZES]


def _dev(gpu, arrays):
    return [None if a is None else gpu.asarray(a) for a in arrays]


# The reference optimizers run in the parameters' dtype (each float16 operation rounded);
# the kernels round once per stored value.
OPT_TOL = {**TOL, "float16": dict(rtol=1e-2, atol=1e-2)}


def _all_close(gpu, got, want, dtype, **tol):
    for a, b in zip(got, want):
        if b is None:
            assert a is None
            continue
        np.testing.assert_allclose(_host(gpu, a), b.astype(np.float64),
                                   **(tol or OPT_TOL[dtype]))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("hyper", [
    dict(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    dict(momentum=0.9, dampening=0.1, weight_decay=1e-2, nesterov=False, maximize=True),
    dict(momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True, maximize=False)])
@pytest.mark.parametrize("flag", [None, 0.0, 1.0])
def test_sgd_update(gpu, dtype, hyper, flag):
    dt = np.dtype(dtype)
    params = _tensors(dt, 0)
    found = None if flag is None else np.array([flag], dtype=np.float32)
    ref_p, ref_b = [p.copy() for p in params], [None] * len(SIZES)
    dev_p, dev_b = _dev(gpu, params), [None] * len(SIZES)
    for step in range(3):
        grads = _tensors(dt, step + 1)
        cpu_backend.sgd_update(ref_p, grads, ref_b, lr=0.05, found_inf=found, **hyper)
        gpu.sgd_update(dev_p, _dev(gpu, grads), dev_b, lr=0.05,
                       found_inf=None if found is None else gpu.asarray(found), **hyper)
    _all_close(gpu, dev_p, ref_p, dtype)
    if hyper["momentum"]:
        _all_close(gpu, dev_b, ref_b, dtype)
    if flag:
        _all_close(gpu, dev_p, params, dtype, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("amsgrad,decoupled,maximize,wd", [(False, False, False, 0.0),
                                                           (True, False, True, 0.1),
                                                           (True, True, False, 0.01)])
@pytest.mark.parametrize("device_steps", [False, True])
@pytest.mark.parametrize("flag", [None, 0.0, 1.0])
def test_adam_update(gpu, dtype, amsgrad, decoupled, maximize, wd, device_steps, flag):
    dt = np.dtype(dtype)
    hyper = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=wd, amsgrad=amsgrad,
                 maximize=maximize, decoupled_weight_decay=decoupled)
    params = _tensors(dt, 0)
    zeros = [[np.zeros_like(p) for p in params] for _ in range(3)]
    # For float16 the reference runs in float32 and rounds what it stores to float16 after
    # each step, as the kernel does. Run in float16 it would not be a reference: eps (1e-8)
    # vanishes there and (1 - β₂)·g² underflows to 0, so it divides by zero for small
    # gradients, where the kernel (and PyTorch's fused Adam) divide by √v + eps in float32.
    ref_dt = np.float32 if dtype == "float16" else dt
    ref_p = [p.astype(ref_dt) for p in params]
    ref_s = [[a.astype(ref_dt) for a in s] for s in zeros]
    dev_p, dev_s = _dev(gpu, params), [_dev(gpu, s) for s in zeros]
    found = None if flag is None else np.array([flag], dtype=np.float32)
    dev_found = None if found is None else gpu.asarray(found)
    for t in (1, 2, 3):
        grads = _tensors(dt, t, scale=t)
        host_t = [np.asarray(t, dtype=np.float32) if device_steps else t] * len(SIZES)
        dev_t = [gpu.asarray(s) if device_steps else s for s in host_t]
        cpu_backend.adam_update(ref_p, [g.astype(ref_dt) for g in grads], *ref_s, host_t,
                                found_inf=found, **hyper)
        if ref_dt is not dt:
            for a in ref_p + sum(ref_s, []):
                a[...] = a.astype(dt)
        gpu.adam_update(dev_p, _dev(gpu, grads), *dev_s, dev_t, found_inf=dev_found, **hyper)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else None
    _all_close(gpu, dev_p, ref_p, dtype, **(tol or {}))
    for got, want in zip(dev_s, ref_s):
        _all_close(gpu, got, want, dtype, **(tol or {}))
    if flag:
        _all_close(gpu, dev_p, params, dtype, rtol=0, atol=0)


def test_optimizer_mixed_dtypes_and_non_contiguous_params(gpu):
    rng = np.random.default_rng(11)
    hosts = [rng.standard_normal((40, 30)).astype(np.float32),
             rng.standard_normal(77).astype(np.float16),
             rng.standard_normal((30, 40)).astype(np.float64)]
    grads = [rng.standard_normal(h.shape).astype(h.dtype) for h in hosts]
    dev = [gpu.asarray(hosts[0]), gpu.asarray(hosts[1]), gpu.asarray(hosts[2].T.copy()).T]
    ref = [h.copy() for h in hosts]
    bufs_ref, bufs = [None] * 3, [None] * 3
    hyper = dict(lr=0.1, momentum=0.5, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False)
    cpu_backend.sgd_update(ref, grads, bufs_ref, **hyper)
    gpu.sgd_update(dev, _dev(gpu, grads), bufs, **hyper)
    for d, r, name in zip(dev, ref, ("float32", "float16", "float64")):
        _all_close(gpu, [d], [r], name)
    assert all(b is not None for b in bufs)


@pytest.mark.parametrize("bad", [None, np.inf, np.nan])
def test_grad_norm(gpu, bad):
    grads32 = _tensors(np.float32, 12)
    grads16 = [g[:1000].astype(np.float16) for g in _tensors(np.float32, 13)]
    if bad is not None:
        grads32[4][70000] = bad
    host = grads32 + grads16
    got = gpu.grad_norm(_dev(gpu, host))
    want = cpu_backend.grad_norm(host)
    assert got.shape == () and got.dtype == want.dtype
    np.testing.assert_allclose(_host(gpu, got), want, rtol=1e-5)
    mixed = host + [np.ones(5)]
    np.testing.assert_allclose(_host(gpu, gpu.grad_norm(_dev(gpu, mixed))),
                               cpu_backend.grad_norm(mixed), rtol=1e-5)
    assert gpu.grad_norm([]).shape == ()


@pytest.mark.parametrize("bad", [None, np.inf, -np.inf, np.nan])
def test_unscale_grads(gpu, bad):
    host = _tensors(np.float32, 14, scale=1e3) + [np.arange(9, dtype=np.float16)]
    if bad is not None:
        host[2][65536] = bad
    inv = np.asarray([1 / 1024], dtype=np.float32)
    ref, ref_found = [h.copy() for h in host], np.zeros(1, dtype=np.float32)
    cpu_backend.unscale_grads_(ref, inv, ref_found)
    dev, found = _dev(gpu, host), gpu.asarray(np.zeros(1, dtype=np.float32))
    gpu.unscale_grads_(dev, gpu.asarray(inv), found)
    assert gpu.to_host(found)[0] == ref_found[0] == (0.0 if bad is None else 1.0)
    for d, r in zip(dev, ref):
        np.testing.assert_array_equal(gpu.to_host(d), r)


def test_dropout_op_on_the_gpu_regenerates_the_reference_mask():
    import gpugrad as gg
    import gpugrad.nn.functional as F
    from gpugrad.ops.activation import PhiloxDropout

    gg.manual_seed(5)
    x = gg.randn(129, 7, device="cuda", requires_grad=True)
    y = F.dropout(x, 0.3)
    assert isinstance(y.grad_fn, PhiloxDropout)
    keep = cpu_backend.dropout_mask(x.numel(), 0.3, 5, 0).reshape(129, 7)
    xv = x.detach().cpu().numpy()
    np.testing.assert_allclose(y.detach().cpu().numpy(), np.where(keep, xv / 0.7, 0.0),
                               rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), np.where(keep, 1 / 0.7, 0.0), rtol=1e-6)


def test_row_ops_on_the_gpu_take_the_fused_kernels_and_match_the_cpu():
    import gpugrad as gg
    import gpugrad.nn.functional as F
    from gpugrad.ops.loss import IndexCrossEntropy
    from gpugrad.ops.normalization import LayerNormRows

    rng = np.random.default_rng(3)
    a = rng.standard_normal((37, 11)).astype(np.float32)
    t = rng.integers(0, 11, 37)
    t[5] = -100
    w, b = rng.standard_normal(11).astype(np.float32), rng.standard_normal(11).astype(np.float32)
    results = {}
    for dev in ("cpu", "cuda"):
        x = gg.tensor(a, device=dev, requires_grad=True)
        wt = gg.tensor(w, device=dev, requires_grad=True)
        bt = gg.tensor(b, device=dev, requires_grad=True)
        loss = F.cross_entropy(x, gg.tensor(t, device=dev))
        ln = F.layer_norm(x, (11,), wt, bt)
        if dev == "cuda":
            assert isinstance(loss.grad_fn, IndexCrossEntropy)
            assert isinstance(ln.grad_fn, LayerNormRows)
        acts = F.gelu(x) + F.gelu(x, approximate="tanh") + F.leaky_relu(x, 0.1)
        (loss + (ln * F.softmax(x, -1)).sum() + F.log_softmax(x, -1).sum()
         + (acts * acts).sum()).backward()
        results[dev] = [v.detach().cpu().numpy() for v in (loss, ln, x.grad, wt.grad, bt.grad)]
    for got, want in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
