"""The NumPy reference of each fused kernel (Backend methods in the kernel-family modules
gpugrad/backend/rows.py, random.py, optim.py, and the activation rows of the pointwise
table through `Backend.pointwise`) against PyTorch on the CPU, and Philox4x32-10 against
Random123's known answers."""

from __future__ import annotations

import numpy as np
import pytest

from gpugrad.backend import cpu_backend as B
from gpugrad.backend.random import philox4x32_10
from gpugrad.ops.table import ROWS

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _vjp(fn, x, g):
    """(fn(x), x̄) for upstream g, in float64 torch."""
    xt = _t(x, True)
    y = fn(xt)
    y.backward(_t(g))
    return y.detach().numpy(), xt.grad.numpy()


TORCH_ACT = {
    "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "silu": F.silu,
}


def _row(name, x, g, params=()):
    """(y, x̄) of a table row through the backend's NumPy rendering (forward program, then
    the derived or hand-written backward program on the values it reads)."""
    row = ROWS[name]
    y = B.pointwise(row.program, [x], params)
    bw, srcs, _ = row.backward_row((True,), False)
    ins = [{"x": x, "y": y, "g": g}[kind] for kind, _ in srcs]
    return y, B.pointwise(bw.program, ins, params)


ROW_ARGS = {"leaky_relu": ("leaky_relu", (0.2,)), "gelu_tanh": ("gelu_tanh", ())}


@pytest.mark.parametrize("kind", sorted(TORCH_ACT))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_match_torch(kind, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(300) * 4).astype(dtype)
    x[:4] = [0.5, -0.5, 30.0, -30.0]
    g = rng.standard_normal(300).astype(dtype)
    y_want, gx_want = _vjp(TORCH_ACT[kind], x, g)
    # float32 gelu_tanh's derivative cancels near x = −5 (½(1 + tanh u), tanh u ≈ −1):
    # there two float32 tanh implementations differ by ~1e-6 absolute.
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    name, params = ROW_ARGS.get(kind, (kind, ()))
    y, gx = _row(name, x, g, params)
    np.testing.assert_allclose(y, y_want, **tol)
    np.testing.assert_allclose(gx, gx_want, **tol)


def test_activations_in_float16():
    x = np.linspace(-6, 6, 101).astype(np.float16)
    y = B.pointwise(ROWS["gelu"].program, [x])
    assert y.dtype == np.float16
    want = F.gelu(_t(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("log", [False, True])
def test_softmax_family_matches_torch(log):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 17)) * 20  # large logits: the max must be subtracted
    g = rng.standard_normal(x.shape)
    fn = (lambda t: torch.log_softmax(t, -1)) if log else (lambda t: torch.softmax(t, -1))
    y_want, gx_want = _vjp(fn, x, g)
    y = B.log_softmax(x) if log else B.softmax(x)
    np.testing.assert_allclose(y, y_want, rtol=1e-10, atol=1e-14)
    gx = B.log_softmax_backward(y, g) if log else B.softmax_backward(y, g)
    np.testing.assert_allclose(gx, gx_want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_softmax_cross_entropy_matches_torch(reduction, ignore_index):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 6)) * 5
    target = rng.integers(0, 6, 9)
    target[[1, 4]] = ignore_index if ignore_index < 0 else target[[1, 4]]
    target[5] = ignore_index
    xt = _t(x, True)
    loss_t = F.cross_entropy(xt, _t(target), ignore_index=ignore_index, reduction=reduction)
    g = rng.standard_normal(9) if reduction == "none" else np.float64(1.3)
    loss_t.backward(_t(g))
    loss, lse = B.softmax_cross_entropy(x, target, ignore_index, reduction)
    np.testing.assert_allclose(loss, loss_t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(lse, np.log(np.exp(x).sum(-1)), rtol=1e-12)
    gx = B.softmax_cross_entropy_backward(x, target, lse, g, ignore_index, reduction)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_softmax_cross_entropy_edge_cases():
    x = np.zeros((2, 3), dtype=np.float32)
    loss, _ = B.softmax_cross_entropy(x, np.array([-100, -100]), -100, "mean")
    assert np.isnan(loss)  # every row ignored: 0/0, as PyTorch
    loss, _ = B.softmax_cross_entropy(x, np.array([0, 7]), -100, "none")
    assert loss.dtype == np.float32 and np.isnan(loss[1]) and loss[0] == pytest.approx(np.log(3))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        B.softmax_cross_entropy(np.zeros(3), np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(affine):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 10)) * 3 + 7
    g = rng.standard_normal(x.shape)
    w, b = (rng.standard_normal(10), rng.standard_normal(10)) if affine else (None, None)
    xt = _t(x, True)
    wt, bt = (_t(w, True), _t(b, True)) if affine else (None, None)
    y_t = F.layer_norm(xt, (10,), wt, bt, eps=1e-5)
    y_t.backward(_t(g))
    y, mean, rstd = B.layer_norm_forward(x, w, b, 1e-5)
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert mean.shape == rstd.shape == (4, 3)
    gx, gw, gb = B.layer_norm_backward(x, w, mean, rstd, g)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    if affine:
        np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-10)
    else:
        assert gw is None and gb is None


