"""One training step of an MLP 784-1024-1024-10 (ReLU, batch 256, cross-entropy, SGD).

Timed in gpugrad and PyTorch eager on the same weights and batch, plus a hand-written NumPy
forward/backward (no autodiff) as the practical floor; the implementations are first
checked to produce the same parameters after one step.

    python -m benchmarks.mlp_step [--device cpu|cuda] [--repeat 7] [--json PATH]
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import environment, report, time_it

SIZES = (784, 1024, 1024, 10)
BATCH = 256
LR = 0.01


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    weights = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(fan_in)
        weights.append((rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
                        rng.uniform(-bound, bound, fan_out).astype(np.float32)))
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    return weights, x, y


def gpugrad_step(weights, x, y, device: str):
    import gpugrad as gg
    import gpugrad.nn as nn
    import gpugrad.nn.functional as F

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

    return step, params, (lambda: gg.cuda.synchronize()) if device != "cpu" else None


def torch_step(weights, x, y, device: str):
    import torch

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

    return step, params, (lambda: torch.cuda.synchronize()) if device != "cpu" else None


def numpy_step(weights, x, y):
    """Forward and backward written by hand: the floor without any autodiff."""
    ws = [(w.copy(), b.copy()) for w, b in weights]
    onehot = np.eye(SIZES[-1], dtype=np.float32)[y]

    def step():
        acts = [x]
        h = x
        for i, (w, b) in enumerate(ws):
            h = h @ w.T + b
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


def _timed(step, sync, repeat: int) -> dict:
    def run():
        step()
        if sync:
            sync()
    return time_it(run, repeat=repeat, warmup=2)


def run(device: str = "cpu", repeat: int = 7, json_path: str | None = None) -> list[dict]:
    weights, x, y = make_data()
    g_step, g_params, g_sync = gpugrad_step(weights, x, y, device)
    impls = {"gpugrad": (g_step, g_params, g_sync)}
    try:
        impls["torch"] = torch_step(weights, x, y, device)
    except ImportError:
        pass
    if device == "cpu":
        impls["numpy"] = numpy_step(weights, x, y)
    for step, _, sync in impls.values():  # one step each, then all must agree
        step()
        if sync:
            sync()
    ref = impls["gpugrad"][1]()
    for name, (_, params, _) in impls.items():
        for a, b in zip(ref, params()):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5,
                                       err_msg=f"gpugrad and {name} disagree after one step")
    times = {name: _timed(step, sync, repeat) for name, (step, _, sync) in impls.items()}
    t_g = times["gpugrad"]["median"]
    t_t = times.get("torch", {}).get("median")
    row = {"name": f"MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, SGD step",
           "gpugrad_ms": t_g * 1e3, "gpugrad_spread_ms": (times["gpugrad"]["max"]
                                                         - times["gpugrad"]["min"]) * 1e3,
           "torch_ms": t_t * 1e3 if t_t else None,
           "numpy_ms": times["numpy"]["median"] * 1e3 if "numpy" in times else None,
           "ratio_to_torch": t_g / t_t if t_t else None}
    report("MLP training step", [row],
           [("name", "workload"), ("gpugrad_ms", "gpugrad ms"), ("gpugrad_spread_ms", "spread"),
            ("torch_ms", "PyTorch ms"), ("numpy_ms", "NumPy (no AD) ms"),
            ("ratio_to_torch", "gpugrad / PyTorch")], environment(device), json_path)
    return [row]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.device == "cpu":
        try:
            import torch

            torch.set_num_threads(torch.get_num_threads())
        except ImportError:
            pass
    run(args.device, args.repeat, args.json)


if __name__ == "__main__":
    main()
