"""LambdaLR, MultiplicativeLR, MultiStepLR, ExponentialLR, LinearLR, ConstantLR,
CosineAnnealingWarmRestarts, OneCycleLR, CyclicLR, ReduceLROnPlateau, SequentialLR and
ChainedScheduler give PyTorch's learning rates (and momenta), and resume from their state
dicts (also through a file)."""

import math

import pytest
import torch
from optim_oracle import gg_params, torch_params

import gpugrad as gg


class Warmup:
    """A callable object: its attributes are what LambdaLR's state dict saves."""

    def __init__(self, n):
        self.n = n

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.n)


def _opt(lib, kind="SGD"):
    ps = gg_params() if lib is gg else torch_params()
    groups = [{"params": ps[:2], "lr": 0.1}, {"params": ps[2:], "lr": 0.03}]
    if kind == "SGD":
        return lib.optim.SGD(groups, momentum=0.9)
    return lib.optim.Adam(groups)


def _make(lib, name, opt):
    sch = lib.optim.lr_scheduler
    return {
        "LambdaLR": lambda: sch.LambdaLR(opt, lambda e: 0.9 ** e),
        "LambdaLR-list": lambda: sch.LambdaLR(opt, [Warmup(4), lambda e: 1.0 / (e + 1)]),
        "MultiplicativeLR": lambda: sch.MultiplicativeLR(opt, lambda e: 0.95),
        "MultiStepLR": lambda: sch.MultiStepLR(opt, milestones=[2, 5, 5, 9], gamma=0.5),
        "ExponentialLR": lambda: sch.ExponentialLR(opt, gamma=0.8),
        "LinearLR": lambda: sch.LinearLR(opt, start_factor=0.25, end_factor=0.9,
                                         total_iters=6),
        "ConstantLR": lambda: sch.ConstantLR(opt, factor=0.5, total_iters=4),
        "CosineAnnealingWarmRestarts": lambda: sch.CosineAnnealingWarmRestarts(opt, T_0=3),
        "CosineAnnealingWarmRestarts-mult": lambda: sch.CosineAnnealingWarmRestarts(
            opt, T_0=2, T_mult=2, eta_min=0.001),
        "OneCycleLR": lambda: sch.OneCycleLR(opt, max_lr=[0.5, 0.2], total_steps=20),
        "OneCycleLR-linear-3": lambda: sch.OneCycleLR(
            opt, max_lr=0.4, epochs=4, steps_per_epoch=5, pct_start=0.25,
            anneal_strategy="linear", three_phase=True, div_factor=10.0),
        "OneCycleLR-nomomentum": lambda: sch.OneCycleLR(opt, max_lr=0.3, total_steps=20,
                                                        cycle_momentum=False),
        "CyclicLR": lambda: sch.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=3),
        "CyclicLR-tri2": lambda: sch.CyclicLR(opt, base_lr=[0.01, 0.02], max_lr=0.1,
                                              step_size_up=2, step_size_down=4,
                                              mode="triangular2"),
        "CyclicLR-exp": lambda: sch.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                             mode="exp_range", gamma=0.9),
        "SequentialLR": lambda: sch.SequentialLR(
            opt, [sch.LinearLR(opt, start_factor=0.1, total_iters=3),
                  sch.ExponentialLR(opt, gamma=0.7)], milestones=[4]),
        "SequentialLR-3": lambda: sch.SequentialLR(
            opt, [sch.ConstantLR(opt, factor=0.5, total_iters=2),
                  sch.CosineAnnealingLR(opt, T_max=5),
                  sch.StepLR(opt, step_size=2, gamma=0.3)], milestones=[3, 8]),
        "PolynomialLR": lambda: sch.PolynomialLR(opt, total_iters=8, power=2.0),
        "ChainedScheduler": lambda: sch.ChainedScheduler(
            [sch.ConstantLR(opt, factor=0.5, total_iters=3), sch.ExponentialLR(opt, gamma=0.9)]),
    }[name]()


