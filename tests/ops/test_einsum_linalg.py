"""einsum, tensordot, kron, cross, add*mm and gg.linalg against PyTorch (issue 15)."""

import math

import numpy as np
import pytest
import torch

import gpugrad as gg
from gpugrad.errors import ShapeError
from tests.oracle import check, gradcheck, rand, second_order

RNG = np.random.default_rng(3)


def lib(t):
    return gg if isinstance(t, gg.Tensor) else torch


EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->ji", [(3, 3, 2)]),
    ("ij->", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("...j,jk->...k", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),
    ("i...->...", [(3, 4, 2)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ijk,ik->j", [(2, 3, 4), (2, 4)]),
    ("ab,b", [(2, 3), (3,)]),
    ("Ab,bC->AC", [(2, 3), (3, 2)]),
    ("ij,kl->", [(2, 3), (4, 5)]),
    ("i,i", [(0,), (0,)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUMS, ids=[e for e, _ in EINSUMS])
def test_einsum(eq, shapes):
    check(lambda *xs: lib(xs[0]).einsum(eq, *xs), [rand(*s) for s in shapes])


def test_einsum_forms_and_gradcheck():
    a, b = rand(3, 4), rand(4, 2)
    check(lambda x, y: lib(x).einsum("ij,jk->ik", [x, y]), [a, b])
    check(lambda x, y: lib(x).einsum(x, [0, 1], y, [1, 2], [0, 2]), [a, b])
    check(lambda x, y: lib(x).einsum(x, [Ellipsis, 1], y, [1, 2]), [a, b])
    check(lambda x: lib(x).einsum("ii->", x), [rand(3, 3)])
    gradcheck(lambda x, y: gg.einsum("bij,jk->bk", x, y), rand(2, 3, 4), rand(4, 2))
    gradcheck(lambda x: gg.einsum("iij->j", x), rand(3, 3, 2))
    gradcheck(lambda x, y: gg.einsum("ij,kl->ik", x, y), rand(2, 3), rand(4, 5))


def test_einsum_second_order():
    x = gg.tensor(rand(3, 3), requires_grad=True)
    y = gg.einsum("ij,jk->ik", x, x).sum()
    (g,) = gg.autograd.grad(y, x, create_graph=True)
    (h,) = gg.autograd.grad(g.sum(), x)
    t = torch.tensor(x.detach().numpy(), requires_grad=True)
    (tg,) = torch.autograd.grad(torch.einsum("ij,jk->ik", t, t).sum(), t, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), t)
    np.testing.assert_allclose(h.numpy(), th.numpy(), atol=1e-12)


def test_einsum_errors():
    a = gg.tensor(rand(3, 4))
    with pytest.raises(ShapeError, match="size 4"):
        gg.einsum("ij,jk->ik", a, gg.tensor(rand(3, 2)))
    with pytest.raises(ValueError, match="operands"):
        gg.einsum("ij,jk->ik", a)
    with pytest.raises(ValueError, match="output subscript"):
        gg.einsum("ij->k", a)


def test_tensordot_kron_cross():
    a, b = rand(2, 3, 4), rand(3, 4, 5)
    check(lambda x, y: lib(x).tensordot(x, y, 2), [a, b])
    check(lambda x, y: lib(x).tensordot(x, y, ([1, 2], [0, 1])), [a, b])
    check(lambda x, y: lib(x).tensordot(x, y, dims=([0], [2])), [rand(5, 2), b])
    check(lambda x, y: lib(x).tensordot(x, y, 0), [rand(2), rand(3)])
    check(lambda x, y: lib(x).kron(x, y), [rand(2, 3), rand(3, 2)])
    check(lambda x, y: lib(x).kron(x, y), [rand(2), rand(2, 3)])
    check(lambda x, y: lib(x).kron(x, y), [rand(2, 1, 2), rand(3, 2)])
    check(lambda x, y: x.cross(y), [rand(4, 3), rand(4, 3)])
    check(lambda x, y: lib(x).cross(x, y, dim=0), [rand(3, 5), rand(3, 1)])
    check(lambda x, y: lib(x).linalg.cross(x, y), [rand(2, 3), rand(1, 3)])
    gradcheck(lambda x, y: gg.cross(x, y, dim=1), rand(2, 3), rand(2, 3))
    with pytest.raises(RuntimeError, match="size 3"):
        gg.linalg.cross(gg.tensor(rand(2, 4)), gg.tensor(rand(2, 4)))


@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, 2.0), (0, 1)])
def test_addmm_family(beta, alpha):
    kw = {"beta": beta, "alpha": alpha}
    nan_in = np.full((3, 5), np.nan) if beta == 0 else rand(3, 5)
    check(lambda i, a, b: lib(i).addmm(i, a, b, **kw), [nan_in, rand(3, 4), rand(4, 5)])
    check(lambda i, a, b: lib(i).addmm(i, a, b, **kw), [rand(5), rand(3, 4), rand(4, 5)])
    check(lambda i, a, b: lib(i).addmv(i, a, b, **kw), [rand(3), rand(3, 4), rand(4)])
    check(lambda i, a, b: lib(i).baddbmm(i, a, b, **kw), [rand(2, 3, 5), rand(2, 3, 4),
                                                         rand(2, 4, 5)])
    check(lambda i, a, b: lib(i).addbmm(i, a, b, **kw), [rand(3, 5), rand(2, 3, 4),
                                                        rand(2, 4, 5)])


