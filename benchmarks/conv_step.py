"""A conv layer's training step: 3x3 convolution 32 -> 64 channels, padding 1, on a batch
of 32 images of 32x32; forward, backward (input, weight and bias gradients: a layer inside
a network) and an SGD update, in gpugrad, PyTorch eager and hand-written NumPy im2col (no
autodiff), all starting from the same weights, input and upstream gradient.

    python -m benchmarks.conv_step [--repeat 7] [--json PATH]    (on the CPU)
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import Workload

BATCH, C_IN, C_OUT, SIZE, K = 32, 32, 64, 32, 3
LR = 0.01


def make_data(seed: int = 0):
    """Weights (PyTorch's default init), input and upstream gradient, as float32."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(C_IN * K * K)
    w = rng.uniform(-bound, bound, (C_OUT, C_IN, K, K)).astype(np.float32)
    b = rng.uniform(-bound, bound, C_OUT).astype(np.float32)
    x = rng.standard_normal((BATCH, C_IN, SIZE, SIZE)).astype(np.float32)
    cot = rng.standard_normal((BATCH, C_OUT, SIZE, SIZE)).astype(np.float32) / BATCH
    return w, b, x, cot


def gpugrad_impl(device: str):
    import gpugrad as gg
    import gpugrad.nn as nn

    w, b, x, cot = make_data()
    conv = nn.Conv2d(C_IN, C_OUT, K, padding=1)
    conv.weight.data, conv.bias.data = gg.tensor(w), gg.tensor(b)
    conv = conv.to(device)
    opt = gg.optim.SGD(conv.parameters(), lr=LR)
    xb = gg.tensor(x, device=device, requires_grad=True)
    gy = gg.tensor(cot, device=device)

    def step():
        opt.zero_grad()
        xb.grad = None
        conv(xb).backward(gy)
        opt.step()

    def result():
        return [conv.weight.detach().cpu().numpy(), conv.bias.detach().cpu().numpy(),
                xb.grad.cpu().numpy()]

    return step, result, (gg.cuda.synchronize if device != "cpu" else None)


def torch_impl(device: str):
    import torch

    w, b, x, cot = make_data()
    conv = torch.nn.Conv2d(C_IN, C_OUT, K, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        conv.bias.copy_(torch.from_numpy(b))
    conv = conv.to(device)
    opt = torch.optim.SGD(conv.parameters(), lr=LR)
    xb = torch.from_numpy(x).to(device).requires_grad_(True)
    gy = torch.from_numpy(cot).to(device)

    def step():
        opt.zero_grad()
        xb.grad = None
        conv(xb).backward(gy)
        opt.step()

    def result():
        return [conv.weight.detach().cpu().numpy(), conv.bias.detach().cpu().numpy(),
                xb.grad.cpu().numpy()]

    return step, result, (torch.cuda.synchronize if device != "cpu" else None)


def numpy_impl(device: str):
    """im2col forward and backward written by hand: the floor without any autodiff."""
    w0, b0, x, cot = make_data()
    w, b = w0.copy(), b0.copy()
    n, c, h, wd = x.shape
    o = w.shape[0]
    grads = {}

    def step():
        xp = np.zeros((n, c, h + 2, wd + 2), np.float32)
        xp[:, :, 1:-1, 1:-1] = x
        s = xp.strides
        win = np.lib.stride_tricks.as_strided(xp, (n, c, K, K, h, wd),
                                              (s[0], s[1], s[2], s[3], s[2], s[3]))
        cols = np.ascontiguousarray(win).reshape(n, c * K * K, h * wd)
        wm = w.reshape(o, -1)
        y = np.matmul(wm, cols).reshape(n, o, h, wd) + b.reshape(1, o, 1, 1)
        del y  # the forward is part of the step; the upstream gradient is fixed
        g = cot.reshape(n, o, h * wd)
        gw = np.matmul(g, cols.transpose(0, 2, 1)).sum(0).reshape(w.shape)
        gb = cot.sum((0, 2, 3))
        gcols = np.matmul(np.ascontiguousarray(wm.T), g).reshape(n, c, K, K, h, wd)
        gxp = np.zeros_like(xp)
        for i in range(K):
            for j in range(K):
                gxp[:, :, i:i + h, j:j + wd] += gcols[:, :, i, j]
        grads["x"] = gxp[:, :, 1:-1, 1:-1]
        w.__isub__(LR * gw)
        b.__isub__(LR * gb)

    def result():
        return [w, b, grads["x"]]

    return step, result, None


# forward GEMM once, backward twice (input and weight gradients)
FLOPS = 3 * 2 * BATCH * SIZE * SIZE * C_OUT * C_IN * K * K

WORKLOADS = [Workload(
    "conv", f"Conv2d {K}x{K} {C_IN}->{C_OUT}, {SIZE}x{SIZE}, batch {BATCH}, SGD step",
    {"gpugrad": gpugrad_impl, "torch": torch_impl, "numpy": numpy_impl},
    flops=FLOPS, rtol=1e-3, atol=1e-5)]


def main(argv=None) -> None:
    from benchmarks.__main__ import main as suite_main

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json", default=None)
    args, rest = p.parse_known_args(argv)
    suite_main(["--workloads", "conv", "--repeat", str(args.repeat)]
               + (["--json", args.json] if args.json else []) + rest)


if __name__ == "__main__":
    main()
