"""Adadelta, Adagrad, Adamax, NAdam, RAdam and LBFGS: trajectories, state and state-dict
round trips equal PyTorch's."""

import numpy as np
import pytest
import torch
from optim_oracle import (
    assert_states_close,
    assert_trajectories_close,
    gg_params,
    loss_fn,
    run_gg,
    run_torch,
    torch_params,
)

import gpugrad as gg

CASES = [
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    ("Adadelta", dict(maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3)),
    ("Adagrad", dict(lr=0.1, eps=1e-6, maximize=True)),
    ("Adamax", dict(lr=0.05)),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adamax", dict(lr=0.05, maximize=True)),
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, momentum_decay=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05, betas=(0.5, 0.6), weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Rprop", dict(lr=0.05)),
    ("Rprop", dict(lr=0.01, etas=(0.3, 1.5), step_sizes=(1e-3, 0.02), maximize=True)),
    ("ASGD", dict(lr=0.05)),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=3, weight_decay=0.1)),
    ("ASGD", dict(lr=0.05, t0=0, maximize=True)),
]


def _ids(cases):
    return [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in cases]


@pytest.mark.parametrize("name,kwargs", CASES, ids=_ids(CASES))
def test_trajectory_matches_torch(name, kwargs):
    ps, qs = gg_params(), torch_params()
    ours, theirs = getattr(gg.optim, name)(ps, **kwargs), getattr(torch.optim, name)(qs, **kwargs)
    # RAdam switches to its rectified update after step 5 (with β₂ = 0.999)
    assert_trajectories_close(run_gg(ours, ps, 12), run_torch(theirs, qs, 12))
    assert_states_close(ours, theirs, ps, qs)


@pytest.mark.parametrize("name", ["Adadelta", "Adagrad", "Adamax", "NAdam", "RAdam", "Rprop",
                                  "ASGD"])
def test_float32_trajectory(name):
    ps, qs = gg_params(np.float32), torch_params(np.float32)
    ours, theirs = getattr(gg.optim, name)(ps, lr=0.01), getattr(torch.optim, name)(qs, lr=0.01)
    assert_trajectories_close(run_gg(ours, ps, 8), run_torch(theirs, qs, 8), rtol=1e-5,
                              atol=1e-6)
    assert all(p.dtype == gg.float32 for p in ps)


@pytest.mark.parametrize("name", ["Adadelta", "Adagrad", "Adamax", "NAdam", "RAdam", "Rprop",
                                  "ASGD"])
def test_state_dict_round_trip_resumes_identically(name):
    """Save after 4 steps into a fresh optimizer (also through torch's state dict), resume:
    the next steps equal an uninterrupted run."""
    ps, qs = gg_params(), torch_params()
    ours, theirs = getattr(gg.optim, name)(ps, lr=0.05), getattr(torch.optim, name)(qs, lr=0.05)
    run_gg(ours, ps, 4)
    run_torch(theirs, qs, 4)
    sd = ours.state_dict()
    assert sorted(sd["param_groups"][0]) == sorted(theirs.state_dict()["param_groups"][0])
    ps2 = [gg.tensor(p.detach().numpy(), requires_grad=True) for p in ps]
    resumed = getattr(gg.optim, name)(ps2, lr=0.05)
    resumed.load_state_dict(sd)
    ps3 = [gg.tensor(p.detach().numpy(), requires_grad=True) for p in ps]
    from_torch = getattr(gg.optim, name)(ps3, lr=0.05)
    from_torch.load_state_dict(theirs.state_dict())
    expect = run_torch(theirs, qs, 4)
    assert_trajectories_close(run_gg(resumed, ps2, 4), expect)
    assert_trajectories_close(run_gg(from_torch, ps3, 4), expect)


def test_adagrad_state_exists_before_the_first_step():
    ps = gg_params()
    opt = gg.optim.Adagrad(ps, initial_accumulator_value=0.25)
    theirs = torch.optim.Adagrad(torch_params(), initial_accumulator_value=0.25)
    assert set(opt.state_dict()["state"]) == set(theirs.state_dict()["state"]) == {0, 1, 2}
    np.testing.assert_array_equal(opt.state[ps[0]]["sum"].numpy(), np.full((3, 4), 0.25))


