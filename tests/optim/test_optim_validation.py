"""A failed optimizer step changes nothing: hyperparameters (also ones set later through
param_groups), read-only parameters and state are all checked before the first update;
bad values are refused with PyTorch's messages, not NumPy's."""

import math

import numpy as np
import pytest
import torch

import gpugrad as gg
from gpugrad.optim.lr_scheduler import CosineAnnealingLR

OPTIMIZERS = {
    "SGD": lambda ps: gg.optim.SGD(ps, lr=0.1, momentum=0.9),
    "Adam": lambda ps: gg.optim.Adam(ps, lr=0.1),
    "AdamW": lambda ps: gg.optim.AdamW(ps, lr=0.1),
    "RMSprop": lambda ps: gg.optim.RMSprop(ps, lr=0.1, momentum=0.5, centered=True),
}


def _two_groups(make):
    a = gg.tensor([1.0, 2.0], requires_grad=True)
    b = gg.tensor([3.0, 4.0], requires_grad=True)
    opt = make([{"params": [a]}, {"params": [b]}])
    for p in (a, b):
        p.grad = gg.tensor([0.5, -0.5])
    return opt, a, b


def _snapshot(opt, params):
    values = [p.detach().numpy().copy() for p in params]
    state = {id(p): {k: (v.detach().numpy().copy() if isinstance(v, gg.Tensor) else v)
                     for k, v in s.items()} for p, s in opt.state.items()}
    return values, state


def _assert_unchanged(before, after):
    for x, y in zip(before[0], after[0]):
        np.testing.assert_array_equal(x, y)
    assert before[1].keys() == after[1].keys()
    for k in before[1]:
        assert before[1][k].keys() == after[1][k].keys()
        for name in before[1][k]:
            np.testing.assert_array_equal(before[1][k][name], after[1][k][name])


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("key, value, message", [
    ("lr", float("nan"), "Invalid learning rate: nan"),
    ("lr", -1.0, "Invalid learning rate: -1.0"),
    ("lr", "0.1", "Invalid learning rate: '0.1' (expected a number, got str)"),
    ("lr", None, "Invalid learning rate: None (expected a number, got NoneType)"),
    ("weight_decay", -0.5, "Invalid weight_decay value: -0.5"),
])
def test_bad_hyperparameter_in_a_later_group_changes_nothing(name, key, value, message):
    opt, a, b = _two_groups(OPTIMIZERS[name])
    opt.step()  # some state exists already
    before = _snapshot(opt, [a, b])
    opt.param_groups[1][key] = value  # as a scheduler or a user would set it
    with pytest.raises(ValueError, match=rf"{name}\.step: param_groups\[1\]: " + _re(message)):
        opt.step()
    _assert_unchanged(before, _snapshot(opt, [a, b]))


def _re(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_read_only_parameter_changes_nothing(name, cpu_default_device):  # host memory
    a = gg.tensor([1.0, 2.0], requires_grad=True)
    frozen = np.array([3.0, 4.0], dtype=np.float32)
    frozen.flags.writeable = False
    b = gg.from_numpy(frozen).requires_grad_()
    opt = OPTIMIZERS[name]([a, b])
    a.grad, b.grad = gg.tensor([0.5, 0.5]), gg.tensor([0.5, 0.5])
    before = _snapshot(opt, [a, b])
    with pytest.raises(RuntimeError, match=rf"{name}\.step: parameter 1 of group 0 is "
                                           r"read-only .*tensor\.clone\(\)"):
        opt.step()
    _assert_unchanged(before, _snapshot(opt, [a, b]))
    assert not opt.state or all("step" not in s for s in opt.state.values())


@pytest.mark.parametrize("make, message", [
    (lambda ps: gg.optim.Adam(ps, lr=float("nan")), "Invalid learning rate: nan"),
    (lambda ps: gg.optim.Adam(ps, eps=float("nan")), "Invalid epsilon value: nan"),
    (lambda ps: gg.optim.Adam(ps, betas=(float("nan"), 0.9)),
     "Invalid beta parameter at index 0: nan"),
    (lambda ps: gg.optim.Adam(ps, betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (lambda ps: gg.optim.SGD(ps, lr=0.1, momentum=-1), "Invalid momentum value: -1"),
    (lambda ps: gg.optim.RMSprop(ps, alpha=float("nan")), "Invalid alpha value: nan"),
])
def test_construction_rejects_what_pytorch_rejects(make, message):
    with pytest.raises(ValueError, match=_re(message)):
        make([gg.ones(2, requires_grad=True)])


def test_pytorch_rejects_nan_lr_too():
    with pytest.raises(ValueError, match="Invalid learning rate: nan"):
        torch.optim.Adam([torch.nn.Parameter(torch.ones(2))], lr=float("nan"))


def test_valid_hyperparameters_set_through_param_groups_are_used():
    opt, a, b = _two_groups(OPTIMIZERS["SGD"])
    opt.param_groups[1]["lr"] = 0.0
    opt.step()
    np.testing.assert_array_equal(b.detach().numpy(), [3.0, 4.0])
    assert not np.array_equal(a.detach().numpy(), [1.0, 2.0])


@pytest.mark.parametrize("t_max", [0, -1, 0.0, math.inf, float("nan"), "10"])
def test_cosine_annealing_needs_a_positive_t_max(t_max):
    opt = gg.optim.SGD([gg.ones(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=r"CosineAnnealingLR: T_max .* must be a positive "
                                         r"number, got"):
        CosineAnnealingLR(opt, T_max=t_max)
    assert opt.param_groups[0]["lr"] == 0.1 and "initial_lr" not in opt.param_groups[0]


def test_cosine_annealing_with_t_max_1_matches_pytorch():
    ours = gg.optim.SGD([gg.ones(1, requires_grad=True)], lr=0.1)
    theirs = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    s1, s2 = CosineAnnealingLR(ours, T_max=1), torch.optim.lr_scheduler.CosineAnnealingLR(
        theirs, T_max=1)
    for _ in range(4):
        ours.step()
        theirs.step()
        s1.step()
        s2.step()
        assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"])
