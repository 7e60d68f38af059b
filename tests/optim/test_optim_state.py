"""Optimizer bookkeeping: zero_grad, groups, state dicts, validation, failed steps."""

import numpy as np
import pytest
import torch
from optim_oracle import assert_trajectories_close, gg_params, run_gg, run_torch, torch_params

import gpugrad as gg
from gpugrad.autograd.function import version_counter


def _snapshot(opt, params):
    values = [p.detach().numpy().copy() for p in params]
    state = {i: {k: (v.numpy().copy() if isinstance(v, gg.Tensor) else v)
                 for k, v in opt.state.get(p, {}).items()} for i, p in enumerate(params)}
    return values, state


def _assert_same_snapshot(a, b):
    for x, y in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, y)
    assert a[1].keys() == b[1].keys()
    for i in a[1]:
        assert a[1][i].keys() == b[1][i].keys()
        for k in a[1][i]:
            np.testing.assert_array_equal(a[1][i][k], b[1][i][k])


def test_zero_grad_set_to_none():
    ps = gg_params()
    opt = gg.optim.SGD(ps, lr=0.1)
    (ps[0] ** 2).sum().backward()
    opt.zero_grad()
    assert all(p.grad is None for p in ps)


def test_zero_grad_fills_zeros_in_place():
    ps = gg_params()
    opt = gg.optim.SGD(ps, lr=0.1)
    (ps[0] ** 2).sum().backward()
    grad = ps[0].grad
    opt.zero_grad(set_to_none=False)
    assert ps[0].grad is grad
    np.testing.assert_array_equal(grad.numpy(), np.zeros((3, 4)))
    assert ps[1].grad is None


def test_step_bumps_version_so_saved_tensors_are_caught():
    ps = gg_params()
    opt = gg.optim.SGD(ps, lr=0.1)
    before = version_counter(ps[0]).value
    y = (ps[0] * ps[0]).sum()
    ps[0].grad = gg.ones_like(ps[0])
    opt.step()
    assert version_counter(ps[0]).value == before + 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_state_dict_format():
    ps = gg_params()
    opt = gg.optim.Adam([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.5}], lr=0.1,
                        amsgrad=True)
    run_gg(opt, ps, 2)
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert [g["lr"] for g in sd["param_groups"]] == [0.1, 0.5]
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(sd["state"]) == [0, 1, 2]
    st = sd["state"][1]
    assert sorted(st) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert st["step"].shape == () and st["step"].dtype == gg.float32 and st["step"].item() == 2
    assert st["exp_avg"].shape == (4,) and st["step"].device == "cpu"


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9)),
])
def test_state_dict_round_trip_resumes_identically(name, kwargs):
    ps = gg_params()
    opt = getattr(gg.optim, name)(ps, **kwargs)
    run_gg(opt, ps, 5)
    sd = opt.state_dict()
    clones = [gg.tensor(p.detach().numpy(), requires_grad=True) for p in ps]
    resumed = getattr(gg.optim, name)(clones, lr=123.0)  # hyperparameters come from sd
    resumed.load_state_dict(sd)
    assert resumed.param_groups[0]["lr"] == kwargs["lr"]
    assert_trajectories_close(run_gg(resumed, clones, 5), run_gg(opt, ps, 5), rtol=0, atol=0)


def test_load_state_dict_copies_state():
    ps = gg_params()
    opt = gg.optim.Adam(ps, lr=0.1)
    run_gg(opt, ps, 2)
    sd = opt.state_dict()
    other = gg.optim.Adam(gg_params(), lr=0.1)
    other.load_state_dict(sd)
    assert other.state[other.param_groups[0]["params"][0]]["exp_avg"] is not \
        sd["state"][0]["exp_avg"]


def test_loads_a_torch_optimizer_state_dict():
    ps, qs = gg_params(), torch_params()
    theirs = torch.optim.Adam(qs, lr=0.05, amsgrad=True)
    run_torch(theirs, qs, 4)
    for p, q in zip(ps, qs):
        p.data = gg.tensor(q.detach().numpy())
    ours = gg.optim.Adam(ps, lr=0.05, amsgrad=True)
    ours.load_state_dict(theirs.state_dict())
    assert_trajectories_close(run_gg(ours, ps, 4), run_torch(theirs, qs, 4))