def well_conditioned(*shape):
    n = shape[-1]
    return rand(*shape) + 3 * n ** 0.5 * np.eye(n)


def spd(*shape):
    a = rand(*shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


def test_inv_solve_det_slogdet():
    a = well_conditioned(2, 4, 4)
    check(lambda x: lib(x).linalg.inv(x), [a])
    check(lambda x, y: lib(x).linalg.solve(x, y), [a, rand(2, 4, 3)])
    check(lambda x, y: lib(x).linalg.solve(x, y), [a, rand(2, 4)])  # batch of vectors
    check(lambda x, y: lib(x).linalg.solve(x, y), [a[0], rand(3, 4, 2)])  # A broadcasts
    check(lambda x, y: lib(x).linalg.solve(x, y, left=False), [a, rand(2, 3, 4)])
    check(lambda x: lib(x).linalg.det(x), [a])
    check(lambda x: lib(x).linalg.det(x), [-a[0]])
    check(lambda x: tuple(lib(x).linalg.slogdet(x)), [a])
    check(lambda x: tuple(lib(x).linalg.slogdet(x)), [-a[:, :3, :3]])
    gradcheck(lambda x: gg.linalg.inv(x), a[0])
    gradcheck(lambda x, y: gg.linalg.solve(x, y), a[0], rand(4, 2))
    gradcheck(lambda x: gg.linalg.det(x), a[0])
    # singular A: the gradient is still the cofactor matrix (rank n−1: nonzero)
    gradcheck(lambda x: gg.linalg.det(x), np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0],
                                                     [1.0, 0.0, 1.0]]))
    gradcheck(lambda x: gg.linalg.det(x), np.diag([2.0, 0.0]))
    gradcheck(lambda x: gg.linalg.slogdet(x).logabsdet, a)
    with pytest.raises(RuntimeError, match="singular"):
        gg.linalg.inv(gg.zeros(3, 3))
    with pytest.raises(ShapeError, match=r"\(3, 4\)"):
        gg.linalg.det(gg.tensor(rand(3, 4)))


def test_cholesky():
    a = spd(2, 4, 4)
    check(lambda x: lib(x).linalg.cholesky(x), [a])
    check(lambda x: lib(x).linalg.cholesky(x, upper=True), [a[0]])
    # symmetric perturbations only: cholesky reads the lower triangle
    gradcheck(lambda x: gg.linalg.cholesky(x + x.mT), a[0] / 2)
    with pytest.raises(RuntimeError, match="positive-definite"):
        gg.linalg.cholesky(gg.tensor(-np.eye(3)))


@pytest.mark.parametrize("shape", [(5, 3), (4, 4), (2, 6, 3)])
def test_qr(shape):
    a = rand(*shape)
    check(lambda x: tuple(lib(x).linalg.qr(x)), [a])
    gradcheck(lambda x: tuple(gg.linalg.qr(x)), a)
    q, r = gg.linalg.qr(gg.tensor(a), mode="complete")
    assert q.shape == shape[:-2] + (shape[-2], shape[-2])
    np.testing.assert_allclose((q @ r).numpy(), a, atol=1e-12)


