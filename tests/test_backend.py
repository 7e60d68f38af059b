"""The NumPy backend's blocked, threaded kernels equal the same formulas applied whole."""

import numpy as np
import pytest

from gpugrad.backend import cpu_backend, cpu_parallel, numpy_backend
from gpugrad.backend.cpu_parallel import BLOCK as _BLOCK
from gpugrad.ops.table import ROWS


@pytest.mark.parametrize("threads", [2, 1])
@pytest.mark.parametrize("layout", ["c", "transposed", "broadcast_g", "rows_broadcast"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_pointwise_matches_whole_array(layout, dtype, threads, monkeypatch):
    """Generated pointwise programs run in cache blocks, shared among threads or on this
    one, give exactly the whole-array result (with two threads the path is forced on for a
    mid-sized array; on one, programs of three passes or more take it by themselves)."""
    if threads == 2:
        monkeypatch.setattr(numpy_backend, "_PARALLEL_MIN", 0)
    monkeypatch.setattr(cpu_parallel, "THREADS", threads)
    blocked = []
    real = cpu_parallel.blocked
    monkeypatch.setattr(cpu_parallel, "blocked",
                        lambda *a: blocked.append(a[-1]) or real(*a))
    rng = np.random.default_rng(0)
    shape = (4 * _BLOCK // 64 + 37, 64)  # several blocks plus a ragged last one
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    if layout == "transposed":
        x = np.ascontiguousarray(x.T).T
    elif layout == "broadcast_g":
        g = np.broadcast_to(np.asarray(1.5, dtype), shape)
    elif layout == "rows_broadcast":
        g = rng.standard_normal(shape[1]).astype(dtype)
    silu_bw = ROWS["silu"].backward_row((True,), False)[0]
    swish_bw = ROWS["swish"].backward_row((True, True), False)[0]
    for prog, ins, params in [(ROWS["sigmoid"].program, (x,), ()),
                              (ROWS["swish_scalar"].program, (x,), (0.7,)),
                              (ROWS["gelu"].program, (x,), ()),
                              (silu_bw.program, (x, g), ()),
                              (swish_bw.program, (x, g, g), ())]:
        got = cpu_backend.pointwise(prog, ins, params)
        with np.errstate(all="ignore"):
            ref = prog.numpy_fn()(np, *ins, *params)
        for a, b in zip(got if isinstance(got, tuple) else (got,),
                        ref if isinstance(ref, tuple) else (ref,)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    if threads == 2:
        assert blocked == [True] * 5
    else:  # sigmoid and gelu's forward are programs of fewer passes
        assert blocked == [False] * 3


def test_where_selects_on_the_bits_like_np_where():
    """The NumPy rendering of `where` selects floats on their bits: the same values as
    np.where (NaN and infinities that are not selected stay out, −0.0 kept), the same
    dtype, and np.where itself wherever the operands are not floats of c's shape."""
    from gpugrad.backend.pointwise import _where

    rng = np.random.default_rng(0)
    c = rng.random((37, 41)) < 0.5
    for dt in (np.float16, np.float32, np.float64):
        x = rng.standard_normal((37, 41)).astype(dt)
        y = rng.standard_normal((37, 41)).astype(dt)
        x[0, :5] = [np.nan, np.inf, -np.inf, -0.0, 0.0]
        y[1, :3] = [np.nan, -0.0, np.inf]
        cases = [(c, 0, x), (c, x, 0), (c, 0.0, x), (c, x, y), (c, 2.5, x), (c, x, -1),
                 (c.T, x.T, y[:, ::-1].T), (c[::2], x[::2], y[::2]),
                 (c, x[:1], y), (c, x.astype(np.float64), y), (c, 1, 2), (c, x, True)]
        for cond, a, b in cases:
            got, want = _where(np, cond, a, b), np.where(cond, a, b)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(np.ascontiguousarray(got).view(np.uint8),
                                          np.ascontiguousarray(want).view(np.uint8))
    i = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(_where(np, i > 5, i, -i), np.where(i > 5, i, -i))


def test_pointwise_result_dtypes_follow_the_operands():
    """The blocked path's result dtypes (found once per program and operand dtypes) follow
    each call's operands: float32 then float64 through one program."""
    prog = ROWS["gelu"].program_keep
    for dt in (np.float32, np.float64, np.float32):
        x = np.linspace(-4, 4, 4 * _BLOCK, dtype=dt).reshape(-1, 64)
        y, phi = cpu_backend.pointwise(prog, (x,))
        assert y.dtype == dt and phi.dtype == dt
        np.testing.assert_allclose(y, x * phi, rtol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 5, 64])
@pytest.mark.parametrize("row_bytes", [0, 1 << 10, 1 << 22])
@pytest.mark.parametrize("work", [10, 1 << 24])
def test_over_rows_covers_every_row_once(n, row_bytes, work):
    from gpugrad.backend import cpu_parallel

    seen = np.zeros(n, int)
    calls = []

    def fn(lo, hi):
        calls.append((lo, hi))
        seen[lo:hi] += 1

    cpu_parallel.over_rows(fn, n, work, row_bytes=row_bytes)
    np.testing.assert_array_equal(seen, 1)
    if row_bytes:  # ranges are cut to about CHUNK_BYTES of working set
        limit = max(1, cpu_parallel.CHUNK_BYTES // row_bytes)
        assert all(hi - lo <= limit for lo, hi in calls)


def test_blas_runs_single_threaded_inside_and_is_restored_after():
    from gpugrad.backend import cpu_parallel

    blas = cpu_parallel._BLAS
    if blas.setter is None:
        pytest.skip("NumPy's BLAS is not its bundled OpenBLAS")
    before = blas.getter()
    inside = []
    cpu_parallel.over_rows(lambda lo, hi: inside.append(blas.getter()), 8, 1 << 24, blas=True)
    if cpu_parallel.THREADS > 1:
        assert inside and set(inside) == {1}
    assert blas.getter() == before


def test_blas_thread_count_survives_concurrent_parallel_regions():
    import threading

    from gpugrad.backend import cpu_parallel

    blas = cpu_parallel._BLAS
    if blas.setter is None:
        pytest.skip("NumPy's BLAS is not its bundled OpenBLAS")
    before = blas.getter()
    a = np.ones((64, 64), np.float32)

    def work():
        for _ in range(20):
            cpu_parallel.over_rows(lambda lo, hi: a @ a, 8, 1 << 24, blas=True)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert blas.getter() == before


def test_over_rows_reraises_a_worker_error():
    from gpugrad.backend import cpu_parallel

    def fn(lo, hi):
        if lo > 0:
            raise ValueError(f"rows {lo}:{hi}")

    with pytest.raises(ValueError, match="rows"):
        cpu_parallel.over_rows(fn, 8, 1 << 24)


@pytest.mark.parametrize("keepdims", [False, True])
def test_threaded_full_sum_is_close_and_repeatable(keepdims):
    x = np.random.default_rng(3).standard_normal((2049, 513)).astype(np.float32)
    got = cpu_backend.sum(x, (0, 1), keepdims)
    assert got.dtype == np.float32 and got.shape == ((1, 1) if keepdims else ())
    np.testing.assert_allclose(got, x.astype(np.float64).sum(), rtol=1e-5)
    np.testing.assert_array_equal(cpu_backend.sum(x, (0, 1), keepdims), got)
    rows = cpu_backend.sum(x, (1,), keepdims)
    assert rows.dtype == np.float32 and rows.shape == x.sum(1, keepdims=keepdims).shape
    np.testing.assert_allclose(rows, x.astype(np.float64).sum(1, keepdims=keepdims), rtol=0,
                               atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", [(4096, 64), (16, 64, 128), (3, 1025), (300, 2), (5, 7)])
def test_last_axis_sums_and_means_of_short_rows(shape, dtype):
    """Sums and means over the last axis (BLAS for many short rows of float32/float64):
    within float rounding of float64 sums, same shapes and dtypes as NumPy's, NaN and
    infinities propagated, and NumPy's own reduction for other layouts and dtypes."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) + 3).astype(dtype)
    x.reshape(-1)[[0, 7]] = [np.nan, np.inf]
    want = x.astype(np.float64).sum(-1, keepdims=True)
    tol = 1e-2 if dtype == np.float16 else 1e-5 * shape[-1]
    for keepdims in (True, False):
        got = cpu_backend.sum(x, (x.ndim - 1,), keepdims)
        assert got.dtype == dtype and got.shape == x.sum(-1, keepdims=keepdims).shape
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=tol, atol=tol)
        mean = cpu_backend.mean(x, (-1,), keepdims)
        assert mean.dtype == dtype and mean.shape == got.shape
        np.testing.assert_allclose(mean.reshape(want.shape), want / shape[-1], rtol=tol,
                                   atol=tol)
    xt = np.asfortranarray(x)  # not C-contiguous: NumPy's reduction
    np.testing.assert_array_equal(cpu_backend.sum(xt, (x.ndim - 1,), True),
                                  xt.sum(-1, keepdims=True))


def test_mul_pair_gives_both_products_in_one_pass():
    rng = np.random.default_rng(4)
    g, a, b = (rng.standard_normal((4 * _BLOCK // 64 + 5, 64)).astype(np.float32)
               for _ in range(3))
    ga, gb = cpu_backend.mul_pair(g, a, b)
    np.testing.assert_array_equal(ga, g * b)
    np.testing.assert_array_equal(gb, g * a)


def test_normal_cdf_is_accurate_in_both_tails():
    from scipy.special import erfc

    x = np.concatenate([np.linspace(-13, 13, 20001), [0.0, -0.0, 1e-30, -40.0, 40.0]])
    x32 = x.astype(np.float32)
    want = 0.5 * erfc(-x32.astype(np.float64) / np.sqrt(2))  # Φ of the float32 inputs
    got32 = cpu_backend.normal_cdf(x32)
    assert got32.dtype == np.float32
    tiny = want > np.finfo(np.float32).tiny
    rel = np.abs(got32[tiny] - want[tiny]) / want[tiny]
    # computed in float32: the fit (1.2e-7) and two float32 exps (~2e-7 each) add up to
    # about 6e-7, within float32 tolerance (1.3e-6); 1 + erf(x) would lose the left tail
    assert rel.max() < 1e-6
    assert np.all(got32[~tiny] < 1e-37)
    # float64: exact up to the rounding of −x/√2, which the tail amplifies by about x²
    np.testing.assert_allclose(cpu_backend.normal_cdf(x), 0.5 * erfc(-x / np.sqrt(2)),
                               rtol=1e-12, atol=0)


def test_normal_cdf_without_scipy_keeps_float64_exact(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scipy.special", None)  # import fails
    x = np.linspace(-9, 9, 101)
    from math import erfc, sqrt

    want = np.array([0.5 * erfc(-v / sqrt(2)) for v in x])
    np.testing.assert_allclose(cpu_backend.normal_cdf(x), want, rtol=1e-13, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("s", [1.0001, -0.5, 0.0, -0.0, 1e300, -3.5e38, float("nan"),
                               float("inf"), 7.0])
def test_python_float_operands_compute_bit_for_bit_as_numpy_does(dtype, s):
    """A small op's Python float operand runs as a cached 0-d array of the tensor's dtype:
    the same bits as NumPy's own conversion, signed zeros and overflow included, in either
    operand position, and twice (the second time from the cache)."""
    be = cpu_backend
    with np.errstate(over="ignore"):  # float16: 3e38 is inf
        a = np.array([[1.5, -2.25, 0.0], [-0.0, 3e38, -1e-40]]).astype(dtype)
    for ufunc in (np.add, np.subtract, np.multiply, np.true_divide):
        for _ in range(2):
            with np.errstate(all="ignore"):
                got, want = be.binary(ufunc, a, s), ufunc(a, s)
                got_r, want_r = be.binary(ufunc, s, a), ufunc(s, a)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), ufunc
            assert got_r.dtype == want_r.dtype and got_r.tobytes() == want_r.tobytes(), ufunc
            assert got.flags.writeable and got_r.flags.writeable


def test_cached_float_operands_cannot_be_written():
    be = cpu_backend
    be.binary(np.multiply, np.ones(3, np.float32), 1.25)
    cached = numpy_backend._SCALARS[(1.25, np.dtype(np.float32))]
    assert cached.shape == () and not cached.flags.writeable
