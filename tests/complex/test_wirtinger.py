"""Worked cases of PyTorch's complex autograd convention: the gradient of a real loss L
with respect to a complex z is ∂L/∂Re z + i·∂L/∂Im z (twice the conjugate Wirtinger
derivative ∂L/∂z̄), so that z − lr·z.grad descends; checked by hand and against torch."""

import numpy as np
import pytest
import torch
from oracle import crand, rand

import gpugrad as gg
from gpugrad.autograd.gradcheck import GradcheckError


def _pair(a: np.ndarray):
    return gg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _close(ours: gg.Tensor, expected, atol=1e-12):
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().resolve_conj().numpy()
    np.testing.assert_allclose(ours.detach().numpy(), expected, atol=atol, rtol=1e-10)


def test_abs_squared_gives_two_z():
    a = crand(5)
    for loss in (lambda z: (z.abs() ** 2).sum(), lambda z: (z * z.conj()).real.sum(),
                 lambda z: (z.real ** 2 + z.imag ** 2).sum()):
        z, zt = _pair(a)
        loss(z).backward()
        loss(zt).backward()
        _close(z.grad, 2 * a)
        _close(z.grad, zt.grad)
        assert z.grad.dtype is gg.complex128


def test_real_part_gives_one_and_imag_part_gives_i():
    z, zt = _pair(crand(4))
    z.real.sum().backward()
    _close(z.grad, np.ones(4, dtype=complex))
    z.grad = None
    z.imag.sum().backward()
    _close(z.grad, np.full(4, 1j))
    zt.imag.sum().backward()
    _close(z.grad, zt.grad)


def test_conj_product_modulus_squared_both_gradients():
    """L = |conj(z)·w|² = |z|²|w|²: z̄-grad = 2z|w|², w-grad = 2w|z|²."""
    a, b = crand(3), crand(3)
    z, zt = _pair(a)
    w, wt = _pair(b)
    (z.conj() * w).abs().pow(2).sum().backward()
    (zt.conj() * wt).abs().pow(2).sum().backward()
    _close(z.grad, 2 * a * np.abs(b) ** 2)
    _close(w.grad, 2 * b * np.abs(a) ** 2)
    _close(z.grad, zt.grad)
    _close(w.grad, wt.grad)


def test_holomorphic_square_then_modulus_follows_the_chain_rule():
    """f(z) = z², L = |f|² = |z|⁴. Backward: f̄ = 2f (the |·|² rule), then through the
    holomorphic f: z̄ = f̄·conj(f'(z)) = 2z²·conj(2z) = 4|z|²·z."""
    a = crand(6)
    z, zt = _pair(a)
    f = z * z
    (f.abs() ** 2).sum().backward()
    by_hand = 2 * a ** 2 * np.conj(2 * a)
    _close(z.grad, by_hand)
    _close(z.grad, 4 * np.abs(a) ** 2 * a)
    ((zt * zt).abs() ** 2).sum().backward()
    _close(z.grad, zt.grad)


def test_holomorphic_chain_exp_log_sin():
    """L = |g(z)|² with g = sin(exp(z))·log(z): z̄ = 2g·conj(g'(z))."""
    a = crand(4) * 0.5 + 1.5
    z, zt = _pair(a)
    g = (z.exp().sin() * z.log())
    (g.abs() ** 2).sum().backward()
    gv = np.sin(np.exp(a)) * np.log(a)
    dg = np.cos(np.exp(a)) * np.exp(a) * np.log(a) + np.sin(np.exp(a)) / a
    _close(z.grad, 2 * gv * np.conj(dg), atol=1e-10)
    gt = zt.exp().sin() * zt.log()
    (gt.abs() ** 2).sum().backward()
    _close(z.grad, zt.grad, atol=1e-10)


def test_gradient_step_descends():
    target = gg.tensor(crand(8))
    z = gg.zeros(8, dtype=gg.complex128, requires_grad=True)
    losses = []
    for _ in range(12):
        z.grad = None
        loss = ((z * (1 + 0.5j) - target).abs() ** 2).sum()
        loss.backward()
        losses.append(loss.item())
        with gg.no_grad():
            z -= 0.3 * z.grad
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 1e-10 * losses[0]  # |1 − lr·2|c|²|² = 1/16 per step


