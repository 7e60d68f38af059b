"""Optimizer trajectories equal PyTorch's, option by option."""

import numpy as np
import pytest
import torch
from optim_oracle import (
    assert_states_close,
    assert_trajectories_close,
    gg_params,
    run_gg,
    run_torch,
    torch_params,
)

import gpugrad as gg

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.05, nesterov=True, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6)),
    ("Adam", dict(lr=0.05, maximize=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1, maximize=True)),
]


@pytest.mark.parametrize("name,kwargs", CASES,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                              for n, kw in CASES])
def test_trajectory_matches_torch(name, kwargs):
    ps, qs = gg_params(), torch_params()
    ours, theirs = getattr(gg.optim, name)(ps, **kwargs), getattr(torch.optim, name)(qs, **kwargs)
    assert_trajectories_close(run_gg(ours, ps, 10), run_torch(theirs, qs, 10))
    assert_states_close(ours, theirs, ps, qs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_float32_trajectory(name):
    kwargs = dict(lr=0.01, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.01)
    ps, qs = gg_params(np.float32), torch_params(np.float32)
    ours, theirs = getattr(gg.optim, name)(ps, **kwargs), getattr(torch.optim, name)(qs, **kwargs)
    assert_trajectories_close(run_gg(ours, ps, 10), run_torch(theirs, qs, 10), rtol=1e-5,
                              atol=1e-6)
    assert all(p.dtype == gg.float32 for p in ps)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_param_groups_with_different_hyperparameters(name):
    extra = {"momentum": 0.5} if name != "Adam" else {"betas": (0.5, 0.6)}
    ps, qs = gg_params(), torch_params()
    ours = getattr(gg.optim, name)([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.2, **extra}],
                                   lr=0.05)
    theirs = getattr(torch.optim, name)([{"params": qs[:2]},
                                         {"params": qs[2:], "lr": 0.2, **extra}], lr=0.05)
    assert [g["lr"] for g in ours.param_groups] == [0.05, 0.2]
    assert_trajectories_close(run_gg(ours, ps, 10), run_torch(theirs, qs, 10))


def test_add_param_group_matches_torch():
    ps, qs = gg_params(), torch_params()
    ours, theirs = gg.optim.Adam(ps[:1], lr=0.05), torch.optim.Adam(qs[:1], lr=0.05)
    run_gg(ours, ps, 3)
    run_torch(theirs, qs, 3)
    ours.add_param_group({"params": ps[1:], "lr": 0.1})
    theirs.add_param_group({"params": qs[1:], "lr": 0.1})
    assert_trajectories_close(run_gg(ours, ps, 5), run_torch(theirs, qs, 5))
    assert_states_close(ours, theirs, ps, qs)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_zero_grad_keep_zeros_matches_torch(name):
    # With set_to_none=False every parameter has a (zero-filled) gradient at each step.
    ps, qs = gg_params(), torch_params()
    ours = getattr(gg.optim, name)(ps, lr=0.05, weight_decay=0.1)
    theirs = getattr(torch.optim, name)(qs, lr=0.05, weight_decay=0.1)
    assert_trajectories_close(run_gg(ours, ps, 10, zero_to_none=False),
                              run_torch(theirs, qs, 10, zero_to_none=False))


def test_parameters_without_grad_are_skipped():
    ps, qs = gg_params(), torch_params()
    ours, theirs = gg.optim.Adam(ps, lr=0.1), torch.optim.Adam(qs, lr=0.1)
    for opt, params in ((ours, ps), (theirs, qs)):
        for _ in range(3):
            opt.zero_grad()
            (params[0] ** 2).sum().backward()
            opt.step()
    np.testing.assert_allclose(ps[0].detach().numpy(), qs[0].detach().numpy(), rtol=1e-12)
    np.testing.assert_array_equal(ps[1].detach().numpy(), qs[1].detach().numpy())
    assert ps[1] not in ours.state and qs[1] not in theirs.state
    assert_states_close(ours, theirs, ps, qs)


def test_closure_is_called_and_its_loss_returned():
    ps = gg_params()
    opt = gg.optim.SGD(ps, lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (ps[0] ** 2).sum()
        loss.backward()
        return loss

    with gg.no_grad():
        loss = opt.step(closure)
    assert loss.item() == pytest.approx(float((gg_params()[0].detach().numpy() ** 2).sum()))
