"""Module API: registration, traversal order, modes, zero_grad, to(), state_dict round trip
and strict-mismatch messages, containers, repr."""

import copy
from collections import OrderedDict

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.scale = nn.Parameter(gg.ones(4))
        self.register_buffer("step", gg.zeros(()))
        self.register_buffer("cache", gg.zeros(2), persistent=False)
        self.plain = 3

    def forward(self, x):
        return self.norm(self.fc(x)) * self.scale


def test_registration_and_named_parameters_order():
    b = Block()
    assert [n for n, _ in b.named_parameters()] == [
        "scale", "fc.weight", "fc.bias", "norm.weight", "norm.bias"]
    assert [n for n, _ in b.named_buffers()] == [
        "step", "cache", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"]
    assert [n for n, _ in b.named_children()] == ["fc", "norm"]
    assert [n for n, _ in b.named_modules()] == ["", "fc", "norm"]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in b.parameters())
    assert b.plain == 3 and "plain" not in dict(b.named_parameters())
    with pytest.raises(AttributeError, match="nope"):
        _ = b.nope


def test_shared_parameters_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias"]


def test_train_eval_and_requires_grad():
    b = Block()
    assert b.training and b.norm.training
    assert b.eval() is b
    assert not b.training and not b.norm.training and not b.fc.training
    b.train()
    assert b.norm.training
    b.requires_grad_(False)
    assert not any(p.requires_grad for p in b.parameters())


def test_zero_grad():
    b = Block()
    b(gg.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in b.parameters())
    b.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in b.parameters())
    b.zero_grad()
    assert all(p.grad is None for p in b.parameters())


def test_to_dtype_keeps_parameter_identity():
    b = Block()
    w = b.fc.weight
    b.to(gg.float64)
    assert b.fc.weight is w and w.dtype == gg.float64 and w.requires_grad
    assert b.norm.running_mean.dtype == gg.float64
    assert b.norm.num_batches_tracked.dtype == gg.int64
    assert b(gg.randn(4, 3, dtype=gg.float64)).dtype == gg.float64


def test_state_dict_round_trip():
    a, b = Block(), Block()
    a(gg.randn(6, 3))  # moves the running stats
    sd = a.state_dict()
    assert list(sd) == ["scale", "step", "fc.weight", "fc.bias", "norm.weight", "norm.bias",
                        "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"]
    assert "cache" not in sd
    assert all(not t.requires_grad for t in sd.values())
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].numpy())
    assert b.norm.num_batches_tracked.item() == 1
    x = gg.randn(2, 3)
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())


def test_state_dict_shares_storage():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    with gg.no_grad():
        m.weight.fill_(3.0)
    assert np.all(sd["weight"].numpy() == 3.0)


def test_load_state_dict_strict_mismatch_message_and_atomicity():
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    sd = OrderedDict(m.state_dict())
    sd = {k: gg.ones(*v.shape) for k, v in sd.items()}
    del sd["1.bias"]
    sd["2.weight"] = gg.zeros(1)
    sd["1.weight"] = gg.zeros(5, 4)
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(sd)
    msg = str(err.value)
    assert "Missing key(s)" in msg and "'1.bias'" in msg
    assert "Unexpected key(s)" in msg and "'2.weight'" in msg
    assert "size mismatch for 1.weight" in msg and "(5, 4)" in msg and "(2, 4)" in msg
    for k, v in m.state_dict().items():  # nothing was written
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_load_state_dict_non_strict():
    m = nn.Linear(2, 2)
    res = m.load_state_dict({"weight": gg.ones(2, 2), "extra": gg.zeros(1)}, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["extra"]
    assert np.all(m.weight.detach().numpy() == 1)
    with pytest.raises(RuntimeError, match="size mismatch"):
        m.load_state_dict({"weight": gg.ones(3, 2)}, strict=False)


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Linear)
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2
    named = nn.Sequential(OrderedDict([("a", nn.Linear(2, 2)), ("b", nn.Tanh())]))
    assert list(named.state_dict()) == ["a.weight", "a.bias"]
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    ml.append(nn.Linear(2, 1))
    assert len(ml) == 4 and len(list(ml.parameters())) == 8
    assert list(ml.state_dict())[-1] == "3.bias"
    md = nn.ModuleDict({"enc": nn.Linear(2, 2), "act": nn.ReLU()})
    md["dec"] = nn.Linear(2, 1)
    assert list(md.keys()) == ["enc", "act", "dec"] and "dec" in md
    assert [n for n, _ in md.named_parameters()] == ["enc.weight", "enc.bias", "dec.weight",
                                                     "dec.bias"]


def test_apply_and_repr():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    seen = []
    seq.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Sequential"]
    seq.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert np.all(seq[0].weight.detach().numpy() == 0)
    text = repr(seq)
    assert "(0): Linear(in_features=2, out_features=3, bias=True)" in text
    assert "(1): ReLU()" in text
    assert repr(nn.Swish(2.0, learnable=False)) == "Swish(beta=2, learnable=False)"
    assert repr(nn.Parameter(gg.zeros(1))).startswith("Parameter containing:")


def test_parameter_shares_storage_and_deepcopy():
    t = gg.zeros(3)
    p = nn.Parameter(t)
    assert p.requires_grad and isinstance(p, gg.Tensor)
    with gg.no_grad():
        p.fill_(2.0)
    assert np.all(t.numpy() == 2.0)
    assert not nn.Parameter(gg.zeros(1), requires_grad=False).requires_grad
    m = nn.Linear(2, 2)
    m2 = copy.deepcopy(m)
    assert m2.weight is not m.weight
    np.testing.assert_array_equal(m2.weight.detach().numpy(), m.weight.detach().numpy())


def test_assigning_wrong_type_to_parameter_slot():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight"):
        m.weight = gg.zeros(2, 2)
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]


def test_deepcopy_module_with_buffers_runs():
    m = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    m2 = copy.deepcopy(m)
    assert m2[0].weight is not m[0].weight
    m2(gg.randn(4, 3))  # buffers stay usable with tensors on the same device
    assert m2[1].num_batches_tracked.item() == 1 and m[1].num_batches_tracked.item() == 0
