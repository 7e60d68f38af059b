"""Random sampling against PyTorch: shapes, dtypes and errors as torch's, distributions by
seeded statistical checks (bounds of about 5 standard errors: generous, yet a wrong
probability, scale or shift fails them), and gg.Generator semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpugrad as gg


def _gen(seed=0):
    """A seeded generator on the default device (a CPU generator cannot drive a GPU
    sampler, as in torch)."""
    return gg.Generator(gg.default_device()).manual_seed(seed)


def _dt(t):
    return str(t.dtype).split(".")[-1]


# --- Generator ------------------------------------------------------------------------------
def test_generator_seeding_and_state(cpu_default_device):  # only CPU generators save state
    assert gg.Generator().initial_seed() == torch.Generator().initial_seed()
    g = _gen(123)
    assert g.initial_seed() == 123 and g.device == gg.default_device()
    assert gg.Generator().device == "cpu"
    a = gg.rand(5, generator=g)
    np.testing.assert_array_equal(a.numpy(), gg.rand(5, generator=_gen(123)).numpy())
    state = g.get_state()
    assert state.dtype == gg.uint8 and state.ndim == 1
    b = gg.randn(4, generator=g)
    g.set_state(state)
    np.testing.assert_array_equal(b.numpy(), gg.randn(4, generator=g).numpy())
    s = g.seed()
    assert isinstance(s, int) and g.initial_seed() == s
    assert not np.array_equal(gg.rand(8, generator=_gen(1)).numpy(),
                              gg.rand(8, generator=_gen(2)).numpy())
    assert _gen(-1).initial_seed() == torch.Generator().manual_seed(-1).initial_seed()


def test_generator_is_independent_of_the_global_stream():
    g = _gen(9)
    want = gg.rand(3, generator=_gen(9)).numpy()
    gg.manual_seed(0)
    gg.rand(10)
    np.testing.assert_array_equal(gg.rand(3, generator=g).numpy(), want)


def test_generator_bad_state_and_bad_generator(cpu_default_device):  # CPU state only
    with pytest.raises(TypeError, match="uint8"):
        _gen().set_state(gg.zeros(3))
    with pytest.raises(RuntimeError, match="get_state"):
        _gen().set_state(gg.zeros(3, dtype=gg.uint8))
    with pytest.raises(TypeError, match="gg.Generator"):
        gg.rand(2, generator=np.random.default_rng())


@pytest.mark.parametrize("fn", [
    lambda g: gg.rand(3, generator=g), lambda g: gg.randn(3, generator=g),
    lambda g: gg.randint(0, 9, (3,), generator=g), lambda g: gg.randperm(6, generator=g),
    lambda g: gg.multinomial(gg.ones(4), 2, generator=g),
    lambda g: gg.bernoulli(gg.full((5,), 0.5), generator=g),
    lambda g: gg.normal(gg.zeros(3), 1.0, generator=g),
    lambda g: gg.zeros(3).normal_(generator=g), lambda g: gg.zeros(3).uniform_(generator=g),
    lambda g: gg.zeros(3).exponential_(generator=g), lambda g: gg.zeros(3).random_(9, generator=g),
    lambda g: gg.rand_like(gg.zeros(3), generator=g),
    lambda g: gg.randint_like(gg.zeros(3), 7, generator=g),
])
def test_every_sampler_takes_a_generator(fn):
    np.testing.assert_array_equal(fn(_gen(4)).numpy(), fn(_gen(4)).numpy())


# --- multinomial ----------------------------------------------------------------------------
def _freq(samples, k):
    return np.bincount(np.asarray(samples).ravel(), minlength=k) / np.asarray(samples).size


def test_multinomial_with_replacement_frequencies():
    p = np.array([0.1, 0.0, 0.6, 0.3])
    n = 20000
    s = gg.multinomial(gg.tensor(p * 5), n, replacement=True, generator=_gen(1))
    t = torch.multinomial(torch.tensor(p * 5), n, replacement=True)
    assert s.shape == tuple(t.shape) and _dt(s) == _dt(t) == "int64"
    f = _freq(s.numpy(), 4)
    assert f[1] == 0
    np.testing.assert_allclose(f, p, atol=5 * np.sqrt(0.25 / n))


def test_multinomial_2d_rows_are_separate_distributions():
    p = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
    s = gg.multinomial(gg.tensor(p, dtype=gg.float32), 4000, True, generator=_gen(2)).numpy()
    assert s.shape == (2, 4000)
    assert (s[0] == 0).all()
    np.testing.assert_allclose(_freq(s[1], 3), [0, 0.25, 0.75], atol=0.04)


def test_multinomial_many_rows_keep_their_own_categories():
    hot = np.random.default_rng(0).permutation(60)
    p = np.eye(60)[hot] * 3 + np.eye(60)[np.roll(hot, 1)]
    s = gg.multinomial(gg.tensor(p), 200, True, generator=_gen(5)).numpy()
    for r in range(60):
        assert set(s[r]) == {hot[r], np.roll(hot, 1)[r]}
        assert 0.6 < (s[r] == hot[r]).mean() < 0.9


def test_multinomial_without_replacement():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    s = gg.multinomial(gg.tensor(p), 3, generator=_gen(3))
    t = torch.multinomial(torch.tensor(p), 3)
    assert s.shape == tuple(t.shape) and sorted(s.tolist()) == [0, 1, 2]
    rows = gg.multinomial(gg.tensor(np.tile(p, (6000, 1))), 2, generator=_gen(4)).numpy()
    assert (rows[:, 0] != rows[:, 1]).all()
    # Sequential sampling without replacement: P(first=i, second=j) = p_i p_j / (1 - p_i).
    pairs = np.zeros((4, 4))
    np.add.at(pairs, (rows[:, 0], rows[:, 1]), 1)
    want = np.array([[0 if i == j else p[i] * p[j] / (1 - p[i]) for j in range(4)]
                     for i in range(4)])
    np.testing.assert_allclose(pairs / len(rows), want, atol=0.03)
    # Zero-weight categories are drawn only after all the others, as on torch's CPU.
    assert gg.multinomial(gg.tensor([0.0, 1.0, 0.0]), 3).tolist() == \
        torch.multinomial(torch.tensor([0.0, 1.0, 0.0]), 3).tolist()
    whole = gg.multinomial(gg.tensor([[1.0, 2.0, 3.0]]), 3)
    assert sorted(whole[0].tolist()) == [0, 1, 2] and whole.shape == (1, 3)


@pytest.mark.parametrize("args", [
    (np.array([0.5, -0.1]), 1, True), (np.array([0.5, np.nan]), 1, True),
    (np.array([0.5, 0.5]), 3, False),
    (np.zeros((2, 2, 2)) + 1, 1, True), (np.array([0.0, 0.0]), 1, True),
])
def test_multinomial_errors_as_torch(args):
    p, n, repl = args
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor(p), n, repl)
    with pytest.raises(RuntimeError, match="multinomial"):
        gg.multinomial(gg.tensor(p), n, repl)


def test_multinomial_method():
    assert gg.tensor([0.0, 1.0]).multinomial(3, True).tolist() == [1, 1, 1]


# --- bernoulli, normal, randperm ------------------------------------------------------------
def test_bernoulli_tensor_and_scalar_p():
    p = gg.tensor(np.linspace(0, 1, 6), dtype=gg.float64)
    draws = np.stack([gg.bernoulli(p, generator=_gen(k)).numpy() for k in range(2000)])
    t = torch.bernoulli(torch.tensor(np.linspace(0, 1, 6)))
    assert _dt(gg.bernoulli(p)) == _dt(t) and gg.bernoulli(p).shape == tuple(t.shape)
    np.testing.assert_allclose(draws.mean(0), np.linspace(0, 1, 6), atol=0.05)
    assert set(np.unique(draws)) <= {0.0, 1.0}
    x = gg.zeros(4000, dtype=gg.float32)
    s = gg.bernoulli(x, p=0.3, generator=_gen(1))
    assert _dt(s) == "float32" and abs(s.numpy().mean() - 0.3) < 0.04
    assert abs(gg.full((4000,), 0.8).bernoulli().numpy().mean() - 0.8) < 0.04
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        gg.bernoulli(gg.tensor([1.5]))


@pytest.mark.parametrize("make", [
    lambda m: m.normal(m.zeros(2, 3, dtype=m.float64) + 5, m.ones(3, dtype=m.float64) * 2),
    lambda m: m.normal(m.zeros(4) + 5, 2.0),
    lambda m: m.normal(5.0, m.ones(2, 1) * 2),
    lambda m: m.normal(5.0, 2.0, size=(3, 2)),
    lambda m: m.normal(5.0, 2.0, (3,), dtype=m.float64),
])
def test_normal_forms_shapes_and_dtypes_as_torch(make):
    ours, theirs = make(gg), make(torch)
    assert ours.shape == tuple(theirs.shape) and _dt(ours) == _dt(theirs)


def test_normal_statistics():
    s = gg.normal(gg.full((20000,), 5.0), gg.full((20000,), 2.0), generator=_gen(0)).numpy()
    assert abs(s.mean() - 5) < 5 * 2 / np.sqrt(20000) and abs(s.std() - 2) < 0.1
    mean = gg.tensor([[-10.0], [10.0]])
    s = gg.normal(mean, gg.tensor([0.5, 1.0, 2.0]).expand(5000, 2, 3)[0] * 1, generator=_gen(1))
    assert s.shape == (2, 3)
    big = gg.normal(mean.expand(2, 30000), 3.0, generator=_gen(2)).numpy()
    np.testing.assert_allclose(big.mean(1), [-10, 10], atol=0.1)
    np.testing.assert_allclose(big.std(1), [3, 3], atol=0.1)
    with pytest.raises(RuntimeError, match="std >= 0"):
        gg.normal(gg.zeros(2), gg.tensor([1.0, -1.0]))
    with pytest.raises(RuntimeError, match=r"\(2,\).*\(3,\)"):
        gg.normal(gg.zeros(2), gg.ones(3))


def test_randperm():
    p = gg.randperm(10, generator=_gen(0))
    t = torch.randperm(10)
    assert _dt(p) == _dt(t) and sorted(p.tolist()) == list(range(10))
    firsts = np.bincount([gg.randperm(4, generator=_gen(k))[0].item() for k in range(4000)],
                         minlength=4) / 4000
    np.testing.assert_allclose(firsts, 0.25, atol=0.04)
    assert gg.randperm(0).shape == (0,)
    assert _dt(gg.randperm(5, dtype=gg.int32)) == "int32"


@pytest.mark.parametrize("name", ["rand_like", "randn_like"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_like_samplers_as_torch(name, dtype):
    ours = getattr(gg, name)(gg.zeros(2, 3, dtype=dtype))
    theirs = getattr(torch, name)(torch.zeros(2, 3, dtype=getattr(torch, dtype)))
    assert ours.shape == tuple(theirs.shape) and _dt(ours) == _dt(theirs)


def test_randint_like_as_torch():
    for x, tx in ((gg.zeros(3, 4, dtype=gg.int32), torch.zeros(3, 4, dtype=torch.int32)),
                  (gg.zeros(5), torch.zeros(5))):
        for args in ((7,), (3, 9)):
            ours, theirs = gg.randint_like(x, *args), torch.randint_like(tx, *args)
            assert ours.shape == tuple(theirs.shape) and _dt(ours) == _dt(theirs)
            lo, hi = (0, args[0]) if len(args) == 1 else args
            v = gg.randint_like(gg.zeros(5000), *args, generator=_gen(1)).numpy()
            assert v.min() == lo and v.max() == hi - 1 and (v == np.round(v)).all()


# --- in-place initialisers ------------------------------------------------------------------
def test_normal_uniform_exponential_in_place():
    x = gg.empty(40000, dtype=gg.float64)
    assert x.normal_(3.0, 0.5, generator=_gen(0)) is x
    assert abs(x.numpy().mean() - 3) < 0.02 and abs(x.numpy().std() - 0.5) < 0.02
    x.uniform_(-2.0, 6.0, generator=_gen(1))
    v = x.numpy()
    assert v.min() >= -2 and v.max() < 6 and abs(v.mean() - 2) < 0.1
    assert abs(v.std() - 8 / np.sqrt(12)) < 0.05
    x.exponential_(4.0, generator=_gen(2))
    v = x.numpy()
    assert v.min() >= 0 and abs(v.mean() - 0.25) < 0.01 and abs(np.median(v) - np.log(2) / 4) < 0.01
    y = gg.zeros(3, dtype=gg.float32).uniform_(**{"from": 5.0, "to": 6.0})
    assert _dt(y) == "float32" and (y.numpy() >= 5).all()


def test_random_fill_zero_in_place():
    x = gg.zeros(5000, dtype=gg.int32)
    v = x.random_(3, 8, generator=_gen(0)).numpy()
    assert v.min() == 3 and v.max() == 7
    v = x.random_(4).numpy()
    assert v.min() == 0 and v.max() == 3
    f = gg.zeros(1000).random_().numpy()
    assert f.min() >= 0 and (f == np.round(f)).all() and f.max() > 2 ** 20
    assert gg.zeros(3).fill_(2.5).tolist() == [2.5] * 3
    assert gg.ones(2, dtype=gg.int64).zero_().tolist() == [0, 0]
    b = gg.zeros(4000).bernoulli_(0.25, generator=_gen(3)).numpy()
    assert abs(b.mean() - 0.25) < 0.04
    with pytest.raises(RuntimeError, match="from=5 >= to=5"):
        x.random_(5, 5)


def test_in_place_initialisers_respect_autograd():
    w = gg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.normal_()
    with gg.no_grad():
        w.uniform_(-1, 1)
    assert w.requires_grad and w.grad_fn is None
    a = gg.ones(3, requires_grad=True)
    y = a * 2
    z = (y * y).sum()
    y.normal_()  # y was saved by the product: backward must notice
    with pytest.raises(RuntimeError):
        z.backward()
    with pytest.raises(TypeError, match="floating point"):
        gg.zeros(3, dtype=gg.int64).normal_()
    with pytest.raises(RuntimeError, match="lambda"):
        gg.zeros(3).exponential_(0.0)


def test_global_rng_state_round_trip_and_seed(cpu_default_device):  # the CPU generator's
    gg.manual_seed(11)
    state = gg.get_rng_state()
    assert state.dtype == gg.uint8
    a = gg.rand(4).numpy()
    d = gg.nn.functional.dropout(gg.ones(64), 0.5, training=True).numpy()
    gg.set_rng_state(state)
    np.testing.assert_array_equal(gg.rand(4).numpy(), a)
    np.testing.assert_array_equal(gg.nn.functional.dropout(gg.ones(64), 0.5,
                                                           training=True).numpy(), d)
    s = gg.seed()
    assert isinstance(s, int)
    b = gg.rand(3).numpy()
    gg.manual_seed(s)
    np.testing.assert_array_equal(gg.rand(3).numpy(), b)
    with pytest.raises(TypeError, match="uint8"):
        gg.set_rng_state(gg.zeros(2))
    with pytest.raises(RuntimeError, match="get_rng_state"):
        gg.set_rng_state(gg.zeros(2, dtype=gg.uint8))


@pytest.mark.parametrize("name", ["uniform_", "normal_", "xavier_uniform_", "xavier_normal_",
                                  "kaiming_uniform_", "kaiming_normal_"])
def test_nn_init_takes_a_generator_as_torch(name):
    fn = getattr(gg.nn.init, name)
    a, b = fn(gg.empty(4, 3), generator=_gen(6)), fn(gg.empty(4, 3), generator=_gen(6))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    getattr(torch.nn.init, name)(torch.empty(4, 3), generator=torch.Generator())
