"""The backend's optimizer section: found_inf skipping, grad_norm, unscale_grads_ and
clip_grads_, against their docstring specifications, and without any host read."""

import numpy as np
import pytest
import torch

import gpugrad as gg
from gpugrad.backend import cpu_backend


class NoRead(np.ndarray):
    """An array that fails the test when anything reads its value on the host (bool(),
    float(), .item(), ...): the CPU stand-in for a device array that must not sync."""

    def _refuse(self, *args, **kwargs):
        raise AssertionError("host read of a device flag")

    __bool__ = __float__ = __int__ = __index__ = item = tolist = _refuse


def no_read(a):
    return np.asarray(a).view(NoRead)


def _flag(value):
    return np.array([value], np.float32)


def _arrays(rng, shapes, dtype=np.float64):
    return [np.array(rng.standard_normal(s), dtype=dtype) for s in shapes]


SHAPES = [(3, 4), (5,), ()]

UPDATES = {
    "sgd": lambda ps, gs, st, t, f: cpu_backend.sgd_update(
        ps, gs, st[0], lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01,
        nesterov=False, maximize=False, found_inf=f),
    "sgd_nesterov": lambda ps, gs, st, t, f: cpu_backend.sgd_update(
        ps, gs, st[0], lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=True,
        maximize=True, found_inf=f),
    "adam_amsgrad": lambda ps, gs, st, t, f: cpu_backend.adam_update(
        ps, gs, st[0], st[1], st[2], t, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8,
        weight_decay=0.1, amsgrad=True, maximize=False, decoupled_weight_decay=False,
        found_inf=f),
    "adamw": lambda ps, gs, st, t, f: cpu_backend.adam_update(
        ps, gs, st[0], st[1], None, t, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8,
        weight_decay=0.1, amsgrad=False, maximize=False, decoupled_weight_decay=True,
        found_inf=f),
    "rmsprop": lambda ps, gs, st, t, f: cpu_backend.rmsprop_update(
        ps, gs, st[0], st[1], st[2], lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.1,
        momentum=0.5, centered=True, maximize=False, found_inf=f),
}


def _state(rng, name):
    """Existing (non-empty) optimizer state for each parameter shape."""
    if name.startswith("sgd"):
        return [_arrays(rng, SHAPES)]
    square, avg, vmax = ([np.array(np.abs(a)) for a in _arrays(rng, SHAPES)] for _ in range(3))
    return [[np.array(s + 1) for s in square], [np.array(0.1 * a) for a in avg], vmax]


@pytest.mark.parametrize("name", sorted(UPDATES))
@pytest.mark.parametrize("steps", ["host", "device"])
def test_update_with_flag_zero_equals_plain_update_bitwise(name, steps):
    rng = np.random.default_rng(0)
    params, grads, state = _arrays(rng, SHAPES), _arrays(rng, SHAPES), _state(rng, name)
    t = [3] * 3 if steps == "host" else [np.array(3, np.float32) for _ in range(3)]
    ref = [p.copy() for p in params], [[a.copy() for a in s] for s in state]
    host = [p.copy() for p in params], [[a.copy() for a in s] for s in state]
    UPDATES[name](ref[0], grads, ref[1], t, None)
    UPDATES[name](host[0], grads, host[1], [3] * 3, None)
    UPDATES[name](params, grads, state, t, no_read(_flag(0.0)))
    for a, b, c in zip(params + sum(state, []), ref[0] + sum(ref[1], []),
                       host[0] + sum(host[1], [])):
        np.testing.assert_array_equal(a, b)
        # device-side bias corrections agree with the host ones to rounding (NumPy's pow
        # and Python's differ in the last bit)
        np.testing.assert_allclose(a, c, rtol=1e-13, atol=1e-15)
    assert not np.array_equal(params[0], _arrays(np.random.default_rng(0), SHAPES)[0])


@pytest.mark.parametrize("name", sorted(UPDATES))
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_update_with_flag_set_changes_nothing(name, bad):
    rng = np.random.default_rng(1)
    params, grads, state = _arrays(rng, SHAPES), _arrays(rng, SHAPES), _state(rng, name)
    grads[0][1, 2] = bad
    before = [a.copy() for a in params + sum(state, [])]
    with np.errstate(all="raise"):  # the discarded update must not warn either
        UPDATES[name](params, grads, state, [np.array(0, np.float32)] * 3,
                      no_read(_flag(1.0)))
    for a, b in zip(params + sum(state, []), before):
        np.testing.assert_array_equal(a, b)


