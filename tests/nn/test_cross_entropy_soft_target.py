"""F.cross_entropy with probability (soft) targets: the target gets its gradient,
−log_softmax(x)·(1 − ε)·w / N, as in PyTorch (issue 15: it stayed None)."""

import numpy as np
import pytest
import torch

import gpugrad as gg
import gpugrad.nn.functional as F
from tests.oracle import check, gradcheck, rand


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_soft_target_gets_gradient(reduction, smoothing, weighted):
    w = np.random.default_rng(0).uniform(0.5, 2.0, 5)

    def fn(lib):
        def run(x, t):
            kw = {"weight": lib.tensor(w)} if weighted else {}
            q = lib.nn.functional.softmax(t, -1)
            return lib.nn.functional.cross_entropy(x, q, reduction=reduction,
                                                   label_smoothing=smoothing, **kw)
        return run

    check(fn(gg), [rand(4, 5), rand(4, 5)], torch_fn=fn(torch))


def test_soft_target_spatial_and_gradcheck():
    check(lambda x, t: F.cross_entropy(x, F.softmax(t, 1)), [rand(2, 3, 4), rand(2, 3, 4)],
          torch_fn=lambda x, t: torch.nn.functional.cross_entropy(x, torch.softmax(t, 1)))
    gradcheck(lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), rand(3, 4),
              rand(3, 4, low=0.0, high=1.0))


def test_soft_target_without_grad_unchanged():
    x = gg.tensor(rand(3, 4), requires_grad=True)
    t = gg.tensor(rand(3, 4, low=0.0, high=1.0))
    F.cross_entropy(x, t).backward()
    assert t.grad is None and x.grad is not None
