"""gg.distributions.Normal against torch.distributions: values and gradients."""

import numpy as np
import pytest
import torch
from oracle import check, positive, rand

import gpugrad as gg


def _gg_normal(loc, scale):
    return gg.distributions.Normal(loc, scale)


def _th_normal(loc, scale):
    return torch.distributions.Normal(loc, scale)


def test_log_prob_matches_torch():
    check(lambda m, s, x: _gg_normal(m, s).log_prob(x), [rand(4, 3), positive(4, 3), rand(4, 3)],
          torch_fn=lambda m, s, x: _th_normal(m, s).log_prob(x))


def test_log_prob_broadcasts():
    check(lambda m, s, x: _gg_normal(m, s).log_prob(x), [rand(3), positive(2, 1), rand(5, 2, 3)],
          torch_fn=lambda m, s, x: _th_normal(m, s).log_prob(x))


def test_entropy_matches_torch():
    check(lambda m, s: _gg_normal(m, s).entropy(), [rand(2, 3), positive(2, 3)],
          torch_fn=lambda m, s: _th_normal(m, s).entropy())


def test_entropy_has_batch_shape():
    check(lambda m, s: _gg_normal(m, s).entropy(), [rand(2, 3), positive(3)],
          torch_fn=lambda m, s: _th_normal(m, s).entropy())


def test_kl_divergence_matches_torch():
    def gg_kl(m1, s1, m2, s2):
        return gg.distributions.kl_divergence(_gg_normal(m1, s1), _gg_normal(m2, s2))

    def th_kl(m1, s1, m2, s2):
        return torch.distributions.kl_divergence(_th_normal(m1, s1), _th_normal(m2, s2))

    check(gg_kl, [rand(4, 2), positive(4, 2), rand(4, 2), positive(4, 2)], torch_fn=th_kl)


def test_kl_to_standard_normal_is_vae_formula():
    mu, log_var = rand(6), rand(6, low=-1, high=1)
    p = _gg_normal(gg.tensor(mu), gg.tensor(np.exp(0.5 * log_var)))
    q = _gg_normal(gg.zeros(6, dtype=gg.float64), gg.ones(6, dtype=gg.float64))
    expected = -0.5 * (1 + log_var - mu ** 2 - np.exp(log_var))
    np.testing.assert_allclose(gg.distributions.kl_divergence(p, q).numpy(), expected,
                               rtol=1e-12)


def test_rsample_gradients_are_one_and_eps():
    loc = gg.tensor(rand(5, 4), requires_grad=True)
    scale = gg.tensor(positive(5, 4), requires_grad=True)
    z = _gg_normal(loc, scale).rsample()
    assert z.shape == (5, 4) and z.requires_grad
    eps = (z.detach() - loc.detach()) / scale.detach()
    z.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), np.ones((5, 4)))
    np.testing.assert_allclose(scale.grad.numpy(), eps.numpy(), rtol=1e-12)


def test_rsample_sample_shape_and_batched_gradient():
    loc = gg.tensor(rand(3), requires_grad=True)
    scale = gg.tensor(positive(3), requires_grad=True)
    z = _gg_normal(loc, scale).rsample((7, 2))
    assert z.shape == (7, 2, 3) and z.dtype == gg.float64
    eps = ((z.detach() - loc.detach()) / scale.detach()).numpy()
    z.sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), np.full(3, 14.0))
    np.testing.assert_allclose(scale.grad.numpy(), eps.sum((0, 1)), rtol=1e-12)


def test_rsample_statistics():
    gg.manual_seed(3)
    z = _gg_normal(gg.tensor(1.5), gg.tensor(0.5)).rsample((20000,)).numpy()
    assert abs(z.mean() - 1.5) < 0.02 and abs(z.std() - 0.5) < 0.02


def test_sample_records_no_graph():
    loc = gg.zeros(3, requires_grad=True)
    s = _gg_normal(loc, 1.0).sample((2,))
    assert s.shape == (2, 3) and not s.requires_grad
    assert s.dtype == gg.float32


def test_properties_and_errors():
    d = _gg_normal(gg.zeros(2, 1), gg.full((3,), 2.0))
    assert d.batch_shape == (2, 3)
    np.testing.assert_allclose(d.variance.numpy(), 4.0)
    assert d.mean is d.loc and d.stddev is d.scale
    with pytest.raises(ValueError, match="scale must be positive"):
        gg.distributions.Normal(gg.zeros(2), gg.tensor([1.0, -1.0]), validate_args=True)
    with pytest.raises(ValueError, match="do not broadcast"):
        _gg_normal(gg.zeros(2), gg.ones(3))
    with pytest.raises(NotImplementedError):
        gg.distributions.kl_divergence(d, gg.distributions.Distribution())
