"""Module hooks, parameter containers, parameter utilities, parametrizations and the
extra layers of issue 15, each against PyTorch."""

import numpy as np
import pytest
import torch
from oracle import check_module, copy_weights, rand

import gpugrad as gg


def _mlp(lib):
    torch.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))


def _twins():
    theirs = _mlp(torch).double()
    ours = _mlp(gg).double()
    copy_weights(ours, theirs)
    return ours, theirs


# --- hooks -----------------------------------------------------------------------------------
def test_forward_hooks_see_and_replace_inputs_and_outputs_as_torch():
    x = rand(5, 3)
    results = {}
    for lib, m in zip((gg, torch), _twins()):
        log = []

        def pre(mod, args, log=log):
            log.append(("pre", type(mod).__name__, len(args)))
            return args[0] * 2  # a single value is wrapped into a tuple

        def post(mod, args, out, log=log):
            log.append(("post", tuple(out.shape)))
            return out + 1

        h1 = m[0].register_forward_pre_hook(pre)
        h2 = m[0].register_forward_hook(post)
        y1 = m(lib.tensor(x))
        h1.remove()
        h2.remove()
        h2.remove()  # a second remove does nothing
        y2 = m(lib.tensor(x))
        results[lib.__name__] = (log, y1.detach().numpy(), y2.detach().numpy())
    (la, a1, a2), (lb, b1, b2) = results["gpugrad"], results["torch"]
    assert la == lb == [("pre", "Linear", 1), ("post", (5, 4))]
    np.testing.assert_allclose(a1, b1, rtol=1e-12)
    np.testing.assert_allclose(a2, b2, rtol=1e-12)
    assert not np.allclose(a1, a2)


def test_forward_hooks_with_kwargs_prepend_and_context_manager():
    m = gg.nn.Linear(3, 2)
    order = []
    m.register_forward_hook(lambda mod, a, o: order.append("second"))
    m.register_forward_hook(lambda mod, a, o: order.append("first"), prepend=True)
    m.register_forward_pre_hook(lambda mod, a, kw: ((a[0] * 0,), kw), with_kwargs=True)
    with m.register_forward_hook(lambda mod, a, kw, o: order.append(sorted(kw)),
                                 with_kwargs=True):
        out = m(gg.tensor(rand(2, 3).astype(np.float32)))
    m(gg.tensor(rand(2, 3).astype(np.float32)))
    assert order == ["first", "second", [], "first", "second"]
    np.testing.assert_allclose(out.detach().numpy(), np.broadcast_to(m.bias.detach().numpy(),
                                                                     (2, 2)))


def test_always_call_forward_hook_runs_when_forward_raises():
    m = gg.nn.Linear(3, 2)
    seen = []
    m.register_forward_hook(lambda mod, a, o: seen.append(o), always_call=True)
    with pytest.raises(gg.errors.ShapeError):
        m(gg.tensor(rand(2, 4).astype(np.float32)))
    assert seen == [None]


def test_full_backward_hook_matches_torch():
    logs = {}
    x0 = rand(5, 3)
    for lib, m in zip((gg, torch), _twins()):
        log = []

        def hook(mod, grad_in, grad_out, log=log):
            log.append((type(mod).__name__, [None if g is None else g.detach().numpy().copy()
                                             for g in grad_in],
                        [g.detach().numpy().copy() for g in grad_out]))
            return (grad_in[0] * 3,)

        def pre(mod, grad_out, log=log):
            log.append(("pre", [g.detach().numpy().copy() for g in grad_out]))

        m[2].register_full_backward_hook(hook)
        m[0].register_full_backward_hook(hook)
        m[2].register_full_backward_pre_hook(pre)
        x = lib.tensor(x0, requires_grad=True)
        (m(x) ** 2).sum().backward()
        logs[lib.__name__] = (log, x.grad.numpy(), m[0].weight.grad.numpy())
    (la, xa, wa), (lb, xb, wb) = logs["gpugrad"], logs["torch"]
    assert [e[0] for e in la] == [e[0] for e in lb] == ["pre", "Linear", "Linear"]
    for ea, eb in zip(la, lb):
        for ga, gb in zip(ea[1:], eb[1:]):
            for a, b in zip(ga, gb):
                assert (a is None) == (b is None)
                if a is not None:
                    np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(xa, xb, rtol=1e-12)  # replaced grad_input propagates
    np.testing.assert_allclose(wa, wb, rtol=1e-12)


def test_full_backward_hook_on_a_first_layer_gets_none_grad_input():
    m = gg.nn.Linear(3, 2)
    seen = []
    m.register_full_backward_hook(lambda mod, gi, go: seen.append((gi, len(go))))
    m(gg.tensor(rand(4, 3).astype(np.float32))).sum().backward()
    assert seen == [((None,), 1)]
    assert m.weight.grad is not None


def test_hook_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        gg.nn.Linear(2, 2).register_forward_hook(3)


def test_named_modules_apply_requires_grad_like_torch():
    ours, theirs = _twins()
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    seen = []
    ours.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Tanh", "Linear", "Sequential"]
    ours.requires_grad_(False)
    assert not any(p.requires_grad for p in ours.parameters())