def test_failed_step_changes_nothing():
    ps = gg_params()
    opt = gg.optim.Adam(ps, lr=0.1)
    run_gg(opt, ps, 2)
    before = _snapshot(opt, ps)
    versions = [version_counter(p).value for p in ps]
    opt.zero_grad()
    for p in ps:
        p.grad = gg.ones_like(p)
    ps[2]._grad = gg.ones(2, dtype=gg.float64)  # wrong shape (bypassing the .grad check)
    with pytest.raises(gg.ShapeError, match=r"parameter 2 of group 0.*\(2,\).*\(\)"):
        opt.step()
    _assert_same_snapshot(before, _snapshot(opt, ps))
    assert [version_counter(p).value for p in ps] == versions
    ps[2]._grad = gg.ones((), dtype=gg.float32)  # wrong dtype
    with pytest.raises(TypeError, match="dtype"):
        opt.step()
    _assert_same_snapshot(before, _snapshot(opt, ps))


def test_failed_first_step_creates_no_state():
    ps = gg_params()
    opt = gg.optim.SGD(ps, lr=0.1, momentum=0.9)
    for p in ps:
        p.grad = gg.ones_like(p)
    ps[1]._grad = gg.ones(5, dtype=gg.float64)
    with pytest.raises(gg.ShapeError):
        opt.step()
    assert opt.state == {}


def test_load_state_dict_with_wrong_shapes_changes_nothing():
    ps = gg_params()
    opt = gg.optim.Adam(ps, lr=0.1)
    run_gg(opt, ps, 2)
    before = _snapshot(opt, ps)
    other = gg.optim.Adam(gg_params(), lr=0.7)
    run_gg(other, other.param_groups[0]["params"], 1)
    sd = other.state_dict()
    sd["state"][1]["exp_avg_sq"] = gg.zeros(7, dtype=gg.float64)
    with pytest.raises(gg.ShapeError, match="exp_avg_sq.*\\(7,\\)"):
        opt.load_state_dict(sd)
    _assert_same_snapshot(before, _snapshot(opt, ps))
    assert opt.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="has 2 parameters"):
        opt.load_state_dict({"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]})


def test_corrupted_state_is_caught_before_the_step():
    ps = gg_params()
    opt = gg.optim.SGD(ps, lr=0.1, momentum=0.9)
    run_gg(opt, ps, 1)
    opt.state[ps[0]]["momentum_buffer"] = gg.zeros(2, 2, dtype=gg.float64)
    before = _snapshot(opt, ps)
    with pytest.raises(gg.ShapeError, match="momentum_buffer"):
        run_gg(opt, ps, 1)
    _assert_same_snapshot(before, _snapshot(opt, ps))


def test_constructor_validation():
    ps = gg_params()
    with pytest.raises(ValueError, match="empty parameter list"):
        gg.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        gg.optim.Adam(ps, lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        gg.optim.SGD(ps, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        gg.optim.Adam(ps, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="more than one parameter group"):
        gg.optim.SGD([{"params": ps}, {"params": ps[:1]}], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        gg.optim.SGD(ps[0], lr=0.1)
    with pytest.raises(TypeError, match="sets"):
        gg.optim.SGD([{"params": set(ps)}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        gg.optim.SGD([ps[0] * 2], lr=0.1)
    assert "Parameter Group 0" in repr(gg.optim.RMSprop(ps))


def test_defaults_match_torch():
    ps, qs = gg_params(), torch_params()
    for name in ("Adam", "AdamW", "RMSprop"):
        ours, theirs = getattr(gg.optim, name)(ps), getattr(torch.optim, name)(qs)
        for key, value in ours.defaults.items():
            assert theirs.defaults[key] == value, (name, key)
    assert_trajectories_close(run_gg(gg.optim.RMSprop(ps), ps, 3),
                              run_torch(torch.optim.RMSprop(qs), qs, 3))