@pytest.mark.parametrize("name,kwargs,message", [
    ("Adadelta", dict(rho=1.5), "rho"),
    ("Adadelta", dict(eps=-1.0), "eps"),
    ("Adagrad", dict(lr_decay=-0.1), "lr_decay"),
    ("Adagrad", dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    ("Adamax", dict(betas=(1.0, 0.9)), "beta"),
    ("NAdam", dict(momentum_decay=-1.0), "momentum_decay"),
    ("RAdam", dict(weight_decay=-1.0), "weight_decay"),
    ("Rprop", dict(etas=(1.5, 1.2)), "eta"),
    ("ASGD", dict(weight_decay=-1.0), "weight_decay"),
    ("LBFGS", dict(line_search_fn="armijo"), "line_search_fn"),
])
def test_invalid_hyperparameters_raise(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        getattr(gg.optim, name)(gg_params(), **kwargs)


def test_skipped_step_when_found_inf_changes_nothing():
    ps = gg_params()
    opt = gg.optim.NAdam(ps, lr=0.05)
    run_gg(opt, ps, 2)
    before = [p.detach().numpy().copy() for p in ps]
    state = {k: (v.numpy().copy()) for k, v in opt.state[ps[0]].items()}
    loss_fn(ps, gg).backward()
    opt.step(found_inf=gg.tensor([1.0], dtype=gg.float32))
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.detach().numpy(), b)
    for k, v in opt.state[ps[0]].items():
        np.testing.assert_array_equal(v.numpy(), state[k])


# --- LBFGS ---------------------------------------------------------------------------------
def _lbfgs_run(lib, params, steps, **kwargs):
    opt = lib.optim.LBFGS(params, **kwargs)
    losses, values = [], []

    def closure():
        opt.zero_grad()
        loss = loss_fn(params, lib)
        loss.backward()
        return loss

    for _ in range(steps):
        losses.append(float(opt.step(closure).detach()))
        values.append([p.detach().numpy().copy() for p in params])
    return opt, losses, values


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(lr=0.5, max_iter=5, history_size=3),
    dict(line_search_fn="strong_wolfe"),
    dict(lr=0.8, max_iter=4, history_size=2, line_search_fn="strong_wolfe"),
    dict(max_iter=50, tolerance_grad=1e-3, tolerance_change=1e-4),
])
def test_lbfgs_matches_torch(kwargs):
    ps, qs = gg_params(), torch_params()
    # two steps: 40 iterations on this non-convex loss already amplify last-bit differences
    # of the loss (gpugrad's and PyTorch's means round differently) to ~1e-9
    ours, l1, v1 = _lbfgs_run(gg, ps, 2, **kwargs)
    theirs, l2, v2 = _lbfgs_run(torch, qs, 2, **kwargs)
    np.testing.assert_allclose(l1, l2, rtol=1e-9)
    assert_trajectories_close(v1, v2, rtol=1e-7, atol=1e-8)
    s1, s2 = ours.state[ps[0]], theirs.state[qs[0]]
    assert s1["func_evals"] == s2["func_evals"] and s1["n_iter"] == s2["n_iter"]
    assert len(s1["old_dirs"]) == len(s2["old_dirs"])


def test_lbfgs_state_dict_round_trip():
    ps, qs = gg_params(), torch_params()
    ours, _, _ = _lbfgs_run(gg, ps, 1, max_iter=3, history_size=4)
    theirs, _, _ = _lbfgs_run(torch, qs, 1, max_iter=3, history_size=4)
    ps2 = [gg.tensor(p.detach().numpy(), requires_grad=True) for p in ps]
    resumed = gg.optim.LBFGS(ps2, max_iter=3, history_size=4)
    resumed.load_state_dict(ours.state_dict())

    def closure():
        resumed.zero_grad()
        loss = loss_fn(ps2, gg)
        loss.backward()
        return loss

    resumed.step(closure)
    _, _, expect = _lbfgs_run_continue(theirs, qs)
    assert_trajectories_close([[p.detach().numpy() for p in ps2]], expect, rtol=1e-8,
                              atol=1e-10)


def _lbfgs_run_continue(opt, params):
    def closure():
        opt.zero_grad()
        loss = loss_fn(params, torch)
        loss.backward()
        return loss

    loss = opt.step(closure)
    return opt, [float(loss.detach())], [[p.detach().numpy().copy() for p in params]]


def test_lbfgs_converges_on_a_quadratic():
    target = np.arange(4.0)
    x = gg.zeros(4, dtype=gg.float64, requires_grad=True)
    opt = gg.optim.LBFGS([x], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((x - gg.tensor(target)) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), target, atol=1e-6)


def test_lbfgs_rejects_groups_and_missing_closure():
    ps = gg_params()
    with pytest.raises(ValueError, match="parameter groups"):
        gg.optim.LBFGS([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.1}])
    opt = gg.optim.LBFGS(ps)
    with pytest.raises(RuntimeError, match="closure"):
        opt.step(None)
