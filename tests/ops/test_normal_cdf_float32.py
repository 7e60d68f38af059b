"""Φ and GELU in float32: computed in float32 chunks, accurate in relative terms in both
tails (against float64 SciPy), equal to PyTorch within float32 tolerance at the extremes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from scipy.special import erfc

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.backend import pointwise
from gpugrad.backend.pointwise import normal_cdf

TINY32 = np.finfo(np.float32).tiny
DENORM = float(np.finfo(np.float32).smallest_subnormal)
EXTREMES = np.array([-np.inf, -40, -39.5, -14, -13.2, -10, -5, -1e-3, -1e-38, -DENORM, -0.0, 0.0,
                     DENORM, 1e-38, 1e-3, 5, 10, 14, 40, np.inf, np.nan], np.float32)


def _phi64(x):
    return 0.5 * erfc(-np.asarray(x, np.float64) / np.sqrt(2))


def test_phi_float32_relative_error_both_tails():
    x = np.concatenate([np.linspace(-15, 15, 300_001, dtype=np.float32), EXTREMES[1:-2]])
    got, want = normal_cdf(np, x), _phi64(x)
    assert got.dtype == np.float32
    normal = want > TINY32
    rel = np.abs(got[normal] - want[normal]) / want[normal]
    assert rel.max() < 1e-6
    # below the normal range: within a few denormal steps of the correctly rounded value
    assert np.abs(got[~normal] - want[~normal]).max() <= 4 * DENORM


def test_phi_float32_special_values():
    got = normal_cdf(np, EXTREMES)
    want = _phi64(EXTREMES).astype(np.float32)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(EXTREMES))
    ok = ~np.isnan(EXTREMES)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6, atol=4 * DENORM)
    assert got[0] == 0 and got[-2] == 1  # Φ(−inf), Φ(inf)
    assert got[1] == 0 and got[-3] == 1  # Φ(∓40) rounds to 0 and 1 in float32
    assert got[list(EXTREMES).index(0.0)] == 0.5


@pytest.mark.parametrize("shape", [(0,), (), (3, 0, 2), (7,), (5, 40_000), (3, 31_000)])
def test_phi_float32_chunks_and_layouts(shape):
    """Shapes around and across the chunk size, non-contiguous views, 0-d and empty arrays
    give Φ elementwise, whatever chunk an element falls in."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 6).astype(np.float32)
    got = normal_cdf(np, x)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, _phi64(x), rtol=1e-6, atol=1e-30)
    if x.ndim == 2 and x.size:
        xt = x.T  # non-contiguous
        np.testing.assert_array_equal(normal_cdf(np, xt), got.T)
        assert x.size > pointwise._PHI32_CHUNK  # more than one chunk ran


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 1.0])
def test_phi_float32_left_tail_elements_anywhere(fraction):
    """Elements below −3 (computed apart, gathered across chunks) get the left tail's
    accuracy in any proportion, and the rest keep theirs."""
    rng = np.random.default_rng(1)
    n = 3 * pointwise._PHI32_CHUNK + 11
    x = rng.uniform(-3, 8, n).astype(np.float32)
    tail = rng.random(n) < fraction
    x[tail] = rng.uniform(-13, -3, tail.sum()).astype(np.float32)
    x[:3] = [-3.0, np.nextafter(np.float32(-3), np.float32(-4)), -40.0]
    got = normal_cdf(np, x)
    want = _phi64(x)
    normal = want > TINY32
    assert (np.abs(got[normal] - want[normal]) / want[normal]).max() < 1e-6
    assert got[2] == 0


def test_phi_float16_input_keeps_dtype():
    x = np.linspace(-8, 8, 101).astype(np.float16)
    got = normal_cdf(np, x)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), _phi64(x), rtol=1e-3,
                               atol=float(np.finfo(np.float16).smallest_subnormal))


def test_gelu_float32_extremes_match_torch(cpu_default_device):  # the CPU float32 Φ
    # ±inf left out: PyTorch's float32 gelu gives NaN at +inf (its erf path), gpugrad the limit
    finite = EXTREMES[~np.isinf(EXTREMES)]
    x = np.concatenate([finite, np.linspace(-12, 12, 4001, dtype=np.float32)])
    xg = gg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    y, yt = F.gelu(xg), TF.gelu(xt)
    g = np.linspace(0.5, 1.5, x.size).astype(np.float32)
    y.backward(gg.tensor(g))
    yt.backward(torch.tensor(g))
    assert y.dtype == gg.float32 and xg.grad.dtype == gg.float32
    # PyTorch's float32 tolerance (assert_close's defaults for float32)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1.3e-6, atol=1e-5)
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1.3e-6, atol=1e-5)
    # and relative accuracy in the left tail, where PyTorch's 1 + erf loses every digit
    tail = (x > -13) & (x < -4)
    want = x[tail].astype(np.float64) * _phi64(x[tail])
    rel = np.abs(y.detach().numpy()[tail] - want) / np.abs(want)
    assert rel.max() < 2e-6


def test_gelu_float32_at_infinity():
    x = gg.tensor(np.array([np.inf, -np.inf], np.float32))
    with np.errstate(invalid="ignore"):
        y = F.gelu(x).numpy()
    assert y[0] == np.inf and np.isnan(y[1])  # inf·Φ(inf) = inf; −inf·Φ(−inf) = −inf·0


def test_phi_float32_computes_in_float32(monkeypatch):
    """Every exp of the float32 path runs on float32 arrays (no float64 upcast)."""
    seen = []
    real = np.exp

    def spy(a, *args, **kw):
        seen.append(np.asarray(a).dtype)
        return real(a, *args, **kw)

    x = np.linspace(-9, 9, 1001, dtype=np.float32)
    monkeypatch.setattr(np, "exp", spy)
    got = normal_cdf(np, x)
    monkeypatch.undo()
    assert seen and all(d == np.float32 for d in seen), seen
    np.testing.assert_allclose(got, _phi64(x), rtol=1e-6, atol=0)