NAMES = ["LambdaLR", "LambdaLR-list", "MultiplicativeLR", "MultiStepLR", "ExponentialLR",
         "LinearLR", "ConstantLR", "CosineAnnealingWarmRestarts",
         "CosineAnnealingWarmRestarts-mult", "OneCycleLR", "OneCycleLR-linear-3",
         "OneCycleLR-nomomentum", "CyclicLR", "CyclicLR-tri2", "CyclicLR-exp", "SequentialLR",
         "SequentialLR-3", "ChainedScheduler", "PolynomialLR"]


def _values(opt):
    return [(g["lr"], g.get("momentum"), g.get("betas")) for g in opt.param_groups]


def _run(opt, sched, steps):
    out = []
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append(_values(opt))
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    return out


def _close(a, b):
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        for (lr1, m1, b1), (lr2, m2, b2) in zip(x, y):
            assert lr1 == pytest.approx(lr2, rel=1e-13, abs=1e-16), f"step {i}"
            assert (m1 is None) == (m2 is None)
            if m1 is not None:
                assert m1 == pytest.approx(m2, rel=1e-13), f"step {i} momentum"
            if b1 is not None:
                assert tuple(b1) == pytest.approx(tuple(b2), rel=1e-13), f"step {i} betas"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_schedule_matches_torch(name, kind):
    ours, theirs = _opt(gg, kind), _opt(torch, kind)
    s1, s2 = _make(gg, name, ours), _make(torch, name, theirs)
    _close([_values(ours)], [_values(theirs)])
    _close(_run(ours, s1, 19), _run(theirs, s2, 19))


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_through_a_file(name, tmp_path):
    """Stop after 7 steps, save optimizer and scheduler state to a file, load both into
    fresh objects: the next steps equal an uninterrupted PyTorch run."""
    ours, theirs = _opt(gg), _opt(torch)
    s1, s2 = _make(gg, name, ours), _make(torch, name, theirs)
    _run(ours, s1, 7)
    _run(theirs, s2, 7)
    path = tmp_path / "ckpt.safetensors"
    gg.save({"opt": ours.state_dict(), "sched": s1.state_dict()}, path)
    ckpt = gg.load(path)
    fresh = _opt(gg)
    fresh_sched = _make(gg, name, fresh)
    fresh.load_state_dict(ckpt["opt"])
    fresh_sched.load_state_dict(ckpt["sched"])
    assert fresh_sched.get_last_lr() == pytest.approx(s2.get_last_lr())
    _close(_run(fresh, fresh_sched, 8), _run(theirs, s2, 8))


def test_lambda_state_dict_saves_callable_objects_but_not_functions():
    opt = _opt(gg)
    sched = gg.optim.lr_scheduler.LambdaLR(opt, [Warmup(4), lambda e: 1.0])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [{"n": 4}, None]
    other = gg.optim.lr_scheduler.LambdaLR(_opt(gg), [Warmup(9), lambda e: 1.0])
    other.load_state_dict(sd)
    assert other.lr_lambdas[0].n == 4


def test_step_with_epoch_uses_closed_forms():
    for name, kw in [("MultiStepLR", dict(milestones=[2, 5], gamma=0.5)),
                     ("ExponentialLR", dict(gamma=0.8)),
                     ("LinearLR", dict(start_factor=0.2, total_iters=4)),
                     ("ConstantLR", dict(factor=0.5, total_iters=3))]:
        ours = getattr(gg.optim.lr_scheduler, name)(_opt(gg), **kw)
        for epoch in (6, 1, 3):
            ours.step(epoch)
            base = [0.1, 0.03]
            expect = {"MultiStepLR": [b * 0.5 ** sum(epoch >= m for m in (2, 5)) for b in base],
                      "ExponentialLR": [b * 0.8 ** epoch for b in base],
                      "LinearLR": [b * (0.2 + 0.8 * min(4, epoch) / 4) for b in base],
                      "ConstantLR": [b * (0.5 if epoch < 3 else 1.0) for b in base]}[name]
            assert ours.get_last_lr() == pytest.approx(expect), name