def sign_free(fn):
    """U, Vh enter squared: the loss is invariant to the sign of each singular vector."""
    def run(x):
        u, s, vh = fn(x)
        return u * u, s, vh * vh
    return run


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (2, 4, 3)])
def test_svd(shape):
    a = rand(*shape)
    check(sign_free(lambda x: lib(x).linalg.svd(x, full_matrices=False)), [a])
    check(lambda x: lib(x).linalg.svdvals(x), [a])
    check(lambda x: lib(x).linalg.matrix_norm(x, "nuc"), [a])
    gradcheck(sign_free(lambda x: gg.linalg.svd(x, full_matrices=False)), a)
    u, s, vh = gg.linalg.svd(gg.tensor(a))  # full_matrices=True by default
    assert u.shape[-1] == shape[-2] and vh.shape[-2] == shape[-1]


def test_svd_full_matrices_gradient():
    a = rand(5, 3)

    def loss(lib_):
        def run(x):
            u, s, vh = lib_.linalg.svd(x, full_matrices=True)
            return (u[:, :3] ** 2).sum(0) + s
        return run

    check(loss(gg), [a], torch_fn=loss(torch))


def test_eigh():
    a = spd(2, 4, 4)

    def run(x):
        w, v = lib(x).linalg.eigh(x)
        return w, v * v

    check(run, [a])
    check(lambda x: lib(x).linalg.eigvalsh(x, UPLO="U"), [a])
    gradcheck(lambda x: run(x + x.mT), a / 2)


def test_norms():
    x = rand(3, 4, 5)
    for o in (2, 1, math.inf, -math.inf, 0, 3, 0.5):
        check(lambda t, o=o: lib(t).linalg.vector_norm(t, o, dim=(0, 2)), [x])
    check(lambda t: lib(t).linalg.vector_norm(t), [x])
    check(lambda t: lib(t).linalg.vector_norm(t, keepdim=True, dim=-1), [x])
    for o in ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf):
        check(lambda t, o=o: lib(t).linalg.matrix_norm(t, o), [x])
        check(lambda t, o=o: lib(t).linalg.matrix_norm(t, o, dim=(0, 2), keepdim=True), [x])
    check(lambda t: lib(t).linalg.norm(t), [x])
    check(lambda t: lib(t).linalg.norm(t, 1), [x[0, 0]])
    check(lambda t: lib(t).linalg.norm(t, "nuc"), [x[0]])
    check(lambda t: lib(t).linalg.norm(t, 2, dim=1), [x])
    check(lambda t: lib(t).linalg.norm(t, math.inf, dim=(1, 2)), [x])
    gradcheck(lambda t: gg.linalg.matrix_norm(t, 2), x[0])
    gradcheck(lambda t: gg.linalg.vector_norm(t, 3, dim=1), x[0])


def test_linalg_second_order():
    a = well_conditioned(3, 3)
    gradcheck(second_order(lambda x: gg.linalg.inv(x)), a)
    gradcheck(second_order(lambda x: gg.linalg.det(x)), a)
    gradcheck(second_order(lambda x: gg.linalg.cholesky(x + x.mT)), spd(3, 3) / 2)
    gradcheck(second_order(lambda x: gg.einsum("ii,ij->j", x, x)), rand(3, 3))
    gradcheck(second_order(lambda x: gg.linalg.svdvals(x)), rand(4, 3))
    gradcheck(second_order(lambda x: gg.linalg.svd(x, full_matrices=False).U ** 2), rand(4, 3))
    gradcheck(second_order(lambda x: gg.linalg.qr(x).R), rand(4, 3))
    gradcheck(second_order(lambda x: gg.linalg.eigh(x + x.mT).eigenvalues), spd(3, 3) / 2)


def test_bad_inputs_name_shapes_and_dtypes():
    a = gg.tensor(rand(3, 4))
    with pytest.raises(TypeError, match="float64 and .*float32"):
        gg.einsum("ij,jk->ik", a, gg.ones(4, 2))
    with pytest.raises(ShapeError, match=r"\(3, 3\).*\(2, 1\)"):
        gg.linalg.solve(gg.tensor(rand(3, 3)), gg.tensor(rand(2, 1)))
    with pytest.raises(ShapeError, match=r"\(3, 4\).*\(3, 4\)"):
        gg.tensordot(a, a, 2 - 1)
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        gg.linalg.qr(gg.tensor(rand(3)))
    with pytest.raises(ShapeError, match=r"addmm.*\(3,\)"):
        gg.addmm(a, gg.tensor(rand(3)), a)