def test_sgd_buffer_created_by_a_skipped_step_is_zero():
    p, g = [np.ones(3)], [np.full(3, np.inf)]
    bufs = [None]
    cpu_backend.sgd_update(p, g, bufs, lr=0.1, momentum=0.9, dampening=0, weight_decay=0,
                           nesterov=False, maximize=False, found_inf=_flag(1.0))
    np.testing.assert_array_equal(p[0], 1.0)
    np.testing.assert_array_equal(bufs[0], 0.0)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, float("inf"), float("-inf"), 0.0])
def test_grad_norm_matches_torch(norm_type):
    rng = np.random.default_rng(2)
    grads = _arrays(rng, [(4, 5), (7,), ()], np.float32)
    grads[1][3] = 0.0
    out = cpu_backend.grad_norm([no_read(g) for g in grads], norm_type)
    flat = torch.cat([torch.from_numpy(g).reshape(-1) for g in grads])
    expected = torch.linalg.vector_norm(flat, norm_type).item()
    assert isinstance(out, np.ndarray) and out.shape == () and out.dtype == np.float32
    np.testing.assert_allclose(float(np.asarray(out)), expected, rtol=1e-5)


def test_grad_norm_dtypes_and_edge_cases():
    half = np.full(1000, 300.0, np.float16)  # squares overflow float16 (65504)
    out = cpu_backend.grad_norm([half])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 300.0 * np.sqrt(1000), rtol=1e-5)
    assert cpu_backend.grad_norm([half, np.ones(2)]).dtype == np.float64
    assert cpu_backend.grad_norm([]) == 0 and cpu_backend.grad_norm([np.ones(0)]) == 0
    assert np.isinf(cpu_backend.grad_norm([np.array([1.0, np.inf])]))
    assert np.isnan(cpu_backend.grad_norm([np.array([np.nan, np.inf])]))
    with pytest.raises(ValueError, match="norm_type must be >= 0"):
        cpu_backend.grad_norm([np.ones(2)], -1.0)


def test_unscale_grads_multiplies_and_sets_flag_without_clearing_it():
    found = no_read(_flag(0.0))
    grads = [np.array([2.0, 4.0], np.float32), np.array([[8.0]], np.float16)]
    cpu_backend.unscale_grads_(grads, no_read(np.array(0.25, np.float32)), found)
    np.testing.assert_array_equal(grads[0], [0.5, 1.0])
    np.testing.assert_array_equal(grads[1], [[2.0]])
    assert grads[1].dtype == np.float16
    assert np.asarray(found)[0] == 0.0
    bad = [np.array([1.0, np.nan]), np.array([np.inf], np.float32)]
    cpu_backend.unscale_grads_(bad[:1], np.array([0.5], np.float32), found)
    assert np.asarray(found)[0] == 1.0
    cpu_backend.unscale_grads_([np.ones(3)], np.array([0.5], np.float32), found)
    assert np.asarray(found)[0] == 1.0  # set, never cleared
    flag = _flag(0.0)
    cpu_backend.unscale_grads_(bad[1:], np.array([0.5], np.float32), flag)
    assert flag[0] == 1.0


def test_unscale_product_is_formed_in_float32_for_half_gradients():
    g = np.array([3.0], np.float16)
    cpu_backend.unscale_grads_([g], np.array(1 / 3, np.float32), _flag(0.0))
    assert g[0] == np.float16(np.float32(3.0) * np.float32(1 / 3))


@pytest.mark.parametrize("total, factor", [(10.0, 1.0 / (10.0 + 1e-6)), (0.5, 1.0)])
def test_clip_grads_scales_by_min_one_ratio(total, factor):
    grads = [np.array([3.0, -4.0], np.float32), np.array([1.0])]
    cpu_backend.clip_grads_(grads, 1.0, no_read(np.array(total, np.float32)))
    np.testing.assert_allclose(grads[0], np.array([3.0, -4.0]) * factor, rtol=1e-6)
    np.testing.assert_allclose(grads[1], [factor], rtol=1e-6)


