"""In-place ops on views reach the base's graph (CopySlices), compared with PyTorch.

Each scenario runs the same code on gpugrad and torch tensors (leaves x and w, float64),
then compares the output's values and the leaves' gradients under a random cotangent.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpugrad as gg
from gpugrad.autograd.views import ViewTensor

RNG = np.random.default_rng(16)
X = RNG.uniform(-2, 2, (3, 4))
W = RNG.uniform(-2, 2, (3, 4))
C = RNG.uniform(-2, 2, (3, 4))


def _lib(t):
    return torch if isinstance(t, torch.Tensor) else gg


def _const(ref, arr):
    """A tensor not requiring grad, of the same library (and device) as `ref`."""
    if isinstance(ref, torch.Tensor):
        return torch.from_numpy(arr.copy())
    return gg.from_numpy(arr.copy()).to(ref.device)


def _slice_mul(x, w):
    y = x.clone()
    y[:2].mul_(3)
    return y


def _transpose_add(x, w):
    y = x.clone()
    y.transpose(0, 1).add_(w.transpose(0, 1))
    return y * y


def _transpose_row(x, w):
    y = x.clone()
    y.T[1].mul_(w[:, 0])
    return y * x


def _reshape_slice(x, w):
    y = x.clone()
    y.reshape(12)[3:7].mul_(w.reshape(12)[:4])
    return y


def _view_row(x, w):
    y = x.clone()
    y.view(2, 6)[1].div_(w.view(2, 6)[0].abs() + 1)
    return y


def _unsqueeze(x, w):
    y = x.clone()
    y.unsqueeze(0)[0, 1].sub_(w[2])
    return y * w


def _clamp_rows(x, w):
    y = x.clone()
    y[1:].clamp_(-0.5, 0.5)
    return y * w


def _view_after_base_inplace(x, w):
    y = x.clone()
    v = y[1]
    y.mul_(w)
    return v * 2


def _view_after_base_setitem(x, w):
    y = x.clone()
    v = y[:, 1]
    y[0] = w[0]
    return v * v


def _param_on_view(x, w):
    y = _const(x, C)
    y[1].add_(w[1])
    y[2].mul_(w[0])
    return y * x


def _param_on_view_of_constant_only(x, w):
    y = _const(x, C)
    y.T[2].mul_(w[:, 1])
    return y


def _sibling_view(x, w):
    y = x.clone()
    a, b = y[:2], y[1:]
    a.mul_(w[:2])
    return b * 1


def _the_view_itself(x, w):
    y = x.clone()
    v = y[1:3]
    v.mul_(w[:2])
    return v.exp() + y.sum(0)


def _chain_of_views(x, w):
    y = x.clone()
    y[1:][:, 1:3].T[0].mul_(w[0, :2])
    return y * y


def _reshape_copy_is_not_a_view(x, w):
    y = x.clone()
    y.T.reshape(-1)[2:5].mul_(w.reshape(-1)[:3])  # a copy: y is untouched
    return y * w


def _repeated_inplace(x, w):
    y = x.clone()
    v = y[1:3]
    v.mul_(2)
    v.add_(w[1:])
    v.mul_(w[:2])
    return y * y


def _setitem_on_view(x, w):
    y = x.clone()
    y[1][2:] = w[0, :2]
    return y * x


def _setitem_advanced_on_view(x, w):
    y = x.clone()
    v = y[1:]
    v[[0, 1], [1, 2]] = w[0, :2]
    return y * x


def _fill_on_view(x, w):
    y = x.clone()
    y[1].fill_(2.0)
    return y * w


def _zero_on_view(x, w):
    y = x.clone()
    y[:, 2].zero_()
    return y * w


def _copy_into_view(x, w):
    y = x.clone()
    y[0].copy_(w[1])
    return y * x


def _scalar_views(x, w):
    y = x.clone()
    y[1, 2].mul_(5)
    y[2][3].mul_(w[0, 0])
    return y * x


def _squeeze_view(x, w):
    y = x.clone().unsqueeze(1)
    y.squeeze(1)[0].mul_(w[0])
    return y


def _flatten_strided(x, w):
    y = x.clone()
    y.flatten()[::2].mul_(3)
    return y * w


def _view_then_out_of_place_use(x, w):
    y = x.clone()
    z = y[0] * 2  # recorded before the in-place write: sees the old history
    y[0].mul_(w[0])
    return z + y[0]


def _iadd_on_view(x, w):
    y = x.clone()
    v = y[:, :2]
    v += w[:, 2:]
    return y * y


def _inplace_on_base_and_view(x, w):
    y = x.clone()
    v = y[0]
    v.mul_(w[1])
    y.add_(w)
    v.mul_(2)
    return y * v


def _views_of_one_base_interact(x, w):
    y = x.clone()
    y[0].add_(y[1])
    y[1].mul_(y[0])
    return y * w


def _view_times_itself(x, w):
    y = x.clone()
    v = y[1]
    v.mul_(v)
    return y * w


def _permute_3d(x, w):
    y = x.reshape(3, 2, 2).clone()
    y.permute(2, 0, 1)[1].mul_(w.reshape(3, 2, 2).permute(2, 0, 1)[0])
    return y


def _setitem_broadcast_on_transpose(x, w):
    y = x.clone()
    y.T[1:3] = w[0, :3]
    return y * x


def _nested_setitem(x, w):
    y = x.clone()
    y[:, 1:][1:, :2][0] = w[2, :2]
    return y * x


def _masked_setitem_on_view(x, w):
    y = x.clone()
    v = y[1:]
    v[v > 0] = 0.0
    return y * w


def _fortran_ordered_base(x, w):
    y = x.T * 1  # a root whose storage is column-major
    y.T.reshape(12)[3:7].mul_(w.reshape(12)[:4])
    y[1:].clamp_(-0.5, 0.5)
    return y * y


SCENARIOS = [
    _fortran_ordered_base, _permute_3d,
    _setitem_broadcast_on_transpose, _nested_setitem, _masked_setitem_on_view,
    _slice_mul, _transpose_add, _transpose_row, _reshape_slice, _view_row, _unsqueeze,
    _clamp_rows, _view_after_base_inplace, _view_after_base_setitem, _param_on_view,
    _param_on_view_of_constant_only, _sibling_view, _the_view_itself, _chain_of_views,
    _reshape_copy_is_not_a_view, _repeated_inplace, _setitem_on_view,
    _setitem_advanced_on_view, _fill_on_view, _zero_on_view, _copy_into_view, _scalar_views,
    _squeeze_view, _flatten_strided, _view_then_out_of_place_use, _iadd_on_view,
    _inplace_on_base_and_view,
]


def _run(fn, lib, device="cpu"):
    if lib == "torch":
        x = torch.from_numpy(X.copy()).requires_grad_(True)
        w = torch.from_numpy(W.copy()).requires_grad_(True)
    else:
        x = gg.from_numpy(X.copy()).to(device).requires_grad_(True)
        w = gg.from_numpy(W.copy()).to(device).requires_grad_(True)
    out = fn(x, w)
    r = np.random.default_rng(7).uniform(-1, 1, tuple(out.shape))
    (out * _const(x, r)).sum().backward()
    grads = [None if t.grad is None else np.asarray(t.grad.detach().cpu().numpy())
             for t in (x, w)]
    return out.detach().cpu().numpy(), grads


@pytest.mark.parametrize("fn", SCENARIOS, ids=lambda f: f.__name__.strip("_"))
def test_inplace_on_view_matches_torch(fn):
    _compare(fn, "cpu")


@pytest.mark.gpu
@pytest.mark.parametrize("fn", SCENARIOS, ids=lambda f: f.__name__.strip("_"))
def test_inplace_on_view_matches_torch_gpu(fn):
    _compare(fn, "cuda")


def _compare(fn, device):
    out_g, grads_g = _run(fn, "gg", device)
    out_t, grads_t = _run(fn, "torch")
    np.testing.assert_allclose(out_g, out_t, rtol=1e-12, atol=1e-12)
    for name, a, b in zip("xw", grads_g, grads_t):
        assert (a is None) == (b is None), f"{name}.grad: gpugrad {a}, torch {b}"
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"{name}.grad")


def test_issue_example():
    x = gg.tensor([1.0, 1.0, 1.0], requires_grad=True)
    y = x.clone()
    y[:2].mul_(3)
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0, 1.0]


def test_view_grad_fn_regenerates_from_base():
    x = gg.ones(3, requires_grad=True)
    y = x.clone()
    v = y[:2]
    assert isinstance(v, ViewTensor) and v._base is y and v._is_view() and not y._is_view()
    old = v.grad_fn
    y.mul_(2)
    assert v.grad_fn is not old  # re-derived from y's new history
    assert type(y.grad_fn).__name__ == "MulBackward" or y.grad_fn.name() == "MulBackward"
    v[0].mul_(3)
    assert y.grad_fn.name() == "CopySlices"


def test_view_of_constant_becomes_differentiable():
    w = gg.ones(2, requires_grad=True)
    y = gg.zeros(3)
    v = y[1:]
    v.add_(w)
    assert y.requires_grad and not y.is_leaf
    assert v.requires_grad
    y.sum().backward()
    assert w.grad.tolist() == [1.0, 1.0]


def test_double_backward_through_copy_slices():
    def f(lib, x, w):
        y = x.clone()
        y[:2].mul_(w[:2])
        y.T[1].mul_(w[2, :3])
        loss = (y * y * y).sum()
        (gw,) = lib.autograd.grad(loss, (w,), create_graph=True)
        return (gw * gw).sum()

    res = {}
    for lib in (gg, torch):
        x = (torch.from_numpy if lib is torch else gg.from_numpy)(X[:3, :3].copy())
        w = (torch.from_numpy if lib is torch else gg.from_numpy)(W[:3, :3].copy())
        x.requires_grad_(True)
        w.requires_grad_(True)
        f(lib, x, w).backward()
        res[lib.__name__] = (x.grad.detach().numpy(), w.grad.detach().numpy())
    for a, b in zip(res["gpugrad"], res["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_gradcheck_inplace_on_views():
    def f(x, w):
        y = x.clone()
        y[1:].mul_(w[:2])
        y.T[0].add_(w[2, :3] * w[2, :3])
        y.reshape(-1)[::3].clamp_(-1.0, 1.5)
        return y * y

    x = gg.from_numpy(X[:3, :3].copy()).requires_grad_(True)
    w = gg.from_numpy(W[:3, :3].copy()).requires_grad_(True)
    assert gg.autograd.gradcheck(f, (x, w))


def test_complex_real_view_inplace_matches_torch():
    z0 = RNG.uniform(-1, 1, 3) + 1j * RNG.uniform(-1, 1, 3)
    grads = []
    for lib in (gg, torch):
        c = (torch.from_numpy if lib is torch else gg.from_numpy)(z0.copy())
        c.requires_grad_(True)
        d = c.clone()
        d.real.mul_(3)
        d.imag[1:].add_(1)
        lib.view_as_real(d)[0, 1].mul_(c.real[2])
        (d.abs() ** 2).sum().backward()
        grads.append(np.asarray(c.grad.detach().numpy()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


# --- rejected in-place ops: a clear error, as PyTorch -------------------------------------
def test_inplace_on_view_of_leaf_raises():
    x = gg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is "
                                           "being used in an in-place operation"):
        x[:2].mul_(3)
    with pytest.raises(RuntimeError, match="view of a leaf"):
        x.reshape(3, 1)[0] = 2.0
    assert x.tolist() == [1.0, 1.0, 1.0]  # nothing written
    with gg.no_grad():  # what optimizers do: allowed, not recorded
        x[:2].mul_(3)
    assert x.tolist() == [3.0, 3.0, 1.0] and x.is_leaf


def test_inplace_on_multi_output_view_raises():
    y = gg.ones(4, requires_grad=True).clone()
    a, _ = y.split(2)
    with pytest.raises(RuntimeError, match="returns multiple views"):
        a.mul_(2)
    with pytest.raises(RuntimeError, match="returns multiple views"):
        y.unbind(0)[1].add_(1)
    with pytest.raises(RuntimeError, match="returns multiple views"):
        y.chunk(2)[0][:1].add_(1)
    p, q = gg.ones(4).split(2)  # nothing requires grad: allowed
    p.mul_(2)
    assert y.tolist() == [1.0] * 4


def test_inplace_on_expanded_view_raises():
    y = gg.ones(1, 3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        y.expand(2, 3).mul_(2)


def test_view_created_in_no_grad_then_modified_with_grad_raises():
    y = gg.ones(3, requires_grad=True).clone()
    with gg.no_grad():
        v = y[:2]
    with pytest.raises(RuntimeError, match="created in no_grad mode"):
        v.mul_(2)
    y.mul_(2)
    with pytest.raises(RuntimeError, match="created in no_grad mode"):
        _ = v.grad_fn


def test_detach_inplace_on_view_raises():
    y = gg.ones(3, requires_grad=True).clone()
    with pytest.raises(RuntimeError, match="Can't detach views in-place"):
        y[:2].detach_()


def test_saved_view_modified_through_base_raises_in_backward():
    y = gg.ones(3, requires_grad=True).clone()
    v = y[:2]
    z = v * v  # saves v
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


@pytest.mark.parametrize("fn", [_views_of_one_base_interact, _view_times_itself],
                         ids=lambda f: f.__name__.strip("_"))
def test_inplace_reading_a_view_of_the_same_base_raises_as_torch(fn):
    for lib in ("gg", "torch"):  # the op saved the other view, which the write changes
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            _run(fn, lib)


def test_reshape_copy_does_not_share_version():
    y = gg.ones(3, 4, requires_grad=True).clone()
    r = y.T.reshape(-1)  # a copy
    assert not isinstance(r, ViewTensor)
    z = r * r
    y.mul_(2)  # must not invalidate z's saved r
    z.sum().backward()


def test_getitem_int_key_is_a_view():
    y = gg.zeros(2, 3)
    y[1, 2].add_(5)
    y[0][1].add_(7)
    assert y.tolist() == [[0, 7, 0], [0, 0, 5]]