def test_real_input_of_a_complex_computation_gets_the_real_part():
    """x real, y = x·(1 + 2j), L = |y|² = 5x²: x.grad = 10x (real)."""
    a = rand(4)
    x, xt = _pair(a)
    y = x * (1 + 2j)
    assert y.dtype is gg.complex128
    (y.abs() ** 2).sum().backward()
    assert x.grad.dtype is gg.float64
    _close(x.grad, 10 * a)
    ((xt * (1 + 2j)).abs() ** 2).sum().backward()
    _close(x.grad, xt.grad)
    # The same through an explicit cast and through gg.complex(x, 0).
    for make in (lambda x: x.to(gg.complex128), lambda x: gg.complex(x, gg.zeros_like(x))):
        x.grad = None
        ((make(x) * 1j).exp().imag * x).sum().backward()
        _close(x.grad, np.sin(a) + a * np.cos(a), atol=1e-10)


def test_engine_takes_the_real_part_of_a_complex_gradient_for_a_real_input():
    class Lift(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * (1 + 5j)  # wrongly complex: only the real part can reach x

    x = gg.tensor(rand(3), requires_grad=True)
    Lift.apply(x).sum().backward()
    assert x.grad.dtype is gg.float64
    _close(x.grad, np.ones(3))


def test_complex_non_scalar_backward_with_gradient_matches_torch():
    a, g = crand(2, 3), crand(2, 3)
    z, zt = _pair(a)
    (z.exp() * z).backward(gg.tensor(g))
    (zt.exp() * zt).backward(torch.tensor(g))
    _close(z.grad, zt.grad)


def test_scalar_complex_backward_is_refused():
    z = gg.tensor(crand(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="real scalar"):
        z.sum().backward()
    with pytest.raises(RuntimeError, match="real scalar"):
        gg.autograd.grad(z.sum(), z)


def test_double_backward_matches_torch():
    a = crand(3)
    z, zt = _pair(a)
    (g,) = gg.autograd.grad(((z * z).abs() ** 2).sum() + (z.exp() * z.conj()).real.sum(), z,
                            create_graph=True)
    (gt,) = torch.autograd.grad(((zt * zt).abs() ** 2).sum() + (zt.exp() * zt.conj()).real.sum(),
                                zt, create_graph=True)
    _close(g, gt, atol=1e-10)
    (g.abs() ** 2).sum().backward()
    (gt.abs() ** 2).sum().backward()
    _close(z.grad, zt.grad, atol=1e-9)


def test_accumulation_into_complex_leaf():
    a = crand(3)
    z = gg.tensor(a, requires_grad=True)
    (z.abs() ** 2).sum().backward()
    z.real.sum().backward()
    _close(z.grad, 2 * a + 1)


# --- gradcheck --------------------------------------------------------------------------------
def test_gradcheck_accepts_correct_complex_ops():
    z = gg.tensor(crand(3), requires_grad=True)
    w = gg.tensor(crand(3), requires_grad=True)
    x = gg.tensor(rand(3), requires_grad=True)
    assert gg.autograd.gradcheck(lambda z, w: (z * w.conj()).exp(), [z, w])  # complex output
    assert gg.autograd.gradcheck(lambda z: (z.abs() ** 2).sum(), [z])  # real output
    assert gg.autograd.gradcheck(lambda z, x: z * x, [z, x])  # real input
    assert gg.autograd.gradcheck(lambda x: gg.complex(x, x * 0 + 1), [x])  # real → complex


def test_gradcheck_catches_a_missing_conjugate():
    class BadSquare(gg.autograd.Function):
        """z²'s VJP without the conjugate: right for real z, wrong for complex z."""

        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return z * z

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return g * 2 * z

    z = gg.tensor(crand(2), requires_grad=True)
    with pytest.raises(GradcheckError, match="part of output"):
        gg.autograd.gradcheck(BadSquare.apply, [z])
    assert not gg.autograd.gradcheck(lambda z: BadSquare.apply(z).abs(), [z],
                                     raise_exception=False)
    x = gg.tensor(rand(2), requires_grad=True)
    assert gg.autograd.gradcheck(BadSquare.apply, [x])


def test_gradcheck_catches_a_wrong_imaginary_part():
    class BadImag(gg.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            return z.imag

        @staticmethod
        def backward(ctx, g):
            return g.to(gg.complex128)  # should be i·ḡ

    z = gg.tensor(crand(2), requires_grad=True)
    with pytest.raises(GradcheckError):
        gg.autograd.gradcheck(BadImag.apply, [z])