def test_warm_restarts_fractional_epochs_match_torch():
    ours, theirs = _opt(gg), _opt(torch)
    s1 = gg.optim.lr_scheduler.CosineAnnealingWarmRestarts(ours, T_0=2, T_mult=2)
    s2 = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(theirs, T_0=2, T_mult=2)
    for epoch in (0.5, 1.7, 2.2, 5.9, 13.0, 0.3):
        s1.step(epoch)
        s2.step(epoch)
        assert s1.get_last_lr() == pytest.approx(s2.get_last_lr(), rel=1e-13)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(mode="max", factor=0.5, patience=1, threshold_mode="abs", threshold=0.1),
    dict(patience=0, cooldown=2, min_lr=[0.02, 0.001]),
    dict(patience=2, threshold=0.05, eps=0.05),
])
def test_reduce_on_plateau_matches_torch(kwargs):
    ours, theirs = _opt(gg), _opt(torch)
    s1 = gg.optim.lr_scheduler.ReduceLROnPlateau(ours, **kwargs)
    s2 = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **kwargs)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.89, 0.9, 0.9, 0.9, 1.2, 1.3, 1.3, 1.31, 0.5] * 3
    for i, m in enumerate(metrics):
        s1.step(gg.tensor(m) if i % 2 else m)
        s2.step(torch.tensor(m) if i % 2 else m)
        assert s1.get_last_lr() == pytest.approx(s2.get_last_lr(), rel=1e-14), f"epoch {i}"
        assert s1.num_bad_epochs == s2.num_bad_epochs and s1.best == s2.best


def test_bad_arguments_raise():
    sch = gg.optim.lr_scheduler
    opt = _opt(gg)
    with pytest.raises(ValueError, match="lr_lambdas"):
        sch.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="factor"):
        sch.ConstantLR(opt, factor=2.0)
    with pytest.raises(ValueError, match="T_0"):
        sch.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="total_steps"):
        sch.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="max_lr"):
        sch.OneCycleLR(opt, max_lr=[0.1, 0.2, 0.3], total_steps=5)
    with pytest.raises(ValueError, match="momentum"):
        sch.CyclicLR(gg.optim.Adagrad(gg_params()), base_lr=0.01, max_lr=0.1)
    with pytest.raises(ValueError, match="mode"):
        sch.ReduceLROnPlateau(opt, mode="median")
    with pytest.raises(ValueError, match="Factor"):
        sch.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        sch.ChainedScheduler([sch.ReduceLROnPlateau(opt)])
    with pytest.raises(ValueError, match="milestone"):
        sch.SequentialLR(opt, [sch.ExponentialLR(opt, 0.9)], milestones=[2])
    with pytest.raises(ValueError, match="same optimizer"):
        sch.ChainedScheduler([sch.ExponentialLR(opt, 0.9), sch.ExponentialLR(_opt(gg), 0.9)])
    one = sch.OneCycleLR(_opt(gg), max_lr=0.1, total_steps=2)
    one.step()
    one.step()
    with pytest.raises(ValueError, match="total steps"):
        one.step()
    assert math.isfinite(one.get_last_lr()[0])


def test_reduce_on_plateau_state_dict_round_trip(tmp_path):
    ours, theirs = _opt(gg), _opt(torch)
    s1 = gg.optim.lr_scheduler.ReduceLROnPlateau(ours, patience=1, cooldown=1)
    s2 = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, patience=1, cooldown=1)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.8, 0.9, 0.9, 0.9, 0.9]
    for m in metrics[:4]:
        s1.step(m)
        s2.step(m)
    gg.save(s1.state_dict(), tmp_path / "s.safetensors")
    fresh = gg.optim.lr_scheduler.ReduceLROnPlateau(_opt(gg), patience=1, cooldown=1)
    fresh.load_state_dict(gg.load(tmp_path / "s.safetensors"))
    fresh.optimizer = ours
    for m in metrics[4:]:
        fresh.step(m)
        s2.step(m)
        assert fresh.get_last_lr() == pytest.approx(s2.get_last_lr(), rel=1e-14)
    assert (fresh.best, fresh.num_bad_epochs, fresh.cooldown_counter) == \
        (s2.best, s2.num_bad_epochs, s2.cooldown_counter)