def test_layer_norm_float16_keeps_float32_statistics():
    x = (np.random.default_rng(6).standard_normal((5, 64)) * 100).astype(np.float16)
    y, mean, rstd = B.layer_norm_forward(x, None, None, 1e-5)
    assert y.dtype == np.float16 and mean.dtype == rstd.dtype == np.float32
    want = F.layer_norm(_t(x.astype(np.float32)), (64,)).numpy()
    np.testing.assert_allclose(y.astype(np.float32), want, rtol=2e-3, atol=2e-3)


# -- Philox and dropout ------------------------------------------------------------------------
# Random123's kat_vectors for philox4x32_10: counter, key -> output.
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,want", PHILOX_KAT)
def test_philox_known_answers(counter, key, want):
    assert tuple(int(w) for w in philox4x32_10(np, counter, key)) == want


def test_philox_vectorised_equals_scalar_calls():
    j = np.arange(5, dtype=np.uint64)
    vec = np.stack(philox4x32_10(np, (j, 0, 3, 0), (11, 12)), axis=-1)
    for i in range(5):
        assert tuple(vec[i]) == tuple(int(w) for w in philox4x32_10(np, (i, 0, 3, 0), (11, 12)))


def test_dropout_statistics_and_regeneration():
    x = np.ones(200_000, dtype=np.float32)
    p, seed, offset = 0.25, 1234, 7
    y = B.dropout_forward(x, p, seed, offset)
    keep = y != 0
    assert abs(keep.mean() - 0.75) < 0.005  # ~0.001 standard deviation
    np.testing.assert_allclose(y[keep], 1 / 0.75, rtol=2e-7)
    assert abs(y.mean() - 1) < 0.01
    g = np.arange(x.size, dtype=np.float32)
    gx = B.dropout_backward(g, p, seed, offset)
    np.testing.assert_array_equal(gx != 0, keep & (g != 0))
    np.testing.assert_allclose(gx[keep], g[keep] / 0.75, rtol=2e-7)
    assert (B.dropout_forward(x, p, seed, offset + 1) != y).any()
    assert (B.dropout_forward(x, p, seed + 1, offset) != y).any()
    # neighbouring elements are independent (no lane pattern): P(both kept) ≈ 0.75²
    assert abs((keep[:-1] & keep[1:]).mean() - 0.5625) < 0.01


def test_dropout_edge_probabilities():
    x = np.array([1.0, np.nan, -2.0], dtype=np.float64)
    np.testing.assert_array_equal(B.dropout_forward(x, 0.0, 1, 0), x)
    out = B.dropout_forward(x, 1.0, 1, 0)
    assert out[0] == 0 and out[2] == 0
    y16 = B.dropout_forward(np.ones(64, dtype=np.float16), 0.5, 3, 0)
    assert y16.dtype == np.float16 and set(np.unique(y16)) <= {0.0, 2.0}
