"""Random programs: 5-30 ops over a few leaves, where any op may reuse any earlier result
(so several paths meet in one node), run in gpugrad and PyTorch; the loss, its gradient and
a second derivative (the gradient of a scalar function of the first gradient, built with
create_graph=True in both libraries) must agree."""

import numpy as np
import torch
from _fuzzlib import assert_close
from hypothesis import assume, given
from hypothesis import strategies as st

import gpugrad as gg
import gpugrad.nn.functional as F


class _Gg:
    cat, stack, where = staticmethod(gg.cat), staticmethod(gg.stack), staticmethod(gg.where)
    softmax, log_softmax = staticmethod(F.softmax), staticmethod(F.log_softmax)

    @staticmethod
    def leaf(a):
        return gg.from_numpy(a.copy()).requires_grad_(True)

    @staticmethod
    def grad(out, ins, create_graph):
        return gg.autograd.grad(out, ins, create_graph=create_graph, allow_unused=True)

    @staticmethod
    def numpy(t):
        return t.detach().numpy()


class _Torch:
    cat, stack = staticmethod(torch.cat), staticmethod(torch.stack)
    where = staticmethod(torch.where)
    softmax, log_softmax = staticmethod(torch.softmax), staticmethod(torch.log_softmax)

    @staticmethod
    def leaf(a):
        return torch.from_numpy(a.copy()).requires_grad_(True)

    @staticmethod
    def grad(out, ins, create_graph):
        return torch.autograd.grad(out, ins, create_graph=create_graph, allow_unused=True)

    @staticmethod
    def numpy(t):
        return t.detach().numpy()


# name -> (arity, fn(L, *args)); every op maps (n, n) tensors to an (n, n) tensor
OPS = {
    "add": (2, lambda L, a, b: a + b),
    "sub": (2, lambda L, a, b: a - b),
    "mul": (2, lambda L, a, b: a * b),
    "div": (2, lambda L, a, b: a / (1 + b * b)),
    "matmul": (2, lambda L, a, b: (a @ b) * 0.5),
    "maximum": (2, lambda L, a, b: a.maximum(b)),
    "where": (2, lambda L, a, b: L.where(a > b, a * b, b)),
    "cat_rows": (2, lambda L, a, b: L.cat([a[:1], b[1:]], 0)),
    "stack_sum": (2, lambda L, a, b: L.stack([a, b], 0).sum(0)),
    "bcast_row": (2, lambda L, a, b: a * b[:1]),
    "tanh": (1, lambda L, a: a.tanh()),
    "sigmoid": (1, lambda L, a: a.sigmoid()),
    "sin": (1, lambda L, a: a.sin()),
    "exp_tanh": (1, lambda L, a: a.tanh().exp()),
    "log1p_sq": (1, lambda L, a: (a * a).log1p()),
    "sqrt_sq1": (1, lambda L, a: (a * a + 1).sqrt()),
    "square": (1, lambda L, a: a ** 2),
    "pow_abs": (1, lambda L, a: (a.abs() + 0.5) ** 1.5),
    "relu": (1, lambda L, a: a.relu()),
    "abs": (1, lambda L, a: a.abs()),
    "clamp": (1, lambda L, a: a.clamp(-1.0, 1.0)),
    "transpose": (1, lambda L, a: a.transpose(0, 1)),
    "flip_rows": (1, lambda L, a: a[list(range(a.shape[0] - 1, -1, -1))]),
    "softmax": (1, lambda L, a: L.softmax(a, -1)),
    "log_softmax": (1, lambda L, a: L.log_softmax(a, 0)),
    "center": (1, lambda L, a: a - a.mean(0, keepdim=True)),
    "var_scale": (1, lambda L, a: a * a.var(-1, keepdim=True)),
    "lse": (1, lambda L, a: a - a.logsumexp(-1, keepdim=True)),
    "amax": (1, lambda L, a: a - a.amax(-1, keepdim=True)),
    "norm": (1, lambda L, a: a / (1 + a.norm())),
    "sum_b": (1, lambda L, a: a + a.sum(1, keepdim=True)),
    "reshape": (1, lambda L, a: _reverse_flat(a)),
}


def _reverse_flat(a):
    """Reshape to 1-d, reverse with an integer index, reshape back (same code in both)."""
    n = a.shape[0] * a.shape[1]
    return a.reshape(-1)[list(range(n - 1, -1, -1))].reshape(a.shape)


@st.composite
def programs(draw):
    n_leaves = draw(st.integers(1, 3))
    steps = []
    for i in range(draw(st.integers(5, 30))):
        name = draw(st.sampled_from(sorted(OPS)))
        avail = n_leaves + i
        args = tuple(draw(st.integers(0, avail - 1)) for _ in range(OPS[name][0]))
        steps.append((name, args))
    return n_leaves, steps


def run(L, leaves_np, steps, w_seed):
    leaves = [L.leaf(a) for a in leaves_np]
    nodes = list(leaves)
    for name, args in steps:
        nodes.append(OPS[name][1](L, *(nodes[i] for i in args)))
    rng = np.random.default_rng(w_seed)
    # the loss reads the last node and every third earlier one: many paths, shared nodes
    loss = 0
    for node in nodes[len(leaves):][::-3]:
        w = rng.uniform(-1, 1, size=tuple(node.shape))
        loss = loss + (node * L.leaf(w).detach()).sum()
    g1 = L.grad(loss, leaves, True)
    h = 0
    for g in g1:
        if g is not None:
            v = rng.uniform(-1, 1, size=tuple(g.shape))
            h = h + (g * L.leaf(v).detach()).sum() + 0.1 * (g * g).sum()
    g2 = L.grad(h, leaves, False) if isinstance(h, (gg.Tensor, torch.Tensor)) \
        and h.requires_grad else [None] * len(leaves)
    return loss, g1, g2


def _np(t):
    if t is None:
        return None
    return t.detach().numpy(force=True) if isinstance(t, torch.Tensor) else t.detach().numpy()


@given(prog=programs(), n=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_random_program(prog, n, seed):
    n_leaves, steps = prog
    rng = np.random.default_rng(seed)
    leaves = [rng.uniform(-1.5, 1.5, size=(n, n)) for _ in range(n_leaves)]
    t_loss, t_g1, t_g2 = run(_Torch, leaves, steps, seed)
    ref = [_np(t_loss)] + [_np(g) for g in t_g1 + tuple(t_g2) if g is not None]
    assume(all(np.all(np.isfinite(r)) and np.abs(r).max(initial=0) < 1e6 for r in ref))
    g_loss, g_g1, g_g2 = run(_Gg, leaves, steps, seed)
    assert_close(_np(g_loss), _np(t_loss), np.float64, "loss")
    for k, (a, b) in enumerate(zip(list(g_g1) + list(g_g2), list(t_g1) + list(t_g2))):
        what = f"{'first' if k < n_leaves else 'second'} derivative, leaf {k % n_leaves}"
        if b is None:
            assert a is None or not np.any(_np(a)), what + ": torch has none"
            continue
        if a is None:  # abs/relu: torch keeps a zero-derivative edge, gpugrad drops it
            assert not np.any(_np(b)), what + ": gpugrad returned None, torch nonzero"
            continue
        assert_close(_np(a), _np(b), np.float64, what)
