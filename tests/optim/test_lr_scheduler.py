"""Learning-rate schedulers give PyTorch's values."""

import pytest
import torch
from optim_oracle import gg_params, torch_params

import gpugrad as gg


def _pair(lrs=(0.1, 0.03)):
    ps, qs = gg_params(), torch_params()
    ours = gg.optim.SGD([{"params": ps[:2], "lr": lrs[0]}, {"params": ps[2:], "lr": lrs[1]}])
    theirs = torch.optim.SGD([{"params": qs[:2], "lr": lrs[0]},
                              {"params": qs[2:], "lr": lrs[1]}])
    return ours, theirs


def _schedule(opt, sched, steps):
    lrs = [sched.get_last_lr()]
    for _ in range(steps):
        opt.step()  # no grads: a no-op, called first as PyTorch expects
        sched.step()
        lrs.append(sched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == lrs[-1]
    return lrs


@pytest.mark.parametrize("name,kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("StepLR", dict(step_size=1)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
    ("CosineAnnealingLR", dict(T_max=10)),
])
def test_schedule_matches_torch(name, kwargs):
    ours, theirs = _pair()
    a = _schedule(ours, getattr(gg.optim.lr_scheduler, name)(ours, **kwargs), 20)
    b = _schedule(theirs, getattr(torch.optim.lr_scheduler, name)(theirs, **kwargs), 20)
    assert len(a) == len(b) == 21
    for x, y in zip(a, b):
        assert x == pytest.approx(y, rel=1e-14, abs=1e-16)


@pytest.mark.parametrize("name,kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
])
def test_scheduler_state_dict_resumes(name, kwargs):
    cls = getattr(gg.optim.lr_scheduler, name)
    ours, _ = _pair()
    sched = cls(ours, **kwargs)
    _schedule(ours, sched, 5)
    sd_opt, sd_sched = ours.state_dict(), sched.state_dict()
    assert "optimizer" not in sd_sched and sd_sched["last_epoch"] == 5
    resumed_opt, _ = _pair(lrs=(9.0, 9.0))
    resumed_opt.load_state_dict(sd_opt)
    resumed = cls(resumed_opt, **kwargs)
    resumed.load_state_dict(sd_sched)
    assert _schedule(resumed_opt, resumed, 10) == _schedule(ours, sched, 10)


def test_step_with_epoch_uses_closed_form():
    ours, theirs = _pair()
    a = gg.optim.lr_scheduler.CosineAnnealingLR(ours, T_max=10)
    a.step(4)
    assert a.get_last_lr() == pytest.approx([0.1 * (1 + 0.30901699437494745) / 2,
                                             0.03 * (1 + 0.30901699437494745) / 2])


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="not an Optimizer"):
        gg.optim.lr_scheduler.StepLR(object(), step_size=2)
