"""MLP training steps (ReLU, cross-entropy, SGD): a small overhead-bound size and the
matmul-bound 784-1024-1024-10 at batch 256, in gpugrad, PyTorch eager and hand-written
NumPy (no autodiff), all starting from the same weights and batch.

    python -m benchmarks.mlp_step [--repeat 7] [--json PATH]    (the large MLP, on the CPU)
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np

from benchmarks.common import Workload

LARGE = ((784, 1024, 1024, 10), 256)
SMALL = ((64, 128, 10), 64)
LR = 0.01


def make_data(sizes, batch, seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(fan_in)
        weights.append((rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
                        rng.uniform(-bound, bound, fan_out).astype(np.float32)))
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    return weights, x, y


def gpugrad_impl(device: str, sizes=LARGE[0], batch=LARGE[1]):
    import gpugrad as gg
    import gpugrad.nn as nn
    import gpugrad.nn.functional as F

    weights, x, y = make_data(sizes, batch)
    layers = []
    for w, b in weights:
        lin = nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data = gg.tensor(w)
        lin.bias.data = gg.tensor(b)
        layers += [lin, nn.ReLU()]
    model = nn.Sequential(*layers[:-1]).to(device)
    opt = gg.optim.SGD(model.parameters(), lr=LR)
    xb, yb = gg.tensor(x, device=device), gg.tensor(y, device=device)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()

    def params():
        return [p.detach().cpu().numpy() for p in model.parameters()]

    return step, params, (gg.cuda.synchronize if device != "cpu" else None)


def torch_impl(device: str, sizes=LARGE[0], batch=LARGE[1]):
    import torch

    weights, x, y = make_data(sizes, batch)
    layers = []
    for w, b in weights:
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xb, yb = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()

    def params():
        return [p.detach().cpu().numpy() for p in model.parameters()]

    return step, params, (torch.cuda.synchronize if device != "cpu" else None)


def numpy_impl(device: str, sizes=LARGE[0], batch=LARGE[1]):
    """Forward and backward written by hand: the floor without any autodiff."""
    weights, x, y = make_data(sizes, batch)
    ws = [(w.copy(), b.copy()) for w, b in weights]
    onehot = np.eye(sizes[-1], dtype=np.float32)[y]

    def step():
        acts = [x]
        h = x
        for i, (w, b) in enumerate(ws):
            h = h @ w.T
            h += b
            if i < len(ws) - 1:
                np.maximum(h, 0, out=h)
            acts.append(h)
        z = h - h.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(y)
        for i in reversed(range(len(ws))):
            w, b = ws[i]
            gw = g.T @ acts[i]
            gb = g.sum(0)
            if i:
                g = g @ w
                g *= acts[i] > 0
            w -= LR * gw
            b -= LR * gb

    def params():
        return [a for wb in ws for a in wb]

    return step, params, None


def _flops(sizes, batch) -> float:
    """Forward GEMMs once, backward twice (input and weight gradients)."""
    return 3 * 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def _workload(key: str, sizes, batch) -> Workload:
    impls = {name: partial(fn, sizes=sizes, batch=batch) for name, fn in
             (("gpugrad", gpugrad_impl), ("torch", torch_impl), ("numpy", numpy_impl))}
    return Workload(key, f"MLP {'-'.join(map(str, sizes))}, batch {batch}, SGD step", impls,
                    flops=_flops(sizes, batch), rtol=1e-3, atol=1e-5)


WORKLOADS = [_workload("mlp_small", *SMALL), _workload("mlp_large", *LARGE)]


def main(argv=None) -> None:
    from benchmarks.__main__ import main as suite_main

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json", default=None)
    args, rest = p.parse_known_args(argv)
    suite_main(["--workloads", "mlp_large", "--repeat", str(args.repeat)]
               + (["--json", args.json] if args.json else []) + rest)


if __name__ == "__main__":
    main()
