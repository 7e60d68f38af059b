"""Elementwise activation chain: sum(tanh(sigmoid(x) * x + swish(x))), gradient wrt x.

A memory-bound workload (4096x1024 float32): what counts is how many full-size temporaries
each framework materialises in forward and backward.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import Workload

NAME = "activation chain 4096x1024 fwd+bwd"
SHAPE = (4096, 1024)
# Bytes moved at best: read x and write x.grad once each, in float32.
BYTES = 2 * SHAPE[0] * SHAPE[1] * 4


def _data() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)


def gpugrad_impl(device: str):
    import gpugrad as gg
    import gpugrad.nn.functional as F

    x = gg.tensor(_data(), device=device, requires_grad=True)

    def step():
        x.grad = None
        gg.tanh(gg.sigmoid(x) * x + F.swish(x, 1.0)).sum().backward()

    sync = gg.cuda.synchronize if device != "cpu" else None
    return step, lambda: x.grad.detach().cpu().numpy(), sync


def gpugrad_fused_impl(device: str):
    """The same chain under `@gg.fuse`: forward is one pass that reduces as it goes (the
    sum is the chain's reduction epilogue), backward one pass over x."""
    import gpugrad as gg
    import gpugrad.nn.functional as F

    x = gg.tensor(_data(), device=device, requires_grad=True)

    @gg.fuse
    def loss(x):
        return gg.tanh(gg.sigmoid(x) * x + F.swish(x, 1.0)).sum()

    def step():
        x.grad = None
        loss(x).backward()

    sync = gg.cuda.synchronize if device != "cpu" else None
    return step, lambda: x.grad.detach().cpu().numpy(), sync


def torch_impl(device: str):
    import torch

    x = torch.tensor(_data(), device=device, requires_grad=True)

    def step():
        x.grad = None
        torch.tanh(torch.sigmoid(x) * x + x * torch.sigmoid(x)).sum().backward()

    sync = torch.cuda.synchronize if device != "cpu" else None
    return step, lambda: x.grad.detach().cpu().numpy(), sync


def numpy_impl(device: str):
    """Forward and backward by hand, reusing buffers: the floor without autodiff."""
    x = _data()
    grad = np.empty_like(x)

    def step():
        s = np.negative(x)
        np.exp(s, out=s)
        s += 1
        np.reciprocal(s, out=s)          # s = σ(x)
        u = np.multiply(s, x)            # u = σ(x)·x (also swish(x))
        t = np.multiply(u, 2)
        np.tanh(t, out=t)                # t = tanh(2u)
        # d/dx tanh(2u) = (1 − t²)·2·(σ + x·σ(1 − σ))
        np.multiply(t, t, out=t)
        np.subtract(1, t, out=t)
        g = grad
        np.subtract(1, s, out=g)
        g *= x
        g += 1
        g *= s
        g *= t
        g *= 2

    return step, lambda: grad.copy(), None


WORKLOADS = [Workload("activation_chain", NAME,
                      {"gpugrad": gpugrad_impl, "torch": torch_impl, "numpy": numpy_impl},
                      bytes=BYTES, rtol=1e-4, atol=1e-6),
             Workload("activation_chain_fused", NAME + " (gpugrad under @gg.fuse)",
                      {"gpugrad": gpugrad_fused_impl, "torch": torch_impl,
                       "numpy": numpy_impl}, bytes=BYTES, rtol=1e-4, atol=1e-6)]