def test_clip_grads_with_nonfinite_total_follows_torch():
    g = [np.array([1.0, 2.0], np.float32)]
    cpu_backend.clip_grads_(g, 1.0, np.array(np.nan, np.float32))
    assert np.isnan(g[0]).all()
    g = [np.array([1.0, 2.0], np.float32)]
    cpu_backend.clip_grads_(g, 1.0, np.array(np.inf, np.float32))
    np.testing.assert_array_equal(g[0], 0.0)


# --- through the optimizers --------------------------------------------------------------
OPTIMIZERS = {
    "SGD": dict(lr=0.1, momentum=0.9, weight_decay=0.01),
    "Adam": dict(lr=0.05, amsgrad=True, weight_decay=0.01),
    "AdamW": dict(lr=0.05),
    "RMSprop": dict(lr=0.01, centered=True, momentum=0.5),
}


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [gg.tensor(rng.standard_normal(s), requires_grad=True) for s in [(3, 2), (2,)]]


def _loss(ps, lib):
    w, b = ps
    x = lib.tensor(np.linspace(-1, 1, 6).reshape(2, 3))
    return ((x @ w + b) ** 2).sum()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_with_zero_flag_follows_torch(name):
    """A GradScaler-style step (flag 0, device step counts) matches torch's plain step."""
    ours = _params()
    theirs = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in ours]
    opt = getattr(gg.optim, name)(ours, **OPTIMIZERS[name])
    topt = getattr(torch.optim, name)(theirs, **OPTIMIZERS[name])
    for _ in range(4):
        opt.zero_grad()
        topt.zero_grad()
        _loss(ours, gg).backward()
        _loss(theirs, torch).backward()
        opt.step(found_inf=gg.zeros(1))
        topt.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-10,
                                       atol=1e-12)
    if name != "SGD":
        assert float(opt.state[ours[0]]["step"].item()) == 4.0


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_step_with_flag_set_leaves_parameters_state_and_step_count(name):
    ps = _params()
    opt = getattr(gg.optim, name)(ps, **OPTIMIZERS[name])
    _loss(ps, gg).backward()
    opt.step(found_inf=gg.zeros(1))  # state exists now
    before = [p.detach().numpy().copy() for p in ps]
    state = {i: {k: v.numpy().copy() for k, v in opt.state[p].items()}
             for i, p in enumerate(ps)}
    for p in ps:
        p.grad = gg.full(p.shape, float("inf"), dtype=p.dtype)
    opt.step(found_inf=gg.ones(1))
    for i, p in enumerate(ps):
        np.testing.assert_array_equal(p.detach().numpy(), before[i])
        for k, v in opt.state[p].items():
            np.testing.assert_array_equal(v.numpy(), state[i][k], err_msg=k)


def test_capturable_adam_counts_on_the_parameter_device_and_follows_torch():
    ours = _params(3)
    theirs = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in ours]
    opt = gg.optim.Adam(ours, lr=0.1, capturable=True)
    topt = torch.optim.Adam(theirs, lr=0.1)
    for _ in range(3):
        for o, lib, params in ((opt, gg, ours), (topt, torch, theirs)):
            o.zero_grad()
            _loss(params, lib).backward()
            o.step()
    assert opt.state[ours[0]]["step"].device == ours[0].device
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-10)
    resumed = gg.optim.Adam(ours, lr=0.1)
    resumed.load_state_dict(opt.state_dict())  # device counts load back as host counts
    assert resumed.state[ours[0]]["step"].item() == 3.0


@pytest.mark.parametrize("flag, match", [
    (np.zeros(1, np.float32), "must be a Tensor"),
    (gg.zeros(2), "one element"),
    (gg.zeros(1, dtype=gg.float64), "float32"),
])
def test_bad_found_inf_is_refused_before_any_change(flag, match):
    ps = _params()
    opt = gg.optim.Adam(ps, lr=0.1)
    _loss(ps, gg).backward()
    before = [p.detach().numpy().copy() for p in ps]
    with pytest.raises(TypeError, match=match):
        opt.step(found_inf=flag)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.detach().numpy(), b)
    assert opt.state == {}
