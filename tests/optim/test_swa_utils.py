"""optim.swa_utils (AveragedModel, SWALR, update_bn) against PyTorch's."""

import numpy as np
import pytest
import torch

import gpugrad as gg

RNG = np.random.default_rng(3)


def _net(lib):
    torch.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.Linear(4, 2))


def _pair():
    theirs = _net(torch).double()
    ours = _net(gg).double()
    ours.load_state_dict({k: gg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    return ours, theirs


def _perturb(ours, theirs, scale=0.1):
    for p, q in zip(ours.parameters(), theirs.parameters()):
        d = RNG.normal(size=tuple(q.shape)) * scale
        with torch.no_grad():
            q.add_(torch.tensor(d))
        with gg.no_grad():
            p.add_(gg.tensor(d))
    x = RNG.normal(size=(8, 3))
    ours(gg.tensor(x))  # moves the batch-norm running statistics
    theirs(torch.tensor(x))


@pytest.mark.parametrize("kind", ["swa", "ema-multi", "ema-avg", "swa-avg", "buffers"])
def test_averaged_model_matches_torch(kind):
    ours, theirs = _pair()
    kw_g, kw_t = {}, {}
    if kind == "ema-multi":
        kw_g["multi_avg_fn"] = gg.optim.swa_utils.get_ema_multi_avg_fn(0.9)
        kw_t["multi_avg_fn"] = torch.optim.swa_utils.get_ema_multi_avg_fn(0.9)
    elif kind == "ema-avg":
        kw_g["avg_fn"] = gg.optim.swa_utils.get_ema_avg_fn(0.8)
        kw_t["avg_fn"] = torch.optim.swa_utils.get_ema_avg_fn(0.8)
    elif kind == "swa-avg":
        kw_g["avg_fn"] = gg.optim.swa_utils.get_swa_avg_fn()
        kw_t["avg_fn"] = torch.optim.swa_utils.get_swa_avg_fn()
    elif kind == "buffers":
        kw_g["use_buffers"] = kw_t["use_buffers"] = True
    a = gg.optim.swa_utils.AveragedModel(ours, **kw_g)
    b = torch.optim.swa_utils.AveragedModel(theirs, **kw_t)
    for _ in range(4):
        _perturb(ours, theirs)
        a.update_parameters(ours)
        b.update_parameters(theirs)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sb:
        np.testing.assert_allclose(sa[k].numpy(), sb[k].numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=k)
    x = RNG.normal(size=(5, 3))
    a.eval()
    b.eval()
    np.testing.assert_allclose(a(gg.tensor(x)).detach().numpy(),
                               b(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_update_bn_matches_torch():
    ours, theirs = _pair()
    batches = [RNG.normal(size=(6, 3)) for _ in range(3)]
    gg.optim.swa_utils.update_bn([(gg.tensor(b), 0) for b in batches], ours)
    torch.optim.swa_utils.update_bn([(torch.tensor(b), 0) for b in batches], theirs)
    # BatchNorm's cumulative average (momentum None) uses a float32 1/n factor in gpugrad
    # (kept on the device), a Python float in PyTorch: equal to float32 precision
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-6,
                                   err_msg=k)
    assert ours[1].momentum == 0.1 and ours.training


@pytest.mark.parametrize("kw", [dict(swa_lr=0.05), dict(swa_lr=[0.05, 0.01], anneal_epochs=3,
                                                        anneal_strategy="linear"),
                                dict(swa_lr=0.02, anneal_epochs=0)])
def test_swalr_matches_torch(kw):
    ps = [gg.tensor(np.ones(2), requires_grad=True), gg.tensor(np.ones(1), requires_grad=True)]
    qs = [torch.ones(2, requires_grad=True), torch.ones(1, requires_grad=True)]
    o1 = gg.optim.SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.3}], lr=0.5)
    o2 = torch.optim.SGD([{"params": qs[:1]}, {"params": qs[1:], "lr": 0.3}], lr=0.5)
    s1 = gg.optim.swa_utils.SWALR(o1, **kw)
    s2 = torch.optim.swa_utils.SWALR(o2, **kw)
    for _ in range(14):
        assert s1.get_last_lr() == pytest.approx(s2.get_last_lr(), rel=1e-13)
        o1.step()
        o2.step()
        s1.step()
        s2.step()
    sd = s1.state_dict()
    s3 = gg.optim.swa_utils.SWALR(gg.optim.SGD(ps, lr=0.5), swa_lr=0.05)
    s3.load_state_dict(sd)
    assert s3._step_count == s1._step_count


def test_swa_errors():
    with pytest.raises(ValueError, match="decay"):
        gg.optim.swa_utils.get_ema_avg_fn(1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        gg.optim.swa_utils.SWALR(gg.optim.SGD([gg.zeros(1, requires_grad=True)], lr=0.1), 0.1,
                                 anneal_strategy="step")
    with pytest.raises(ValueError, match="Only one"):
        gg.optim.swa_utils.AveragedModel(gg.nn.Linear(2, 2), avg_fn=lambda *a: a[0],
                                         multi_avg_fn=lambda *a: None)
